"""``import gpuudf`` and CPU-only runs never load the GPU libraries, nor plotting ones without plots."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
