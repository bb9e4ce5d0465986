"""Flat binary files: frames back to back, no header a reader must parse."""

from __future__ import annotations

import math
import os
from typing import Any

from gpuudf.datasets.dataset import axes_of, check_sync_offset
from gpuudf.datasets.files import BinaryFileDataSet, BinaryFrames, checked_path, int_argument, numeric_dtype
from gpuudf.shape import Shape

__all__ = ["RawFileDataSet"]


class RawFileDataSet(BinaryFileDataSet):
    """Frames stored back to back in a flat binary file, C order.

    Parameters
    ----------
    path
        The file.
    nav_shape, sig_shape
        The scan and the frame shape.
    dtype
        How each value is stored, e.g. ``"uint16"`` or ``">f4"`` for
        big-endian floats (frames are handed out in native byte order).
    sync_offset
        In frames: positive skips that many frames at the start of the file,
        negative leaves that many positions before the file's first frame,
        which runs do not process (as for every kind).
    header_nbytes
        Bytes to skip at the start of the file before the first frame.
    num_partitions
        Fixed partition count; by default chosen from the data size and the
        executor's workers.
    tileshape
        LiberTEM's ``(depth, *sig)``: tiles of at most ``depth`` frames; the
        sig part is accepted, tiles hold whole frames.
    """

    what = "raw dataset"
    kind = "raw"

    def __init__(
        self,
        path: str | os.PathLike[str],
        nav_shape: tuple[int, ...],
        sig_shape: tuple[int, ...],
        dtype: Any,
        *,
        sync_offset: int = 0,
        header_nbytes: int = 0,
        num_partitions: int | None = None,
        tileshape: tuple[int, ...] | None = None,
    ) -> None:
        resolved = checked_path(path, self.what)
        nav = axes_of("nav_shape", nav_shape)
        sig = axes_of("sig_shape", sig_shape)
        stored_dtype = numeric_dtype(dtype, self.what)
        sync_offset = int_argument("sync_offset", sync_offset)
        header_nbytes = int_argument("header_nbytes", header_nbytes, minimum=0)
        num_frames = math.prod(nav)
        # the file must hold every stored frame used: up to frame nav + sync_offset
        check_sync_offset(sync_offset, num_frames, num_frames + max(sync_offset, 0))
        frames = BinaryFrames(
            resolved,
            offset_nbytes=header_nbytes,
            frame_shape=sig,
            dtype=stored_dtype,
            num_frames=num_frames + sync_offset,
        )
        need = []
        if header_nbytes:
            need.append(f"after a {header_nbytes}-byte header")
        if sync_offset > 0:
            need.append(f"after skipping {sync_offset} frames (sync_offset)")
        elif sync_offset < 0:
            need.append(f"less {-sync_offset} frames of zeros (sync_offset)")
        file_frames = max(0, resolved.stat().st_size - header_nbytes) // frames.frame_nbytes
        super().__init__(
            frames,
            Shape((*nav, *sig), sig_dims=len(sig)),
            num_partitions,
            describe_need="".join(f" {n}" for n in need),
            sync_offset=sync_offset,
            stored_frames=file_frames,
            tileshape=tileshape,
        )
