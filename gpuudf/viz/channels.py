"""Channels: which result buffers a live plot shows, and the data it is handed.

Policy
------
- A channel is named before the run and checked against the buffers the UDFs
  declare, so a misspelt name is a ``ValueError`` before any worker does
  work; its data is taken from each step's results while the run goes on.
- The default choice follows LiberTEM: every returned buffer whose shape,
  without axes of length 1, is 2-D; here only ``nav`` and ``sig`` buffers
  (images over the scan or the detector; a 2-D ``single`` buffer, such as a
  fit's coefficients, is rarely an image, and can be named) of numeric dtype
  (an ``object`` or string buffer has nothing to draw).
- The data a plot receives is the step's result itself (squeezed, read-only),
  never a copy: the final frame of a plot is exactly the final result.
- Nothing here imports Matplotlib.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gpuudf.results import BufferWrapper

__all__ = ["BufferInfo", "Channel", "ChannelData", "UDFBuffers", "default_channels", "resolve_channel"]

Transform = Callable[[np.ndarray[Any, Any]], Any]

_PLOTTABLE_KINDS = "biufc"


class BufferInfo(NamedTuple):
    """What a run knows of one returned buffer before it starts."""

    kind: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


class UDFBuffers(NamedTuple):
    """One UDF of a run: the user's object, its class name and its returned buffers."""

    udf: object
    name: str
    buffers: Mapping[str, BufferInfo]


@dataclass(frozen=True)
class Channel:
    """One result buffer of one UDF, as a plot should show it.

    Parameters
    ----------
    buffer
        The buffer's name, as ``get_result_buffers`` declares it.
    udf
        Which UDF of the run: its position in the list given to ``run_udf``,
        or the UDF object itself.
    title
        Shown above the plot; by default ``"<UDF class>: <buffer>"``.
    colormap
        A Matplotlib colormap name for 2-D channels.
    log
        Logarithmic colour (2-D) or value (1-D) scale; values that are not
        positive are left out.
    transform
        Applied to the buffer's full data before it is plotted (LiberTEM's
        ``(name, callable)`` form), for example ``np.abs`` or a slice.
    """

    buffer: str
    udf: int | object = 0
    title: str | None = None
    colormap: str = "viridis"
    log: bool = False
    transform: Transform | None = field(default=None, compare=False)

    @classmethod
    def coerce(cls, spec: object, udf: int | object = 0) -> Channel:
        """A channel from what ``plots=`` and plot constructors accept: a name, ``(name, callable)``, a Channel."""
        if isinstance(spec, Channel):
            return spec
        if isinstance(spec, str):
            return cls(spec, udf=udf)
        if isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[0], str) and callable(spec[1]):
            return cls(spec[0], udf=udf, transform=spec[1])
        msg = f"a channel is a buffer name, a (name, callable) pair or a gpuudf.viz.Channel, got {spec!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class ChannelData:
    """A channel as a plot receives it at an update.

    Attributes
    ----------
    channel
        The :class:`Channel` asked for, ``udf`` as given.
    udf_index, udf_name
        The UDF's position in the run and its class name.
    kind
        The buffer's kind: ``"nav"`` (an image over the scan), ``"sig"`` (a
        detector image) or ``"single"``.
    data
        The values, with axes of length 1 removed: 1-D or 2-D for the
        built-in plots.  Read-only; complex buffers arrive as their magnitude.
    valid
        Booleans of ``data``'s shape: which entries hold merged results
        (``BufferWrapper.valid_mask``, and finite).
    final
        Whether this is the run's final result.
    """

    channel: Channel
    udf_index: int
    udf_name: str
    kind: str
    data: np.ndarray[Any, Any]
    valid: np.ndarray[Any, np.dtype[np.bool_]]
    final: bool = False

    @property
    def name(self) -> str:
        """The buffer's name."""
        return self.channel.buffer

    @property
    def title(self) -> str:
        """The channel's title, or ``"<UDF class>: <buffer>"``."""
        if self.channel.title is not None:
            return self.channel.title
        transform = self.channel.transform
        shown = self.name if transform is None else f"{getattr(transform, '__name__', 'f')}({self.name})"
        return f"{self.udf_name}: {shown}"

    @property
    def colormap(self) -> str:
        """The colormap's name."""
        return self.channel.colormap

    @property
    def log(self) -> bool:
        """Whether the scale is logarithmic."""
        return self.channel.log

    @property
    def label(self) -> str:
        """A file-name-safe label, unique per UDF position and buffer: ``"0-SumUDF-intensity"``."""
        raw = f"{self.udf_index}-{self.udf_name}-{self.name}"
        if self.channel.transform is not None:
            raw += "-" + getattr(self.channel.transform, "__name__", "transformed")
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)

    @classmethod
    def placeholder(cls, channel: Channel, index: int, udf: UDFBuffers) -> ChannelData:
        """The channel before any frame is merged: NaN everywhere, nothing valid (shape from the declaration)."""
        info = udf.buffers[channel.buffer]
        data = np.full(info.shape, np.nan)
        if channel.transform is not None:  # its output's shape decides how the channel is drawn
            data = np.asarray(channel.transform(data), dtype=float)
        shape = tuple(n for n in data.shape if n != 1) or (1,)
        data = data.reshape(shape)
        return cls(channel, index, udf.name, info.kind, _read_only(data), np.zeros(shape, dtype=bool))

    @classmethod
    def of_results(
        cls, channel: Channel, index: int, udf_name: str, results: Mapping[str, BufferWrapper], *, final: bool
    ) -> ChannelData:
        """The channel's data in one step's results of its UDF."""
        wrapper = results[channel.buffer]
        data = np.asarray(wrapper.data)
        valid = np.asarray(wrapper.valid_mask)
        if channel.transform is not None:
            transformed = np.asarray(channel.transform(data))
            valid = _transformed_valid(channel.transform, valid, transformed.shape)
            data = transformed
        if data.dtype.kind == "c":
            data = np.abs(data)
        squeezed = tuple(n for n in data.shape if n != 1) or (1,)
        data = data.reshape(squeezed)
        valid = valid.reshape(squeezed)
        if data.dtype.kind in "fc":
            valid = valid & np.isfinite(data)
        return cls(channel, index, udf_name, wrapper.kind, _read_only(data), _read_only(valid), final)


def _transformed_valid(
    transform: Transform, valid: np.ndarray[Any, Any], shape: tuple[int, ...]
) -> np.ndarray[Any, Any]:
    """The valid mask through the same transform where that keeps its meaning (a selection, a slice)."""
    try:
        moved = np.asarray(transform(valid))
    except Exception:  # noqa: BLE001 - a transform made for numbers need not take booleans
        moved = None
    if moved is not None and moved.shape == shape and moved.dtype == np.bool_:
        return moved
    return np.ones(shape, dtype=bool)  # a reduction: which entries it drew from is unknown


def _read_only(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    view = array.view()
    view.flags.writeable = False
    return view


def _plottable(info: BufferInfo) -> bool:
    return info.dtype.kind in _PLOTTABLE_KINDS


def squeezed_ndim(shape: tuple[int, ...]) -> int:
    """Dimensions of ``shape`` without its axes of length 1."""
    return sum(1 for n in shape if n != 1)


def default_channels(udfs: Sequence[UDFBuffers], index: int) -> list[Channel]:
    """The default channels of UDF ``index``: its numeric nav and sig buffers, 2-D without length-1 axes."""
    return [
        Channel(name, udf=index)
        for name, info in udfs[index].buffers.items()
        if info.kind in {"nav", "sig"} and _plottable(info) and squeezed_ndim(info.shape) == 2
    ]


def resolve_channel(channel: Channel, udfs: Sequence[UDFBuffers], ndims: Sequence[int]) -> tuple[int, Channel]:
    """The UDF position of ``channel``, checked against the run's buffers.

    Parameters
    ----------
    channel
        As a plot names it.
    udfs
        The run's UDFs.
    ndims
        Dimensions (without length-1 axes) the plot can show; not checked for
        channels with a ``transform``, whose output is known only later.

    Raises
    ------
    ValueError
        For a UDF position out of range or a UDF object not in the run, a
        name that is not a returned buffer, a buffer that is not numeric or
        has a dimension the plot cannot show.
    """
    index = _udf_index(channel.udf, udfs)
    udf = udfs[index]
    info = udf.buffers.get(channel.buffer)
    if info is None:
        msg = (
            f"plots: {udf.name} (UDF #{index}) has no result buffer {channel.buffer!r}; "
            f"it returns {sorted(udf.buffers)}"
        )
        raise ValueError(msg)
    if not _plottable(info):
        msg = f"plots: {udf.name}.{channel.buffer} has dtype {info.dtype}, which cannot be plotted"
        raise ValueError(msg)
    ndim = squeezed_ndim(info.shape)
    if channel.transform is None and ndim not in ndims:
        shown = " or ".join(f"{n}-D" for n in ndims)
        msg = (
            f"plots: {udf.name}.{channel.buffer} has shape {info.shape}, {ndim}-D without its length-1 axes; "
            f"this plot shows {shown} channels (give a (name, callable) pair that makes it so)"
        )
        raise ValueError(msg)
    return index, channel


def _udf_index(udf: int | object, udfs: Sequence[UDFBuffers]) -> int:
    if isinstance(udf, int) and not isinstance(udf, bool):
        if not 0 <= udf < len(udfs):
            msg = f"plots: a channel names UDF #{udf}, but the run has {len(udfs)} UDF(s)"
            raise ValueError(msg)
        return udf
    for index, entry in enumerate(udfs):
        if entry.udf is udf:
            return index
    msg = f"plots: a channel names the UDF {udf!r}, which is not one of this run's UDFs"
    raise ValueError(msg)
