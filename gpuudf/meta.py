"""``self.meta``: what a UDF knows about the run and where it is in the data.

Policy
------
- Attributes follow LiberTEM's ``UDFMeta``, with the same names and meaning,
  so UDF code that reads them ports unchanged.
- The engine moves the position on every frame, so the position is stored in
  its cheapest form (an int, a ``range`` or an index array) and everything
  derived from it (``slice``, ``coordinates``) is computed only when read.
- ``slice`` is in LiberTEM's coordinates: nav flattened and compressed to the
  ROI.  ``flat_positions`` gives the frames' flat nav indices in the whole
  dataset instead.
- On the host (``merge``, ``get_results``) there is no current position:
  ``slice`` is ``None``.  ``get_valid_nav_mask()`` is only known there; on
  workers it is ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuudf.shape import Shape
from gpuudf.slice import Slice

__all__ = ["UDFMeta"]


class UDFMeta:
    """What a UDF knows about the run and where it is in the data.

    ``slice`` and ``coordinates`` describe the frames the current hook sees:
    the whole partition in ``preprocess``/``postprocess``, the tile in
    ``process_tile``, one frame in ``process_frame``.
    """

    __slots__ = (
        "_flat_roi",
        "_partition_frames",
        "_positions",
        "_rank",
        "_valid_nav_mask",
        "array_backend",
        "dataset_dtype",
        "dataset_shape",
        "device_class",
        "device_id",
        "input_dtype",
        "threads_per_worker",
    )

    def __init__(
        self,
        *,
        dataset_shape: Shape,
        dataset_dtype: np.dtype[Any],
        input_dtype: np.dtype[Any],
        roi: np.ndarray[Any, np.dtype[np.bool_]] | None,
        device_class: str,
        device_id: int | None,
        array_backend: str,
        threads_per_worker: int | None = None,
    ) -> None:
        self.dataset_shape = dataset_shape
        self.dataset_dtype = dataset_dtype
        self.input_dtype = input_dtype
        self._flat_roi = None if roi is None else np.asarray(roi, dtype=bool).reshape(-1)
        self.device_class = device_class
        self.device_id = device_id
        self.array_backend = array_backend
        #: Threads a process method may use; ``None``: no limit was set.
        self.threads_per_worker = threads_per_worker
        # an int while process_frame runs (one frame), a range or index array while
        # other hooks run on a worker, None on the host (merge, get_results)
        self._positions: int | range | np.ndarray[Any, Any] | None = None
        self._partition_frames = 0
        self._rank: np.ndarray[Any, np.dtype[np.intp]] | None = None
        self._valid_nav_mask: np.ndarray[Any, np.dtype[np.bool_]] | None = None

    @property
    def roi(self) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        """The run's ROI, nav-shaped, or ``None`` when every frame is selected."""
        if self._flat_roi is None:
            return None
        return self._flat_roi.reshape(self.dataset_shape.nav)

    def _compressed(self, flat_index: int) -> int:
        """Rank of a selected frame among the ROI's frames."""
        if self._flat_roi is None:
            return flat_index
        if self._rank is None:
            self._rank = np.cumsum(self._flat_roi, dtype=np.intp) - 1
        return int(self._rank[flat_index])

    @property
    def slice(self) -> Slice | None:
        """The current frames as a :class:`~gpuudf.Slice`, LiberTEM's way.

        Nav is flattened and compressed to the ROI: origin ``(n, 0, ...)``
        for the n-th selected frame, shape ``(frames, *sig)``.  ``None`` on
        the host.
        """
        positions = self._positions
        if positions is None:
            return None
        if isinstance(positions, int):
            first, count = positions, 1
        else:
            count = len(positions)
            first = int(positions[0]) if count else 0
        sig = self.dataset_shape.sig
        origin = self._compressed(first) if count else 0
        return Slice((origin, *(0,) * len(sig)), Shape((count, *sig), sig_dims=len(sig)))

    @property
    def sig_slice(self) -> Slice:
        """The signal part of the current tile: always the whole frame, tiles hold whole frames."""
        sig = self.dataset_shape.sig
        return Slice.from_shape(sig, sig_dims=len(sig))

    @property
    def tiling_scheme_idx(self) -> int:
        """Index of the current tile's signal slice: always 0, tiles hold whole frames."""
        return 0

    @property
    def partition_shape(self) -> Shape:
        """``(selected frames of the partition, *sig)`` for the partition being processed."""
        sig = self.dataset_shape.sig
        return Shape((self._partition_frames, *sig), sig_dims=len(sig))

    @property
    def coordinates(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Nav coordinates of the current frames, shape ``(frames, nav_dims)``."""
        nav_shape = self.dataset_shape.nav
        flat = self.flat_positions
        return np.stack(np.unravel_index(flat, nav_shape), axis=-1)

    @property
    def flat_positions(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Flat nav indices (in the whole dataset) of the current frames; empty on the host."""
        positions = range(0) if self._positions is None else self._positions
        return np.asarray(positions, dtype=np.intp).reshape(-1)

    def get_valid_nav_mask(self, full_nav: bool = False) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        """The frames merged so far, flat; ``None`` on workers.

        In ``merge`` it holds the frames merged *before* the partition being
        merged; in ``get_results`` every merged frame.  Compressed to the ROI,
        as the host's nav buffers are, unless ``full_nav`` asks for one entry
        per frame of the dataset (``False`` outside the ROI).
        """
        mask = self._valid_nav_mask
        if mask is None or not full_nav or self._flat_roi is None:
            return mask
        full = np.zeros(self._flat_roi.size, dtype=bool)
        full[self._flat_roi] = mask
        return full
