"""Built-in UDFs; each runs on ``numpy`` and ``cupy``.

One module per concept, named as in LiberTEM (``gpuudf.udfs.com`` is
``libertem.udf.com``), so a ported import changes only its package.
"""

from __future__ import annotations

from gpuudf.udfs.com import CoMParams, CoMUDF, RegressionOptions, guess_corrections
from gpuudf.udfs.fem import FEMUDF
from gpuudf.udfs.logsum import LogsumUDF
from gpuudf.udfs.masks import ApplyMasksUDF
from gpuudf.udfs.noop import NoOpUDF
from gpuudf.udfs.pick import PickUDF
from gpuudf.udfs.stddev import StdDevUDF, consolidate_result, run_stddev
from gpuudf.udfs.sum import SumSigUDF, SumUDF

__all__ = [
    "FEMUDF",
    "ApplyMasksUDF",
    "CoMParams",
    "CoMUDF",
    "LogsumUDF",
    "NoOpUDF",
    "PickUDF",
    "RegressionOptions",
    "StdDevUDF",
    "SumSigUDF",
    "SumUDF",
    "consolidate_result",
    "guess_corrections",
    "run_stddev",
]
