"""Frames drawn on a kept background (``gpuudf.viz.render``): the pixels of a full draw, for less."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import matplotlib as mpl
import matplotlib.image
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gpuudf.viz import Channel, ChannelData
from gpuudf.viz.drawing import ChannelArtist
from gpuudf.viz.render import FrameRenderer, figure_signature, forget_figures


@pytest.fixture(autouse=True)
def _agg_and_nothing_remembered() -> Iterator[None]:
    previous = mpl.get_backend()
    mpl.use("Agg")
    forget_figures()
    yield
    forget_figures()
    mpl.use(previous)


def channel_data(data: np.ndarray[Any, Any], *, log: bool = False, kind: str = "nav", name: str = "x") -> ChannelData:
    valid = np.ones(data.shape, dtype=bool)
    valid.flat[::7] = False  # some entries not merged yet: grey, or gaps in a line
    return ChannelData(Channel(name, log=log), 0, "SomeUDF", kind, data, valid)


def placeholder(like: ChannelData) -> ChannelData:
    nothing = np.full(like.data.shape, np.nan)
    return ChannelData(like.channel, 0, "SomeUDF", like.kind, nothing, np.zeros(like.data.shape, dtype=bool))


def figure_of(channels: list[ChannelData]) -> tuple[FrameRenderer, list[ChannelArtist]]:
    figure = Figure(figsize=(4.4 * len(channels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    artists = [
        ChannelArtist(figure.add_subplot(1, len(channels), position + 1), placeholder(channel))
        for position, channel in enumerate(channels)
    ]
    return FrameRenderer(figure, artists, figure_signature(figure, (1, len(channels)), artists)), artists


def assert_same_picture(fast: np.ndarray[Any, Any], full: np.ndarray[Any, Any]) -> None:
    # the ends of antialiased minor ticks on a log scale may differ by a grey level
    assert np.abs(fast.astype(np.int16) - full).max() <= 1


def pixels(renderer: FrameRenderer) -> np.ndarray[Any, Any]:
    canvas: Any = renderer.figure.canvas
    return np.array(canvas.buffer_rgba(), copy=True)


def shown_frame(renderer: FrameRenderer, artists: list[ChannelArtist], channels: list[ChannelData]) -> None:
    for artist, channel in zip(artists, channels, strict=True):
        artist.show(channel)
    renderer.render()


@pytest.fixture
def channels(rng: np.random.Generator) -> list[ChannelData]:
    """An image, an image on a log scale with a range of decades, and a line."""
    return [
        channel_data(rng.random((24, 32)) * 3e4),
        channel_data(10 ** (rng.random((16, 16)) * 5), log=True, kind="sig", name="y"),
        channel_data(rng.random(50) - 0.5, name="z"),
    ]


def test_a_frame_on_the_kept_background_has_the_pixels_of_a_full_draw(channels: list[ChannelData]) -> None:
    renderer, artists = figure_of(channels)
    renderer.render()  # the background, with placeholders
    shown_frame(renderer, artists, channels)
    fast = pixels(renderer)
    renderer.figure.canvas.draw()
    assert_same_picture(fast, pixels(renderer))


def test_a_frame_after_a_frame_with_another_range_has_the_pixels_of_a_full_draw(
    channels: list[ChannelData],
) -> None:
    renderer, artists = figure_of(channels)
    shown_frame(renderer, artists, channels)
    widened = [
        ChannelData(c.channel, 0, c.udf_name, c.kind, c.data * 1000 + 1, np.ones(c.data.shape, dtype=bool))
        for c in channels
    ]
    shown_frame(renderer, artists, widened)
    fast = pixels(renderer)
    renderer.figure.canvas.draw()
    assert_same_picture(fast, pixels(renderer))


def test_a_second_figure_of_the_same_look_reuses_its_layout_and_background(
    channels: list[ChannelData], agg_full_draws: list[object]
) -> None:
    first, first_artists = figure_of(channels)
    shown_frame(first, first_artists, channels)
    agg_full_draws.clear()
    second, second_artists = figure_of(channels)
    shown_frame(second, second_artists, channels)
    assert agg_full_draws == []
    assert [a.get_position().bounds for a in second.figure.axes] == [a.get_position().bounds for a in first.figure.axes]
    assert np.array_equal(pixels(second), pixels(first))


def test_a_figure_with_another_title_gets_a_layout_and_background_of_its_own(channels: list[ChannelData]) -> None:
    first, first_artists = figure_of(channels)
    shown_frame(first, first_artists, channels)
    retitled = [
        ChannelData(Channel(c.name, title="another title", log=c.log), 0, "SomeUDF", c.kind, c.data, c.valid)
        for c in channels
    ]
    second, second_artists = figure_of(retitled)
    shown_frame(second, second_artists, retitled)
    assert not np.array_equal(pixels(second), pixels(first))
    second.figure.canvas.draw()
    fast = pixels(second)
    shown_frame(second, second_artists, retitled)
    assert_same_picture(pixels(second), fast)


def test_the_png_holds_the_rendered_frame(channels: list[ChannelData]) -> None:
    renderer, artists = figure_of(channels)
    shown_frame(renderer, artists, channels)
    decoded = matplotlib.image.imread(io.BytesIO(renderer.png()), format="png")
    assert np.array_equal(np.round(decoded * 255).astype(np.uint8), pixels(renderer))
