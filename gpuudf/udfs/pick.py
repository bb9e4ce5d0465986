"""Raw frames of a small ROI (LiberTEM's ``PickUDF``).

Policy
------
- The result is LiberTEM's: one ``single`` buffer ``intensity`` of shape
  ``(frames selected, *sig)`` in the data's native dtype, the frames in flat
  nav order; without a ROI every frame of the dataset, flat.
- Unlike LiberTEM, no worker allocates that whole stack: the frames travel in
  a private ``nav`` buffer (one entry per selected frame of the partition,
  stored on the host compressed to the ROI), and ``get_results`` hands that
  array out as ``intensity`` without a copy.
- Picking is for a few frames: a run that would pick more than
  ``max_frames`` fails at its start, before any frame is read, naming
  ``max_frames`` and the count.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np

from gpuudf.buffers import BufferDeclaration
from gpuudf.errors import UDFDefinitionError
from gpuudf.udf import UDF

__all__ = ["DEFAULT_MAX_FRAMES", "PickUDF"]

#: How many frames a :class:`PickUDF` picks at most unless told otherwise.
DEFAULT_MAX_FRAMES = 1024


class PickUDF(UDF):
    """The raw frames of the ROI as one ``(frames, *sig)`` array ``intensity`` (LiberTEM's ``PickUDF``).

    Meant for picking a few frames, usually one.  ``result["intensity"]``
    is a ``single`` buffer: ``.data`` and ``.raw_data`` both hold the
    selected frames in flat nav order, in the data's own dtype.  In a
    partial result, the frames not merged yet are zeros and invalid in
    ``valid_mask``.

    Parameters
    ----------
    max_frames
        The most frames one run may pick (default
        :data:`DEFAULT_MAX_FRAMES`); ``None`` for no limit.  A run whose ROI
        selects more frames, or that has no ROI over a dataset of more
        frames, raises :class:`~gpuudf.UDFDefinitionError` before any frame
        is read.

    Raises
    ------
    TypeError
        If ``max_frames`` is not an integer or ``None``.
    ValueError
        If ``max_frames`` is less than 1.
    """

    def __init__(self, max_frames: int | None = DEFAULT_MAX_FRAMES) -> None:
        if max_frames is not None:
            if isinstance(max_frames, bool):
                msg = f"PickUDF max_frames must be an integer or None, got {max_frames!r}"
                raise TypeError(msg)
            try:
                limit = operator.index(max_frames)
            except TypeError:
                msg = f"PickUDF max_frames must be an integer or None, got {max_frames!r}"
                raise TypeError(msg) from None
            if limit < 1:
                msg = f"PickUDF max_frames must be at least 1 (or None for no limit), got {max_frames!r}"
                raise ValueError(msg)
        super().__init__(max_frames=max_frames)

    def get_preferred_input_dtype(self) -> Any:
        return self.USE_NATIVE_DTYPE

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def _selected_frames(self) -> int:
        roi = self.meta.roi
        if roi is None:
            return math.prod(self.meta.dataset_shape.nav)
        return int(np.count_nonzero(roi))

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        frames = self._selected_frames()
        limit = self.params.max_frames
        if limit is not None and frames > limit:
            selection = (
                f"its ROI selects {frames} frames"
                if self.meta.roi is not None
                else f"without a ROI it picks every frame of the dataset, {frames}"
            )
            msg = (
                f"PickUDF(max_frames={limit}) picks at most {limit} frames, but {selection}: "
                "pass a smaller roi, or a larger max_frames (None: no limit)"
            )
            raise UDFDefinitionError(msg)
        sig = tuple(self.meta.dataset_shape.sig)
        dtype = self.meta.input_dtype
        return {
            "picked": self.buffer(kind="nav", extra_shape=sig, dtype=dtype, use="private"),
            "intensity": self.buffer(kind="single", extra_shape=(frames, *sig), dtype=dtype, use="result_only"),
        }

    def process_tile(self, tile: Any) -> None:
        self.results.picked[...] = tile

    def get_results(self) -> Mapping[str, Any]:
        frames = self.results.picked  # on the host: one entry per selected frame, flat nav order
        merged = self.meta.get_valid_nav_mask()
        if merged is None or merged.all():
            return {"intensity": frames}
        valid = merged.reshape((len(merged),) + (1,) * (frames.ndim - 1))
        return {"intensity": self.with_mask(frames, valid)}
