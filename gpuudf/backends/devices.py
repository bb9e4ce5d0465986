"""Which devices this machine offers, and backends for device names.

Device names: ``"cpu"``; ``"cuda:N"`` for GPU N through CuPy; ``"sim:N"`` for
the simulated CUDA device (tests, CI).

Policy: this module imports :mod:`gpuudf.backends.cuda` only inside the
functions that need a GPU, and ``cuda`` never imports this one; the types
both use (``GPUInfo``, ``DeviceInventory``) live in
:mod:`gpuudf.backends.inventory` and are re-exported here.
"""

from __future__ import annotations

import os

from gpuudf.backends.backend import Backend
from gpuudf.backends.cpu import NumpyBackend
from gpuudf.backends.inventory import DeviceInventory, GPUInfo

__all__ = ["DeviceInventory", "GPUInfo", "detect", "make_backend", "parse_device"]


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def detect() -> DeviceInventory:
    """CPU cores (respecting affinity) and NVIDIA GPUs, without creating a CUDA context."""
    from gpuudf.backends.cuda import list_gpus  # noqa: PLC0415 - the CUDA module loads only when asked

    return DeviceInventory(cpu_cores=_cpu_cores(), gpus=tuple(list_gpus()))


def parse_device(device: str) -> tuple[str, int | None]:
    """``"cuda:1"`` → ``("cuda", 1)``; ``"cpu"`` → ``("cpu", None)``.

    Raises
    ------
    ValueError
        For anything else.
    """
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return "cpu", None
    if kind in ("cuda", "sim"):
        if not index:
            return kind, 0
        if index.isdigit():
            return kind, int(index)
    msg = f"unknown device {device!r}: use 'cpu', 'cuda:N' or 'sim:N' (the simulated CUDA device)"
    raise ValueError(msg)


def make_backend(device: str) -> Backend:
    """The backend for a device name.

    Raises
    ------
    gpuudf.BackendUnavailableError
        For ``cuda:N`` where CuPy or GPU N is not usable.
    """
    from gpuudf.errors import BackendUnavailableError  # noqa: PLC0415

    kind, index = parse_device(device)
    if kind == "cpu":
        return NumpyBackend()
    assert index is not None
    if kind == "sim":
        from gpuudf.backends.simulated import make_simulated_backend  # noqa: PLC0415

        return make_simulated_backend(index)
    from gpuudf.backends.cuda import cupy_usable  # noqa: PLC0415

    if not cupy_usable():
        msg = f"{device}: CuPy is not installed or sees no CUDA device (install gpuudf[cuda12] or gpuudf[cuda13])"
        raise BackendUnavailableError(msg)
    from gpuudf.backends.cuda import make_cupy_backend  # noqa: PLC0415

    try:
        return make_cupy_backend(index)
    except Exception as exc:
        msg = f"{device}: cannot use this GPU: {exc}"
        raise BackendUnavailableError(msg) from exc
