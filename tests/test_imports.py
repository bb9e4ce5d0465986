"""``import gpuudf`` and CPU-only runs never load the GPU libraries."""

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
