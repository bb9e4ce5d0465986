"""Sphinx configuration of the gpuudf documentation."""

import gpuudf

project = "gpuudf"
author = "the gpuudf authors"
copyright = "the gpuudf authors"
version = release = gpuudf.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# numpy-style docstrings only
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_type_aliases = {"npt.DTypeLike": "numpy.typing.DTypeLike"}

myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"gpuudf {release}"
