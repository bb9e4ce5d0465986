"""Auxiliary data (``UDF.aux_data``): per-frame inputs viewed like result buffers.

The shapes of the views follow LiberTEM 0.16's ``AuxBufferWrapper`` (checked
there on the same data): in ``process_frame`` a ``nav`` entry has shape
``extra_shape`` (``(1,)`` without one, 0-d for ``(1,)``), in ``process_tile``
and ``process_partition`` the entries of the tile's or partition's frames.
``sig`` and ``single`` aux data, and what the host sees, are gpuudf's own
(LiberTEM cannot run them).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, AuxData, UDFDefinitionError, UDFMethod
from gpuudf.backends.simulated import TRANSFERS
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.executors import InlineExecutor
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE, AnyBackendUDF, ProcessCalledError

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

SIG_AXES = (2, 3)
METHODS = ["frame", "tile", "partition"]
#: Parameters of :class:`AuxEchoUDF` that are aux data.
AUX_NAMES = ("plain", "one", "pair", "sig", "single")
#: The views' ``(shape, dtype, is an array of self.xp)``, per aux parameter.
Described = dict[str, tuple[tuple[int, ...], str, bool | None]]

#: Selects frames in every partition layout of ``load_partitioned``, but not all.
ROI = np.random.default_rng(11).random(NAV_SHAPE) < 0.5
ROI[0, 0] = ROI[4, 6] = True
ROI[2, :] = False


def describe(params: Any, xp: Any) -> Described:
    """What each aux parameter looks like here; ``one`` may be a NumPy scalar (as in LiberTEM), not an array."""
    described: Described = {}
    for name in AUX_NAMES:
        value = params[name]
        is_array = None if name == "one" else isinstance(value, xp.ndarray)
        described[name] = (tuple(value.shape), str(value.dtype), is_array)
    return described


class AuxEchoUDF(AnyBackendUDF):
    """Copies its aux data into buffers in every hook and records what the views look like.

    ``plain`` (nav), ``one`` (nav, extra_shape ``(1,)``) and ``pair`` (nav,
    extra_shape ``(2,)``) are copied into nav buffers of the same names;
    ``pre_pair``/``post_pair`` get ``pair`` in ``preprocess``/``postprocess``.
    ``weighted`` is each frame's sum times ``plain``, ``sig_weighted`` the sum
    of the frames times ``sig`` (sig), ``single_total`` the frame count times
    ``single`` (single, extra_shape ``(3,)``).  ``views`` records, per frame,
    :func:`describe` in the process call and the call's frame count;
    ``host_views`` what ``merge`` and ``get_results`` see.
    """

    def __init__(self, plain: Any, one: Any, pair: Any, sig: Any, single: Any, method: str = "frame") -> None:
        super().__init__(plain=plain, one=one, pair=pair, sig=sig, single=single, method=method)

    def get_method(self) -> UDFMethod:
        return UDFMethod(self.params.method)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "plain": self.buffer(kind="nav", dtype="float64"),
            "one": self.buffer(kind="nav", dtype="float64"),
            "pair": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "pre_pair": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "post_pair": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "weighted": self.buffer(kind="nav", dtype="float64"),
            "views": self.buffer(kind="nav", dtype=object),
            "sig_weighted": self.buffer(kind="sig", dtype="float64"),
            "single_total": self.buffer(kind="single", extra_shape=(3,), dtype="float64"),
            "host_views": self.buffer(kind="single", dtype=object, use="result_only"),
        }

    def preprocess(self) -> None:
        self.results.pre_pair[:] = self.params.pair

    def postprocess(self) -> None:
        self.results.post_pair[:] = self.params.pair

    def _echo(self, data: Any) -> None:
        params, results, xp = self.params, self.results, self.xp
        results.plain[:] = params.plain
        results.one[:] = params.one
        results.pair[:] = params.pair
        results.weighted[:] = xp.sum(data, axis=tuple(range(data.ndim - 2, data.ndim))) * params.plain
        stack = data.reshape((-1, *data.shape[-2:]))
        results.sig_weighted += xp.sum(stack, axis=0) * params.sig
        results.single_total += stack.shape[0] * params.single
        described = (describe(params, xp), stack.shape[0])
        views = results.views
        for i in range(len(views)):
            views[i] = described

    def process_frame(self, frame: Any) -> None:
        self._echo(frame)

    def process_tile(self, tile: Any) -> None:
        self._echo(tile)

    def process_partition(self, partition: Any) -> None:
        self._echo(partition)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        for name in ("plain", "one", "pair", "pre_pair", "post_pair", "weighted", "views"):
            setattr(dest, name, getattr(src, name))
        dest.sig_weighted += src.sig_weighted
        dest.single_total += src.single_total
        self._merge_views = describe(self.params, self.xp)

    def get_results(self) -> Mapping[str, Any]:
        host_views = np.empty(1, dtype=object)
        host_views[0] = {"merge": self._merge_views, "get_results": describe(self.params, self.xp)}
        return {"host_views": host_views}


@dataclass
class AuxInputs:
    """The arrays behind an :class:`AuxEchoUDF`'s aux data, small integers as floats."""

    plain: np.ndarray[Any, Any]  # nav-shaped
    one: np.ndarray[Any, Any]  # (*nav, 1)
    pair: np.ndarray[Any, Any]  # (*nav, 2)
    sig: np.ndarray[Any, Any]
    single: np.ndarray[Any, Any]  # (3,)

    @classmethod
    def make(cls, rng: np.random.Generator) -> AuxInputs:
        def counts(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
            return rng.integers(1, 8, size=shape).astype("float32")

        return cls(counts(NAV_SHAPE), counts((*NAV_SHAPE, 1)), counts((*NAV_SHAPE, 2)), counts(SIG_SHAPE), counts((3,)))

    def udf(self, method: str = "frame", dtype: str = "float32") -> AuxEchoUDF:
        return AuxEchoUDF(
            plain=UDF.aux_data(self.plain, kind="nav", dtype=dtype),
            one=UDF.aux_data(self.one, kind="nav", extra_shape=(1,), dtype=dtype),
            pair=UDF.aux_data(self.pair, kind="nav", extra_shape=(2,), dtype=dtype),
            sig=UDF.aux_data(self.sig, kind="sig", dtype=dtype),
            single=UDF.aux_data(self.single, kind="single", extra_shape=(3,), dtype=dtype),
            method=method,
        )


@pytest.fixture
def aux_inputs(rng: np.random.Generator) -> AuxInputs:
    """Aux data arrays for :class:`AuxEchoUDF`."""
    return AuxInputs.make(rng)


def view_shapes(method: str, frames: int) -> dict[str, tuple[int, ...]]:
    """The shapes LiberTEM gives the aux views in a process call over ``frames`` frames."""
    if method == "frame":
        shapes = {"plain": (1,), "one": (), "pair": (2,)}
    else:
        shapes = {"plain": (frames,), "one": (frames,), "pair": (frames, 2)}
    return {**shapes, "sig": SIG_SHAPE, "single": (3,)}


def assert_echoed(res: Mapping[str, Any], data: np.ndarray[Any, Any], aux: AuxInputs, roi: Any) -> None:
    """Every nav buffer holds the selected frames' aux entries; sig and single the whole aux data."""
    mask = np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi
    assert_array_equal(res["plain"].raw_data, aux.plain[mask])
    assert_array_equal(res["one"].raw_data, aux.one[mask][:, 0])
    for name in ("pair", "pre_pair", "post_pair"):
        assert_array_equal(res[name].raw_data, aux.pair[mask])
    frame_sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["weighted"].raw_data, frame_sums[mask] * aux.plain[mask])
    assert_array_equal(res["sig_weighted"].data, data[mask].sum(axis=0, dtype=np.float64) * aux.sig)
    assert_array_equal(res["single_total"].data, mask.sum() * aux.single)


@pytest.mark.parametrize("method", METHODS)
def test_process_hooks_and_preprocess_see_the_entries_of_their_own_frames(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, aux_inputs: AuxInputs, method: str
) -> None:
    data = random_counts(DATA_SHAPE)

    res = ctx.run_udf(dataset=load_partitioned(data), udf=aux_inputs.udf(method))

    assert_echoed(res, data, aux_inputs, roi=None)


@pytest.mark.parametrize("method", METHODS)
def test_with_a_roi_the_hooks_see_only_the_selected_frames_entries(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, aux_inputs: AuxInputs, method: str
) -> None:
    data = random_counts(DATA_SHAPE)

    res = ctx.run_udf(dataset=load_partitioned(data), udf=aux_inputs.udf(method), roi=ROI)

    assert_echoed(res, data, aux_inputs, roi=ROI)
    assert_array_equal(res["plain"].data[ROI], aux_inputs.plain[ROI])  # a per-frame copy is aux[roi]


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
@pytest.mark.parametrize("method", METHODS)
def test_process_views_have_libertems_shapes_and_are_arrays_of_self_xp(
    ctx: gpuudf.Context, random_counts: CountsFn, aux_inputs: AuxInputs, method: str, roi: Any
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3, tileshape=(4, *SIG_SHAPE))

    res = ctx.run_udf(dataset=dataset, udf=aux_inputs.udf(method), roi=roi)

    for described, frames in res["views"].raw_data:
        assert {name: shape for name, (shape, _, _) in described.items()} == view_shapes(method, frames)
        # on a (simulated) GPU the views are device arrays: the UDF computed with them through self.xp
        assert all(is_array for name, (_, _, is_array) in described.items() if name != "one")


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_merge_and_get_results_see_all_selected_frames_entries_flat_on_the_host(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, aux_inputs: AuxInputs, roi: Any
) -> None:
    selected = NAV_SHAPE[0] * NAV_SHAPE[1] if roi is None else int(roi.sum())

    res = ctx.run_udf(dataset=load_partitioned(random_counts(DATA_SHAPE)), udf=aux_inputs.udf(), roi=roi)

    expected = {
        "plain": ((selected,), "float32", True),
        "one": ((selected,), "float32", None),
        "pair": ((selected, 2), "float32", True),
        "sig": (SIG_SHAPE, "float32", True),
        "single": ((3,), "float32", True),
    }
    host_views = res["host_views"].data[0]
    assert host_views["merge"] == expected
    assert host_views["get_results"] == expected


@pytest.mark.parametrize("method", METHODS)
def test_sig_and_single_aux_data_are_whole_in_every_hook(
    ctx: gpuudf.Context, random_counts: CountsFn, aux_inputs: AuxInputs, method: str
) -> None:
    data = random_counts(DATA_SHAPE)
    dataset = ctx.load("memory", data=data, num_partitions=3, tileshape=(2, *SIG_SHAPE))

    res = ctx.run_udf(dataset=dataset, udf=aux_inputs.udf(method), roi=ROI)

    assert_array_equal(res["sig_weighted"].data, data[ROI].sum(axis=0, dtype=np.float64) * aux_inputs.sig)
    assert_array_equal(res["single_total"].data, ROI.sum() * aux_inputs.single)
    for described, _ in res["views"].raw_data:
        assert described["sig"][0] == SIG_SHAPE
        assert described["single"][0] == (3,)


class WeightedSumUDF(AnyBackendUDF):
    """Each frame's sum over ``mask`` (sig aux data) times ``weights`` (nav aux data); either may be ``None``."""

    def __init__(self, weights: Any = None, mask: Any = None) -> None:
        super().__init__(weights=weights, mask=mask)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"weighted": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        masked = frame if self.params.mask is None else frame * self.params.mask
        weight = 1 if self.params.weights is None else self.params.weights
        self.results.weighted[:] = self.xp.sum(masked) * weight


def test_on_the_simulated_device_aux_data_cross_the_bus_once_per_partition(
    random_counts: CountsFn, aux_inputs: AuxInputs
) -> None:
    data = random_counts(DATA_SHAPE)
    weights = UDF.aux_data(aux_inputs.plain, kind="nav")
    mask = UDF.aux_data(aux_inputs.sig, kind="sig")
    partitions = 3
    copies = {}
    with gpuudf.Context(executor=InlineExecutor("sim:0")) as ctx:
        dataset = ctx.load("memory", data=data, num_partitions=partitions, tileshape=(2, *SIG_SHAPE))
        for name, udf in {"plain": WeightedSumUDF(), "aux": WeightedSumUDF(weights=weights, mask=mask)}.items():
            TRANSFERS.reset()
            res = ctx.run_udf(dataset=dataset, udf=udf)
            copies[name] = TRANSFERS.h2d_copies

    # the same run, plus one copy per aux parameter and partition: none per frame or tile
    assert copies["aux"] - copies["plain"] == 2 * partitions
    frame_sums = (data * aux_inputs.sig).sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["weighted"].data, frame_sums * aux_inputs.plain)


class NeverProcessedUDF(AnyBackendUDF):
    """Takes one aux parameter, ``weights``, and must be stopped before processing anything."""

    def __init__(self, weights: Any) -> None:
        super().__init__(weights=weights)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"seen": self.buffer(kind="nav", dtype="float32")}

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


@pytest.mark.parametrize(
    "weights",
    [
        pytest.param(UDF.aux_data(np.ones(NAV_SHAPE[0] * NAV_SHAPE[1] - 1), kind="nav"), id="nav-one-frame-short"),
        pytest.param(UDF.aux_data(np.ones((*NAV_SHAPE, 2, 2)), kind="nav", extra_shape=(2,)), id="nav-entries-doubled"),
        pytest.param(UDF.aux_data(np.ones((*SIG_SHAPE[::-1], 2)), kind="sig"), id="sig-too-large"),
        pytest.param(UDF.aux_data(np.ones(4), kind="single", extra_shape=(3,)), id="single-too-large"),
    ],
)
def test_a_wrong_size_raises_udf_definition_error_at_the_start_naming_udf_and_parameter(
    ctx: gpuudf.Context, random_counts: CountsFn, weights: AuxData
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)

    with pytest.raises(UDFDefinitionError, match=r"NeverProcessedUDF parameter 'weights'"):
        ctx.run_udf(dataset=dataset, udf=NeverProcessedUDF(weights=weights))


@pytest.mark.parametrize("dtype", ["float64", "int16", "uint8"])
def test_aux_data_are_converted_to_the_requested_dtype_in_every_hook(
    ctx: gpuudf.Context, random_counts: CountsFn, aux_inputs: AuxInputs, dtype: str
) -> None:
    integers = AuxInputs(*(np.asarray(a, dtype="int64") for a in vars(aux_inputs).values()))
    udf = integers.udf("tile", dtype=dtype)
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)

    res = ctx.run_udf(dataset=dataset, udf=udf, roi=ROI)

    assert udf.params.plain.dtype == np.dtype(dtype)
    for described, _ in res["views"].raw_data:
        assert {name: view_dtype for name, (_, view_dtype, _) in described.items()} == dict.fromkeys(AUX_NAMES, dtype)
    assert all(view[1] == dtype for view in res["host_views"].data[0]["get_results"].values())
    assert_array_equal(res["plain"].raw_data, aux_inputs.plain[ROI])


def test_data_that_do_not_convert_to_the_dtype_are_a_udf_definition_error() -> None:
    with pytest.raises(UDFDefinitionError, match="cannot be converted to float32"):
        UDF.aux_data(["a", "b"], kind="nav")


def test_nav_data_that_do_not_hold_whole_entries_are_a_udf_definition_error() -> None:
    with pytest.raises(UDFDefinitionError, match=r"extra_shape \(2,\)"):
        UDF.aux_data(np.ones(7), kind="nav", extra_shape=(2,))


@pytest.mark.parametrize(
    ("data", "extra_shape", "stored"),
    [
        pytest.param(np.arange(35).reshape(NAV_SHAPE), (), (35,), id="no-extra-shape"),
        pytest.param(np.arange(35).reshape(*NAV_SHAPE, 1), (1,), (35,), id="extra-shape-1"),
        pytest.param(np.arange(70).reshape(*NAV_SHAPE, 2), (2,), (35, 2), id="extra-shape-2"),
        pytest.param(np.arange(35 * 6), (2, 3), (35, 2, 3), id="flat-data-extra-shape-2x3"),
    ],
)
def test_raw_data_and_asarray_give_the_stored_flat_array(
    data: np.ndarray[Any, Any], extra_shape: tuple[int, ...], stored: tuple[int, ...]
) -> None:
    aux = UDF.aux_data(data, kind="nav", extra_shape=extra_shape, dtype="float64")

    assert isinstance(aux, AuxData)
    assert (aux.kind, aux.extra_shape, aux.dtype) == ("nav", extra_shape, np.dtype("float64"))
    assert aux.raw_data.shape == stored
    assert aux.raw_data.dtype == np.float64
    assert_array_equal(aux.raw_data.reshape(-1), data.reshape(-1))
    assert np.asarray(aux) is aux.raw_data
    assert np.asarray(aux, dtype="float32").dtype == np.float32
    copied = np.array(aux, copy=True)
    assert_array_equal(copied, aux.raw_data)
    assert not np.shares_memory(copied, aux.raw_data)


def test_aux_data_survive_pickling_with_the_udfs_parameters(aux_inputs: AuxInputs) -> None:
    udf = aux_inputs.udf("tile", dtype="float64")

    twin = pickle.loads(pickle.dumps(udf))

    for name in AUX_NAMES:
        original, restored = udf.params[name], twin.params[name]
        assert isinstance(restored, AuxData)
        assert (restored.kind, restored.extra_shape, restored.dtype) == (
            original.kind,
            original.extra_shape,
            original.dtype,
        )
        assert_array_equal(restored.raw_data, original.raw_data)
