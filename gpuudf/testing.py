"""Helpers for testing UDFs, gpuudf's own and users' alike.

:func:`assert_backends_agree` runs one UDF on every usable device, NumPy on
the CPU first as the reference, and compares every result buffer with a
tolerance that suits its dtype.  The simulated CUDA device is always among
the devices when the UDF allows ``cupy``, so a UDF that would break on a GPU
(an implicit device-to-host conversion, a forgotten ``self.xp``) fails on a
machine without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuudf.backends.cuda import cupy_usable
from gpuudf.context import Context
from gpuudf.datasets import DataSet
from gpuudf.executors import InlineExecutor
from gpuudf.results import BufferWrapper
from gpuudf.udf import UDF

__all__ = ["RTOL_BY_ITEMSIZE", "assert_backends_agree", "usable_devices"]

#: Relative tolerance for floating results, by bytes per (real) value.
RTOL_BY_ITEMSIZE = {2: 1e-2, 4: 1e-4, 8: 1e-10}


def usable_devices(array_backends: Sequence[str] = ("numpy", "cupy")) -> list[str]:
    """Device names whose backend is in ``array_backends``: cpu, sim:0, and cuda:0 where usable."""
    devices = []
    if "numpy" in array_backends:
        devices.append("cpu")
    if "cupy" in array_backends:
        devices.append("sim:0")
        if cupy_usable():
            devices.append("cuda:0")
    return devices


def _compare(name: str, device: str, reference: BufferWrapper, other: BufferWrapper, rtol: float | None) -> None:
    expected, actual = reference.data, other.data
    where = f"buffer {name!r} on {device}"
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        msg = f"{where}: {actual.shape} {actual.dtype}, the CPU gave {expected.shape} {expected.dtype}"
        raise AssertionError(msg)
    if not np.array_equal(reference.valid_mask, other.valid_mask):
        msg = f"{where}: valid_mask differs from the CPU's"
        raise AssertionError(msg)
    if expected.dtype.kind in "fc":
        tolerance = rtol if rtol is not None else RTOL_BY_ITEMSIZE.get(expected.real.dtype.itemsize, 1e-6)
        finite = np.isfinite(expected)
        scale = float(np.max(np.abs(expected[finite]))) if finite.any() else 0.0
        np.testing.assert_allclose(
            actual, expected, rtol=tolerance, atol=tolerance * scale, equal_nan=True, err_msg=where
        )
    elif expected.dtype.kind == "O":
        if expected.tolist() != actual.tolist():
            msg = f"{where}: object values differ from the CPU's"
            raise AssertionError(msg)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=where)


def assert_backends_agree(
    udf: UDF | Sequence[UDF],
    dataset: DataSet,
    *,
    roi: Any = None,
    devices: Sequence[str] | None = None,
    rtol: float | None = None,
) -> dict[str, Any]:
    """Run ``udf`` on every usable device and check the results agree.

    Parameters
    ----------
    udf
        A UDF, or a list of UDFs run in one pass.
    dataset
        Any dataset from ``Context.load``.
    roi
        Passed to ``run_udf``.
    devices
        Device names to compare; by default :func:`usable_devices` for the
        array backends every UDF accepts.  The first is the reference.
    rtol
        Relative tolerance for floating buffers; by default from
        :data:`RTOL_BY_ITEMSIZE`.  Absolute tolerance is ``rtol`` times the
        largest finite magnitude of the reference, so values near zero of a
        large-valued result do not fail on summation order.

    Returns
    -------
    dict
        The results on each device, by device name.

    Raises
    ------
    AssertionError
        Naming the buffer and device that differ.
    """
    udfs = [udf] if isinstance(udf, UDF) else list(udf)
    if devices is None:
        common = [b for b in udfs[0].get_backends() if all(b in u.get_backends() for u in udfs[1:])]
        devices = usable_devices(common)
    if not devices:
        msg = "no usable device for these UDFs"
        raise AssertionError(msg)
    results = {}
    for device in devices:
        with Context(executor=InlineExecutor(device)) as ctx:  # releases page-locked memory and threads
            results[device] = ctx.run_udf(dataset=dataset, udf=udfs, roi=roi)
    reference_device = devices[0]
    for device in devices[1:]:
        for reference, other in zip(results[reference_device], results[device], strict=True):
            if reference.keys() != other.keys():
                msg = f"{device} returned buffers {sorted(other)}, {reference_device} {sorted(reference)}"
                raise AssertionError(msg)
            for name in reference:
                _compare(name, device, reference[name], other[name], rtol)
    if isinstance(udf, UDF):
        return {device: result[0] for device, result in results.items()}
    return results
