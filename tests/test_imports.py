"""``import gpuudf`` and CPU-only runs never load the GPU libraries, nor dask, nor plotting ones without plots."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import gpuudf

GPU_MODULES = ("cupy", "cupyx", "pynvml")


def loaded_modules_after(code: str) -> set[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(
        """
        import sys
        print(" ".join(sorted(m.split(".")[0] for m in sys.modules)))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_gpuudf_loads_no_gpu_library() -> None:
    assert not loaded_modules_after("import gpuudf") & set(GPU_MODULES)


def test_a_cpu_run_and_the_simulated_device_load_no_gpu_library() -> None:
    loaded = loaded_modules_after(
        """
        import numpy as np
        import gpuudf
        from gpuudf.executors import InlineExecutor
        from gpuudf.udfs import SumUDF
        data = np.ones((4, 4, 8, 8), dtype=np.float32)
        for device in ("cpu", "sim:0"):
            ctx = gpuudf.Context(executor=InlineExecutor(device))
            ctx.run_udf(dataset=ctx.load("memory", data=data), udf=SumUDF())
        """
    )
    assert not loaded & set(GPU_MODULES)


DASK_MODULES = ("dask", "distributed", "tornado")


def test_import_gpuudf_and_a_local_run_load_no_dask() -> None:
    loaded = loaded_modules_after(
        """
        import numpy as np
        import gpuudf
        from gpuudf.udfs import SumUDF
        with gpuudf.Context.make_with("local", cpus=1) as ctx:
            ctx.run_udf(dataset=ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32)), udf=SumUDF())
        """
    )
    assert not loaded & set(DASK_MODULES)


PLOT_MODULES = ("matplotlib", "IPython", "PIL")


def test_import_gpuudf_and_gpuudf_viz_load_no_plotting_library() -> None:
    assert not loaded_modules_after("import gpuudf, gpuudf.viz") & set(PLOT_MODULES)


def test_a_run_without_plots_loads_no_plotting_library() -> None:
    loaded = loaded_modules_after(
        """
        import numpy as np
        import gpuudf
        from gpuudf.udfs import SumUDF
        ctx = gpuudf.Context.make_with("inline")
        ctx.run_udf(dataset=ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32)), udf=SumUDF())
        """
    )
    assert not loaded & set(PLOT_MODULES)


def test_headless_plots_load_matplotlib_but_not_ipython() -> None:
    loaded = loaded_modules_after(
        """
        import matplotlib
        matplotlib.use("Agg")
        import numpy as np
        import gpuudf
        from gpuudf.udfs import SumUDF
        ctx = gpuudf.Context.make_with("inline")
        data = np.ones((4, 4, 8, 8), dtype=np.float32)
        ctx.run_udf(dataset=ctx.load("memory", data=data), udf=SumUDF(), plots=True)
        """
    )
    assert "matplotlib" in loaded
    assert "IPython" not in loaded


PACKAGE_ROOT = Path(gpuudf.__file__).parent


def source_of(module: str) -> Path | None:
    """The file of a gpuudf module or package, or ``None`` for a name that is no module (a class, say)."""
    base = PACKAGE_ROOT.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def gpuudf_imports_of(module: str) -> set[str]:
    """The gpuudf modules that ``module``'s source imports, at module level or inside functions."""
    path = source_of(module)
    assert path is not None, module
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module} uses a relative import"
            assert node.module is not None
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)  # from a package, a submodule
    return {name for name in named if name.split(".")[0] == "gpuudf" and source_of(name) is not None}


def gpuudf_imports_reachable_from(module: str) -> set[str]:
    """Every gpuudf module ``module`` imports, directly or through others (as import-linter counts them)."""
    reached: set[str] = set()
    pending = [module]
    while pending:
        for imported in gpuudf_imports_of(pending.pop()) - reached:
            reached.add(imported)
            pending.append(imported)
    return reached


def test_the_cuda_module_never_imports_the_device_names_module_so_their_dependency_goes_one_way() -> None:
    assert "gpuudf.backends.cuda" in gpuudf_imports_of("gpuudf.backends.devices")
    assert "gpuudf.backends.devices" not in gpuudf_imports_reachable_from("gpuudf.backends.cuda")


def test_the_inventory_types_keep_their_import_paths() -> None:
    from gpuudf.backends import DeviceInventory, GPUInfo, cuda, devices, inventory

    assert devices.GPUInfo is cuda.GPUInfo is inventory.GPUInfo is GPUInfo
    assert devices.DeviceInventory is inventory.DeviceInventory is DeviceInventory


def test_a_context_loads_no_run_machinery_before_its_first_run() -> None:
    probe = textwrap.dedent(
        """
        import sys
        import gpuudf
        gpuudf.Context()
        print(" ".join(m for m in sys.modules if m.startswith("gpuudf.executors.")))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    run_machinery = {"run_state", "run_shell", "local_run", "messages", "pool", "wake", "worker", "dask_run"}
    assert not {f"gpuudf.executors.{name}" for name in run_machinery} & loaded
