"""Live plots (API.md §4, ``plots=``): argument forms, the plot thread, the built-in plot classes.

Everything is drawn headless: the module switches Matplotlib to Agg.  What a
plot shows is checked through the data it is handed (``ChannelData``), which
is independent of how a PNG encodes it; the PNG tests only check that the
files are real images of the right size.
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import matplotlib as mpl
import matplotlib.image
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, UDFRunCancelled
from gpuudf.udfs import CoMUDF, SumSigUDF, SumUDF
from gpuudf.viz import Channel, ChannelData, LivePlot, MatplotlibPlots, PlotWarning, PNGPlots, selection
from tests.udfs_for_tests import HookError, RaisingUDF

NAV, SIG = (6, 8), (10, 12)


@pytest.fixture(autouse=True)
def _agg_backend() -> Iterator[None]:
    previous = mpl.get_backend()
    mpl.use("Agg")
    yield
    mpl.use(previous)


@pytest.fixture
def inline_ctx() -> Iterator[gpuudf.Context]:
    """A Context on the inline executor: runs in this thread, so a UDF may sleep or count."""
    with gpuudf.Context.make_with("inline") as context:
        yield context


@pytest.fixture
def data(rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """A small scan whose frames and frame sums all differ."""
    return rng.random((*NAV, *SIG)).astype(np.float32)


def plot_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gpuudf-plots"]


class RecordingPlot(LivePlot):
    """Keeps copies of everything it is handed, and which thread handed it."""

    def __init__(self, channels: Sequence[object] | None = None, rate: float = 2.0, delay_s: float = 0.0) -> None:
        super().__init__(channels, rate)
        self.delay_s = delay_s
        self.opened: list[ChannelData] = []
        self.updates: list[list[ChannelData]] = []
        self.finals: list[list[ChannelData]] = []
        self.threads: set[str] = set()

    def open(self, channels: Sequence[ChannelData]) -> None:
        self.opened = list(channels)

    def update(self, channels: Sequence[ChannelData]) -> None:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        self.updates.append([_copied(c) for c in channels])

    def finish(self, channels: Sequence[ChannelData]) -> None:
        self.threads.add(threading.current_thread().name)
        self.finals.append([_copied(c) for c in channels])


def _copied(channel: ChannelData) -> ChannelData:
    return ChannelData(
        channel.channel,
        channel.udf_index,
        channel.udf_name,
        channel.kind,
        np.array(channel.data),
        np.array(channel.valid),
        channel.final,
    )


class RecordingMatplotlibPlots(MatplotlibPlots):
    """What ``plots=True`` and channel lists make, with what it was finally handed."""

    made: ClassVar[list[RecordingMatplotlibPlots]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.final: list[ChannelData] = []
        RecordingMatplotlibPlots.made.append(self)

    def finish(self, channels: Sequence[ChannelData]) -> None:
        super().finish(channels)
        self.final = [_copied(c) for c in channels]


@pytest.fixture
def made_plots(monkeypatch: pytest.MonkeyPatch) -> list[RecordingMatplotlibPlots]:
    """The MatplotlibPlots objects the run makes from ``plots=True`` or channel lists."""
    RecordingMatplotlibPlots.made = []
    monkeypatch.setattr(selection, "MatplotlibPlots", RecordingMatplotlibPlots)
    return RecordingMatplotlibPlots.made


class SlowSumSigUDF(UDF):
    """SumSigUDF that takes ``delay_s`` per partition: a run long enough to be throttled."""

    def __init__(self, delay_s: float = 0.02) -> None:
        super().__init__(delay_s=delay_s)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"intensity": self.buffer(kind="nav", dtype="float32")}

    def process_partition(self, partition: Any) -> None:
        time.sleep(self.params.delay_s)
        self.results.intensity[:] = partition.sum(axis=(1, 2))


class CountingSlowSumSigUDF(SlowSumSigUDF):
    """Counts its ``get_results`` calls (host side, so inline runs only): how often a step's results were made."""

    results_made = 0

    def get_results(self) -> dict[str, Any]:
        CountingSlowSumSigUDF.results_made += 1
        return {}


class StackUDF(UDF):
    """A 3-D nav buffer, an object buffer and a 2-D single buffer (no image): nothing plots=True draws."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {
            "stack": self.buffer(kind="nav", extra_shape=(3,), dtype="float32"),
            "labels": self.buffer(kind="single", dtype=object),
            "fit": self.buffer(kind="single", extra_shape=(3, 2), dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.stack[:] = frame.ravel()[:3]

    def merge(self, dest: Any, src: Any) -> None:
        dest.stack[:] = src.stack


class ExplodingSumUDF(SumUDF):
    """SumUDF that fails at its first tile: a run that raised anything else never processed data."""

    def process_tile(self, tile: Any) -> None:
        msg = "a tile was processed"
        raise AssertionError(msg)


def assert_equals_result(channel: ChannelData, wrapper: gpuudf.BufferWrapper) -> None:
    assert channel.final
    assert_array_equal(channel.data, np.asarray(wrapper.data).squeeze())
    assert channel.valid.all()


# ---------------------------------------------------------------- plots=True and channel lists


def test_plots_true_draws_every_2d_result_and_its_final_frame_is_the_final_result(
    ctx: gpuudf.Context, data: np.ndarray[Any, Any], made_plots: list[RecordingMatplotlibPlots]
) -> None:
    ds = ctx.load("memory", data=data, num_partitions=4)
    sums, frame_sums = ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF()], plots=True)
    (plot,) = made_plots
    assert [(c.udf_index, c.name, c.kind) for c in plot.final] == [(0, "intensity", "sig"), (1, "intensity", "nav")]
    assert_equals_result(plot.final[0], sums["intensity"])
    assert_equals_result(plot.final[1], frame_sums["intensity"])
    drawn = [(ax.get_title(), image.get_array().shape) for ax in plot.figure.axes for image in ax.get_images()]
    assert drawn == [("SumUDF: intensity", SIG), ("SumSigUDF: intensity", NAV)]
    assert not plot_threads()


def test_plots_true_skips_results_that_are_not_2d_with_a_warning(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], made_plots: list[RecordingMatplotlibPlots]
) -> None:
    ds = inline_ctx.load("memory", data=data)
    with pytest.warns(PlotWarning, match=r"no plottable 2-D result in UDF #1 \(StackUDF\)") as caught:
        inline_ctx.run_udf(dataset=ds, udf=[SumUDF(), StackUDF()], plots=True)
    assert caught[0].filename == __file__  # the warning points at the run_udf call
    (plot,) = made_plots
    assert [c.buffer for c in plot.channels] == ["intensity"]


def test_one_list_of_buffer_names_per_udf_chooses_the_channels(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], made_plots: list[RecordingMatplotlibPlots]
) -> None:
    ds = inline_ctx.load("memory", data=data, num_partitions=3)
    sums, com = inline_ctx.run_udf(dataset=ds, udf=[SumUDF(), CoMUDF()], plots=[["intensity"], ["field_x", "field_y"]])
    (plot,) = made_plots
    assert [(c.udf_index, c.name) for c in plot.final] == [(0, "intensity"), (1, "field_x"), (1, "field_y")]
    assert_equals_result(plot.final[0], sums["intensity"])
    assert_array_equal(plot.final[2].data, com["field_y"].data)
    assert len(plot.figure.axes) == 3 * 2  # each image has its colour bar


def test_a_name_and_callable_pair_plots_the_transformed_buffer(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], made_plots: list[RecordingMatplotlibPlots]
) -> None:
    ds = inline_ctx.load("memory", data=data)
    res = inline_ctx.run_udf(dataset=ds, udf=SumUDF(), plots=[[("intensity", np.log1p)]])
    (channel,) = made_plots[0].final
    assert channel.title == "SumUDF: log1p(intensity)"
    np.testing.assert_allclose(channel.data, np.log1p(res["intensity"].data))


def test_a_1d_channel_is_drawn_as_a_line(inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]) -> None:
    line_scan = inline_ctx.load("memory", data=data.reshape(-1, *SIG), num_partitions=3)
    plot = MatplotlibPlots(["intensity"])
    res = inline_ctx.run_udf(dataset=line_scan, udf=SumSigUDF(), plots=[plot])
    (line,) = plot.figure.axes[0].get_lines()
    assert_array_equal(np.asarray(line.get_ydata()), res["intensity"].data)


# ---------------------------------------------------------------- custom plots


def test_a_custom_plot_opens_with_placeholders_and_ends_with_the_final_result(
    ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = ctx.load("memory", data=data, num_partitions=3)
    plot = RecordingPlot([Channel("intensity", title="frame sums", colormap="magma", log=True)])
    res = ctx.run_udf(dataset=ds, udf=SumSigUDF(), plots=[plot])
    (opened,) = plot.opened
    assert opened.data.shape == NAV
    assert np.isnan(opened.data).all()
    assert not opened.valid.any()
    ((final,),) = plot.finals
    assert (final.name, final.title, final.colormap, final.log, final.kind) == (
        "intensity",
        "frame sums",
        "magma",
        True,
        "nav",
    )
    assert_equals_result(final, res["intensity"])
    assert plot.threads == {"gpuudf-plots"}


def test_a_2d_single_buffer_is_plotted_when_named(inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]) -> None:
    plot = RecordingPlot([Channel("fit")])
    inline_ctx.run_udf(dataset=inline_ctx.load("memory", data=data), udf=StackUDF(), plots=[plot])
    ((final,),) = plot.finals
    assert (final.kind, final.data.shape) == ("single", (3, 2))


def test_a_channel_may_name_its_udf_by_the_object(inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]) -> None:
    ds = inline_ctx.load("memory", data=data)
    frame_sums = SumSigUDF()
    plot = RecordingPlot([Channel("intensity", udf=frame_sums)])
    res = inline_ctx.run_udf(dataset=ds, udf=[SumUDF(), frame_sums], plots=plot)
    ((final,),) = plot.finals
    assert final.udf_index == 1
    assert_equals_result(final, res[1]["intensity"])


def test_a_partial_update_shows_only_merged_frames_as_valid(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = inline_ctx.load("memory", data=data, num_partitions=NAV[0])
    plot = RecordingPlot(["intensity"], rate=1000.0)
    res = inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.01), plots=[plot])
    assert plot.updates
    for (update,) in plot.updates:
        merged = update.valid.all(axis=1)  # partitions are whole scan rows
        assert 0 < merged.sum() < NAV[0]
        assert np.isnan(update.data[~merged]).all()
        assert_array_equal(update.data[merged], res["intensity"].data[merged])


# ---------------------------------------------------------------- the plot thread


def test_updates_are_throttled_to_the_rate_plus_the_final_one(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=48)
    rate = 10.0
    plot = RecordingPlot(["intensity"], rate=rate)
    started = time.monotonic()
    inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.02), plots=[plot])
    elapsed = time.monotonic() - started
    assert 2 <= len(plot.updates) <= math.floor(elapsed * rate)
    assert len(plot.finals) == 1


def test_a_slow_plot_is_skipped_while_it_draws_instead_of_slowing_the_run(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=48)
    plot = RecordingPlot(["intensity"], rate=1000.0, delay_s=0.25)
    CountingSlowSumSigUDF.results_made = 0
    started = time.monotonic()
    inline_ctx.run_udf(dataset=ds, udf=CountingSlowSumSigUDF(delay_s=0.02), plots=[plot])
    elapsed = time.monotonic() - started
    assert 1 <= len(plot.updates) <= elapsed / 0.25 + 1
    assert len(plot.finals) == 1
    # a step skipped while the plot draws costs the run nothing: its results are never made
    assert CountingSlowSumSigUDF.results_made == len(plot.updates) + 1


def test_a_failing_plot_warns_once_and_the_run_and_the_other_plots_go_on(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    class BrokenPlot(RecordingPlot):
        def update(self, channels: Sequence[ChannelData]) -> None:
            self.updates.append([])
            msg = "the plot's own bug"
            raise ZeroDivisionError(msg)

        def finish(self, channels: Sequence[ChannelData]) -> None:
            self.update(channels)

    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=48)
    broken, working = BrokenPlot(["intensity"], rate=1000.0), RecordingPlot(["intensity"], rate=1000.0)
    with pytest.warns(PlotWarning, match="raised ZeroDivisionError: the plot's own bug") as caught:
        res = inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.005), plots=[broken, working])
    assert len(caught) == 1
    assert len(broken.updates) == 1
    assert_equals_result(working.finals[0][0], res["intensity"])
    assert len(working.updates) >= 1


def test_a_plot_that_fails_to_open_warns_and_gets_no_calls(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    class UnopenablePlot(RecordingPlot):
        def open(self, channels: Sequence[ChannelData]) -> None:
            msg = "no display"
            raise OSError(msg)

    plot = UnopenablePlot()
    with pytest.warns(PlotWarning, match="no display"):
        res = inline_ctx.run_udf(dataset=inline_ctx.load("memory", data=data), udf=SumUDF(), plots=[plot])
    assert res["intensity"].data.shape == SIG
    assert not plot.finals


def test_run_udf_iter_delivers_the_final_step_before_yielding_it(
    ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = ctx.load("memory", data=data, num_partitions=3)
    plot = RecordingPlot(["intensity"])
    last = None
    for last in ctx.run_udf_iter(dataset=ds, udf=SumSigUDF(), plots=[plot]):  # noqa: B007
        pass
    assert last is not None
    assert_equals_result(plot.finals[0][0], last.buffers[0]["intensity"])
    assert not plot_threads()


def test_sync_false_plots_the_same_final_result(ctx: gpuudf.Context, data: np.ndarray[Any, Any]) -> None:
    ds = ctx.load("memory", data=data, num_partitions=3)
    plot = RecordingPlot(["intensity"])

    async def main() -> dict[str, gpuudf.BufferWrapper]:
        return await ctx.run_udf(dataset=ds, udf=SumSigUDF(), plots=[plot], sync=False)

    res = asyncio.run(main())
    assert_equals_result(plot.finals[0][0], res["intensity"])
    assert not plot_threads()


def test_the_plot_thread_stops_when_the_iterator_is_closed_early(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=48)
    plot = RecordingPlot(["intensity"], rate=1000.0)
    steps = inline_ctx.run_udf_iter(dataset=ds, udf=SlowSumSigUDF(delay_s=0.01), plots=[plot])
    for count, _ in enumerate(steps):
        if count == 20:
            break
    steps.close()
    assert not plot_threads()
    assert not plot.finals


def test_the_plot_thread_stops_when_the_run_is_cancelled(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]
) -> None:
    ds = inline_ctx.load("memory", data=data, num_partitions=NAV[0])
    plot = RecordingPlot(["intensity"], rate=1000.0)
    steps = inline_ctx.run_udf_iter(dataset=ds, udf=SlowSumSigUDF(delay_s=0.01), plots=[plot])
    with pytest.raises(UDFRunCancelled):  # noqa: PT012 - the cancel happens inside the loop
        for _ in steps:
            steps.cancel()
    assert not plot_threads()
    assert not plot.finals


def test_the_plot_thread_stops_when_a_udf_fails(inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]) -> None:
    ds = inline_ctx.load("memory", data=data, num_partitions=3)
    plot = RecordingPlot()
    with pytest.raises(HookError):
        inline_ctx.run_udf(dataset=ds, udf=RaisingUDF("process_tile", skip=1), plots=[plot])
    assert not plot_threads()
    assert not plot.finals


# ---------------------------------------------------------------- PNG files


def test_png_plots_write_one_image_per_channel_that_shows_the_final_result(
    ctx: gpuudf.Context, data: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    ds = ctx.load("memory", data=data, num_partitions=3)
    plot = PNGPlots(tmp_path / "plots", dpi=50, size=(4.0, 3.0))
    ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF()], plots=plot)
    assert [p.name for p in plot.paths] == ["0-SumUDF-intensity.png", "1-SumSigUDF-intensity.png"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in plot.paths)
    for path in plot.paths:
        image = matplotlib.image.imread(path)
        assert image.shape == (150, 200, 4)
        assert image[..., :3].std() > 0.05  # drawn, not a blank canvas


def test_a_second_png_plot_whose_channels_look_the_same_makes_no_figure_and_draws_the_same_files(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpuudf.viz import png as viz_png

    ds = inline_ctx.load("memory", data=data)
    first = PNGPlots(tmp_path / "first", dpi=40)
    inline_ctx.run_udf(dataset=ds, udf=SumUDF(), plots=first)
    made: list[object] = []
    new_figure = viz_png.PNGPlots._new_figure

    def counted(plot: PNGPlots, channel: ChannelData) -> Any:
        made.append(channel)
        return new_figure(plot, channel)

    monkeypatch.setattr(viz_png.PNGPlots, "_new_figure", counted)
    second = PNGPlots(tmp_path / "second", dpi=40)
    inline_ctx.run_udf(dataset=ds, udf=SumUDF(), plots=second)
    assert made == []
    assert second.paths[0].read_bytes() == first.paths[0].read_bytes()
    other_title = PNGPlots(tmp_path / "third", [Channel("intensity", title="detector sum")], dpi=40)
    inline_ctx.run_udf(dataset=ds, udf=SumUDF(), plots=other_title)
    assert len(made) == 1


def test_matplotlib_plots_without_a_screen_draw_nothing_until_the_figure_is_read(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], agg_full_draws: list[object]
) -> None:
    plot = MatplotlibPlots(rate=1000.0)
    ds = inline_ctx.load("memory", data=data, num_partitions=NAV[0])
    res = inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.01), plots=[plot])
    assert agg_full_draws == []
    (image,) = plot.figure.axes[0].get_images()
    assert_array_equal(np.ma.getdata(image.get_array()), res["intensity"].data)
    assert not np.ma.getmaskarray(image.get_array()).any()


def test_png_plots_overwrite_their_files_at_each_update(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    class CountingPNGPlots(PNGPlots):
        writes = 0

        def update(self, channels: Sequence[ChannelData]) -> None:
            super().update(channels)
            self.writes += 1

    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=48)
    plot = CountingPNGPlots(tmp_path, ["intensity"], rate=1000.0, dpi=30)
    inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.01), plots=plot)
    assert plot.writes >= 2
    assert [p.name for p in tmp_path.iterdir()] == ["0-SlowSumSigUDF-intensity.png"]


# ---------------------------------------------------------------- invalid arguments


INVALID_PLOTS = [
    pytest.param([["nope"], []], r"SumUDF \(UDF #0\) has no result buffer 'nope'", id="unknown-name"),
    pytest.param([["intensity"]], r"gives 1 list\(s\) of channels, but the run has 2 UDF\(s\)", id="one-list-short"),
    pytest.param(["intensity"], "one list of buffer names per UDF", id="flat-list-of-names"),
    pytest.param(3, "plots= takes None, True", id="a-number"),
    pytest.param([[42], []], "a channel is a buffer name", id="not-a-name"),
    pytest.param([RecordingPlot([Channel("intensity", udf=5)])], "names UDF #5, but the run has 2", id="udf-index"),
    pytest.param([RecordingPlot([Channel("intensity", udf=SumUDF())])], "not one of this run's UDFs", id="udf-obj"),
    pytest.param([[], ["stack"]], r"has shape \(6, 8, 3\), 3-D", id="3d-buffer"),
    pytest.param([[], ["labels"]], "dtype object, which cannot be plotted", id="object-buffer"),
]


@pytest.mark.parametrize(("plots", "message"), INVALID_PLOTS)
def test_invalid_plots_are_a_value_error_before_any_work(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], plots: object, message: str
) -> None:
    ds = inline_ctx.load("memory", data=data)
    with pytest.raises(ValueError, match=message):
        inline_ctx.run_udf_iter(dataset=ds, udf=[SumUDF(), StackUDF()], plots=plots)  # at the call, not at next()
    with pytest.raises(ValueError, match=message):  # not the UDF's own error: it never processed a frame
        inline_ctx.run_udf(dataset=ds, udf=[ExplodingSumUDF(), StackUDF()], plots=plots)


def test_the_same_plot_object_twice_is_a_value_error(inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any]) -> None:
    plot = RecordingPlot()
    with pytest.raises(ValueError, match="the same plot object is given twice"):
        inline_ctx.run_udf(dataset=inline_ctx.load("memory", data=data), udf=SumUDF(), plots=[plot, plot])


def test_a_rate_that_is_not_positive_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        RecordingPlot(rate=0)


@pytest.mark.parametrize("plots", [None, False, []], ids=["none", "false", "empty-list"])
def test_no_plots_start_no_plot_thread(inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], plots: object) -> None:
    steps = inline_ctx.run_udf_iter(dataset=inline_ctx.load("memory", data=data), udf=SumUDF(), plots=plots)
    next(iter(steps))
    assert not plot_threads()
    steps.close()


def test_a_plot_left_to_choose_warns_when_the_run_has_no_2d_result(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    line_scan = inline_ctx.load("memory", data=data.reshape(-1, *SIG))
    with pytest.warns(PlotWarning, match="PNGPlots: the run has no 2-D result to show"):
        inline_ctx.run_udf(dataset=line_scan, udf=SumSigUDF(), plots=PNGPlots(tmp_path))
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- notebook backends (IPython's display faked)


class FakeDisplay:
    """Stands in for ``IPython.display.display``: records what is shown and how it is updated."""

    def __init__(self) -> None:
        self.shown: list[object] = []
        self.updates: list[object] = []

    def __call__(self, obj: object, display_id: bool = False) -> FakeDisplay | None:
        self.shown.append(obj)
        return self if display_id else None

    def update(self, obj: object) -> None:
        self.updates.append(obj)


@pytest.fixture
def fake_display(monkeypatch: pytest.MonkeyPatch) -> FakeDisplay:
    from gpuudf.viz import mpl as viz_mpl

    shown = FakeDisplay()
    monkeypatch.setattr(viz_mpl, "_ipython_display", lambda: shown)
    return shown


def test_the_inline_backend_redraws_one_display_in_place(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], fake_display: FakeDisplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpuudf.viz import mpl as viz_mpl

    monkeypatch.setattr(viz_mpl, "display_mode", lambda: "inline")
    plot = MatplotlibPlots(["intensity"], rate=1000.0)
    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=48)
    inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.005), plots=[plot])
    assert len(fake_display.shown) == 1  # one output, made blank in the caller's thread, replaced by each frame
    assert len(fake_display.updates) >= 2
    assert all(frame.data.startswith(b"\x89PNG") for frame in fake_display.updates)  # type: ignore[attr-defined]
    figure = plot.figure
    figure.canvas.draw()
    last = matplotlib.image.imread(io.BytesIO(fake_display.updates[-1].data), format="png")  # type: ignore[attr-defined]
    assert last.shape[:2] == figure.canvas.get_width_height()[::-1]


def test_the_widget_backend_shows_the_canvas_and_draws_it(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], fake_display: FakeDisplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt

    from gpuudf.viz import mpl as viz_mpl

    monkeypatch.setattr(viz_mpl, "display_mode", lambda: "widget")
    plot = MatplotlibPlots(["intensity"])
    draws: list[str] = []
    try:
        inline_ctx.run_udf(
            dataset=inline_ctx.load("memory", data=data), udf=SumSigUDF(), plots=[_WatchedCanvas(plot, draws)]
        )
        assert fake_display.shown == [plot.figure.canvas]
        assert "draw_idle" in draws[draws.index("draw") + 1 :]  # the image is pushed, then a redraw asked for
    finally:
        plt.close(plot.figure)


class _WatchedCanvas(LivePlot):
    """Wraps a MatplotlibPlots and records its canvas' draw calls."""

    def __init__(self, plot: MatplotlibPlots, draws: list[str]) -> None:
        super().__init__(["intensity"])
        self.plot, self.draws = plot, draws

    def bind(self, udfs: Any) -> None:
        super().bind(udfs)
        self.plot.bind(udfs)

    def open(self, channels: Sequence[ChannelData]) -> None:
        self.plot.open(channels)
        canvas = self.plot.figure.canvas
        for name in ("draw", "draw_idle"):
            original = getattr(canvas, name)

            def watched(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                self.draws.append(_name)
                return _original(*args, **kwargs)

            setattr(canvas, name, watched)

    def update(self, channels: Sequence[ChannelData]) -> None:
        self.plot.update(channels)

    def finish(self, channels: Sequence[ChannelData]) -> None:
        self.plot.finish(channels)


def test_a_gui_backend_draws_only_in_the_thread_that_consumes_the_run(
    inline_ctx: gpuudf.Context, data: np.ndarray[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.figure
    import matplotlib.pyplot as plt

    from gpuudf.viz import drawing
    from gpuudf.viz import mpl as viz_mpl

    monkeypatch.setattr(viz_mpl, "display_mode", lambda: "gui")
    monkeypatch.setattr(matplotlib.figure.Figure, "show", lambda self, warn=True: None)  # Agg has no window
    drawn_in: set[str] = set()
    show = drawing.ChannelArtist.show

    def watched_show(self: drawing.ChannelArtist, channel: ChannelData) -> None:
        drawn_in.add(threading.current_thread().name)
        show(self, channel)

    monkeypatch.setattr(drawing.ChannelArtist, "show", watched_show)
    plot = MatplotlibPlots(["intensity"], rate=1000.0)
    ds = inline_ctx.load("memory", data=data.reshape(48, 1, *SIG), num_partitions=12)
    try:
        res = inline_ctx.run_udf(dataset=ds, udf=SlowSumSigUDF(delay_s=0.005), plots=[plot])
        assert drawn_in == {threading.current_thread().name}
        (line,) = plot.figure.axes[0].get_lines()
        assert_array_equal(np.asarray(line.get_ydata()), res["intensity"].data.squeeze())
    finally:
        plt.close(plot.figure)
