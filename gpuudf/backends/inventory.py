"""What device discovery reports: the machine's CPU cores and NVIDIA GPUs, as plain data.

Policy: this module holds data types only and imports nothing of gpuudf, so
that both the module that finds the GPUs (``cuda.py``, through NVML) and the
one that names devices and makes backends (``devices.py``) can use them while
the dependency between those two goes one way only: ``devices`` imports
``cuda`` (inside functions), never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DeviceInventory", "GPUInfo"]


@dataclass(frozen=True)
class GPUInfo:
    """One NVIDIA GPU as NVML reports it."""

    index: int
    name: str
    uuid: str
    total_memory_nbytes: int
    free_memory_nbytes: int


@dataclass(frozen=True)
class DeviceInventory:
    """What :func:`gpuudf.detect` found."""

    cpu_cores: int
    gpus: tuple[GPUInfo, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        lines = [f"CPU cores available to this process: {self.cpu_cores}"]
        if not self.gpus:
            lines.append("CUDA GPUs: none found (no NVIDIA driver, NVML or nvidia-ml-py)")
        lines.extend(
            f"cuda:{gpu.index}: {gpu.name}, {gpu.total_memory_nbytes / 2**30:.1f} GiB "
            f"({gpu.free_memory_nbytes / 2**30:.1f} GiB free), {gpu.uuid}"
            for gpu in self.gpus
        )
        return "\n".join(lines)
