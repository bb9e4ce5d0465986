"""Result buffers (API.md §2.1): kinds, shapes, dtypes, where, use, assignment, wrappers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, BufferWrapper, UDFDefinitionError
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.results import fill_value_for
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE, AnyBackendUDF, ProcessCalledError, SumFrameUDF

NAV_AXES = (0, 1)
SIG_AXES = (2, 3)
FRAMES = math.prod(NAV_SHAPE)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


# ---------------------------------------------------------------- declarations


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"kind": "pixel"}, r"unknown buffer kind 'pixel': use one of 'nav', 'sig', 'single'", id="kind"),
        pytest.param({"kind": "nav", "extra_shape": None}, r"extra_shape must be a tuple of ints", id="extra-none"),
        pytest.param({"kind": "nav", "extra_shape": ("a",)}, r"extra_shape must be a tuple of ints", id="extra-str"),
        pytest.param({"kind": "nav", "extra_shape": (2.5,)}, r"extra_shape must be a tuple of ints", id="extra-float"),
        pytest.param({"kind": "nav", "extra_shape": (2, -1)}, r"extra_shape \(2, -1\) has a negative length", id="neg"),
        pytest.param(
            {"kind": "sig", "dtype": "no-such-type"}, r"buffer dtype 'no-such-type' is not a NumPy dtype", id="dt"
        ),
        pytest.param({"kind": "sig", "where": "gpu"}, r"where='gpu' is not one of", id="where"),
        pytest.param({"kind": "sig", "use": "hidden"}, r"use='hidden' is not one of", id="use"),
    ],
)
def test_invalid_buffer_declarations_are_rejected_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UDFDefinitionError, match=message):
        UDF().buffer(**kwargs)


@pytest.mark.parametrize(
    ("extra_shape", "expected"),
    [((), ()), (3, (3,)), (np.int64(3), (3,)), ((2, 4), (2, 4)), ([2, 4], (2, 4))],
)
def test_extra_shape_accepts_an_int_or_a_sequence_of_ints(extra_shape: Any, expected: tuple[int, ...]) -> None:
    assert UDF().buffer(kind="nav", extra_shape=extra_shape).extra_shape == expected


def test_buffer_defaults_are_float32_where_none_use_none() -> None:
    decl = UDF().buffer(kind="sig")
    assert (decl.dtype, decl.where, decl.use, decl.extra_shape) == (np.dtype("float32"), None, None, ())


class UnknownKindUDF(AnyBackendUDF):
    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"x": self.buffer(kind="frame")}

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


def test_an_unknown_buffer_kind_fails_the_run_before_any_frame(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match="unknown buffer kind 'frame'"):
        ctx.run_udf(dataset=ds, udf=UnknownKindUDF())


class NamedBufferUDF(AnyBackendUDF):
    def __init__(self, declared: Any) -> None:
        super().__init__(declared=declared)

    def get_result_buffers(self) -> Any:
        declared = self.params.declared
        if isinstance(declared, dict):
            return {name: self.buffer(kind="nav") if value is None else value for name, value in declared.items()}
        return declared

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        pytest.param(
            {"1st": None}, r"NamedBufferUDF declares a buffer named '1st': buffer names must be Python identifiers"
        ),
        pytest.param({"two words": None}, r"named 'two words': buffer names must be Python identifiers"),
        pytest.param({"max-value": None}, r"named 'max-value': buffer names must be Python identifiers"),
        pytest.param({"class": None}, r"named 'class': buffer names must be Python identifiers"),
        pytest.param({3: None}, r"named 3: buffer names must be Python identifiers"),
        pytest.param({"_hidden": None}, r"named '_hidden': names starting with '_' are reserved"),
        pytest.param({"x": np.zeros(3)}, r"buffer 'x' is a ndarray, not a declaration made with self\.buffer"),
        pytest.param([("x", None)], r"NamedBufferUDF\.get_result_buffers\(\) must return a dict, got list"),
    ],
)
def test_bad_buffer_names_and_declarations_fail_the_run_before_any_frame(
    ctx: gpuudf.Context, random_counts: CountsFn, declared: Any, message: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=message):
        ctx.run_udf(dataset=ds, udf=NamedBufferUDF(declared=declared))


# ---------------------------------------------------------------- kinds and extra_shape


class ShapedUDF(AnyBackendUDF):
    """One buffer ``out`` of the given kind and extra_shape, filled channel by channel."""

    def __init__(self, kind: str, extra_shape: tuple[int, ...]) -> None:
        super().__init__(kind=kind, extra_shape=extra_shape)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"out": self.buffer(kind=self.params.kind, extra_shape=self.params.extra_shape, dtype="float64")}

    def get_task_data(self) -> Mapping[str, Any]:
        extra = tuple(self.params.extra_shape)
        return {"weights": self.xp.arange(1, math.prod(extra) + 1, dtype="float64").reshape(extra)}

    def process_tile(self, tile: Any) -> None:
        xp = self.xp
        weights = self.task_data.weights
        ones = (1,) * weights.ndim
        if self.params.kind == "nav":
            sums = xp.sum(tile, axis=(1, 2))
            self.results.out[...] = sums.reshape(len(sums), *ones) * weights
        elif self.params.kind == "sig":
            self.results.out += xp.sum(tile, axis=0).reshape(*tile.shape[1:], *ones) * weights
        else:
            self.results.out += tile.shape[0] * weights

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        if self.params.kind == "nav":
            dest.out[...] = src.out
        else:
            dest.out += src.out


def _expected_shaped(data: np.ndarray[Any, Any], kind: str, extra: tuple[int, ...]) -> np.ndarray[Any, Any]:
    weights = np.arange(1, math.prod(extra) + 1, dtype=np.float64).reshape(extra)
    ones = (1,) * len(extra)
    if kind == "nav":
        return data.sum(axis=SIG_AXES, dtype=np.float64).reshape(*NAV_SHAPE, *ones) * weights
    if kind == "sig":
        return data.sum(axis=NAV_AXES, dtype=np.float64).reshape(*SIG_SHAPE, *ones) * weights
    return (FRAMES * weights).reshape(extra or (1,))


@pytest.mark.parametrize("extra_shape", [(), (3,), (2, 4)], ids=["no-extra", "extra-3", "extra-2x4"])
@pytest.mark.parametrize(
    ("kind", "full_shape"),
    [("nav", NAV_SHAPE), ("sig", SIG_SHAPE), ("single", ())],
)
def test_result_shape_is_kind_shape_plus_extra_shape(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    kind: str,
    full_shape: tuple[int, ...],
    extra_shape: tuple[int, ...],
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=ShapedUDF(kind=kind, extra_shape=extra_shape))
    out = res["out"]
    expected_shape = (*full_shape, *extra_shape) if (full_shape or extra_shape) else (1,)
    assert out.data.shape == out.shape == expected_shape
    assert out.kind == kind
    assert out.extra_shape == extra_shape
    assert_array_equal(out.data, _expected_shaped(data, kind, extra_shape))


# ---------------------------------------------------------------- dtypes

NUMERIC_DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


class DTypeFamilyUDF(AnyBackendUDF):
    """Buffers of every kind, with and without extra_shape, all of one dtype.

    ``nav``: corner pixels; ``sig``: elementwise maxima; ``single``: the peak.
    Data are integers 0..3, so every value fits every dtype.
    """

    def __init__(self, dtype: str) -> None:
        super().__init__(dtype=dtype)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        dtype = self.params.dtype
        return {
            "nav": self.buffer(kind="nav", dtype=dtype),
            "nav_extra": self.buffer(kind="nav", extra_shape=(2,), dtype=dtype),
            "sig": self.buffer(kind="sig", dtype=dtype),
            "sig_extra": self.buffer(kind="sig", extra_shape=(2,), dtype=dtype),
            "single": self.buffer(kind="single", dtype=dtype),
            "single_extra": self.buffer(kind="single", extra_shape=(3,), dtype=dtype),
        }

    def process_frame(self, frame: Any) -> None:
        xp = self.xp
        r = self.results
        r.nav[:] = frame[0, 0]
        r.nav_extra[0] = frame[0, 0]
        r.nav_extra[1] = frame[-1, -1]
        r.sig[:] = xp.maximum(r.sig, frame)
        r.sig_extra[..., 0] = xp.maximum(r.sig_extra[..., 0], frame)
        r.sig_extra[..., 1] = xp.maximum(r.sig_extra[..., 1], 2 * frame)
        peak = xp.max(frame)
        r.single[:] = xp.maximum(r.single, peak)
        r.single_extra[:] = xp.maximum(r.single_extra, peak * xp.arange(1, 4))

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.nav[:] = src.nav
        dest.nav_extra[:] = src.nav_extra
        for name in ("sig", "sig_extra", "single", "single_extra"):
            setattr(dest, name, np.maximum(getattr(dest, name), getattr(src, name)))


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
def test_buffers_of_every_numeric_dtype_hold_exact_results(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, dtype: str
) -> None:
    data = random_counts(DATA_SHAPE, high=4)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=DTypeFamilyUDF(dtype=dtype))
    sig_max = data.max(axis=NAV_AXES)
    peak = data.max()
    expected = {
        "nav": data[..., 0, 0],
        "nav_extra": np.stack([data[..., 0, 0], data[..., -1, -1]], axis=-1),
        "sig": sig_max,
        "sig_extra": np.stack([sig_max, 2 * sig_max], axis=-1),
        "single": np.array([peak]),
        "single_extra": peak * np.arange(1, 4),
    }
    for name, values in expected.items():
        assert res[name].dtype == np.dtype(dtype), name
        assert res[name].data.dtype == np.dtype(dtype), name
        assert_array_equal(res[name].data, values.astype(dtype), err_msg=name)


class ObjectValuesUDF(AnyBackendUDF):
    """Object buffers holding strings, lists and Python ints made per frame."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "label": self.buffer(kind="nav", dtype=object),
            "pair": self.buffer(kind="nav", extra_shape=(2,), dtype=object),
            "bright": self.buffer(kind="sig", dtype=object),
            "log": self.buffer(kind="single", dtype=object),
        }

    def preprocess(self) -> None:
        self.results.bright[...] = 0
        self.results.log[0] = []

    def process_frame(self, frame: Any) -> None:
        coords = [int(c) for c in self.meta.coordinates[0]]
        total = float(self.xp.sum(frame))
        self.results.label[0] = f"{coords}:{total:g}"
        self.results.pair[0] = coords
        self.results.pair[1] = {"sum": total}
        self.results.bright[...] = self.results.bright + self.forbuf(frame > 4, self.results.bright)
        self.results.log[0].append(tuple(coords))

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.label[:] = src.label
        dest.pair[:] = src.pair
        dest.bright[...] = dest.bright + src.bright
        dest.log[0] = dest.log[0] + src.log[0]


def test_object_buffers_hold_python_values_made_per_frame(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=ObjectValuesUDF())
    for name in ("label", "pair", "bright", "log"):
        assert res[name].dtype == np.dtype(object)
    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    for i, j in np.ndindex(NAV_SHAPE):
        assert res["label"].data[i, j] == f"{[i, j]}:{sums[i, j]:g}"
        assert res["pair"].data[i, j, 0] == [i, j]
        assert res["pair"].data[i, j, 1] == {"sum": sums[i, j]}
    assert res["bright"].data.tolist() == (data > 4).sum(axis=NAV_AXES).tolist()
    assert sorted(res["log"].data[0]) == list(np.ndindex(NAV_SHAPE))


class TextUDF(AnyBackendUDF):
    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "parity": self.buffer(kind="nav", dtype="U4"),
            "when": self.buffer(kind="nav", dtype="datetime64[s]"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.parity[:] = "even" if int(self.xp.sum(frame)) % 2 == 0 else "odd"
        self.results.when[:] = np.datetime64(int(self.xp.sum(frame)), "s")


def test_string_and_datetime_buffers_work(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=TextUDF())
    sums = data.sum(axis=SIG_AXES).astype(np.int64)
    assert_array_equal(res["parity"].data, np.where(sums % 2 == 0, "even", "odd"))
    assert_array_equal(res["when"].data, sums.astype("datetime64[s]"))


# ---------------------------------------------------------------- where


class WhereUDF(AnyBackendUDF):
    """Buffers of each kind with one ``where``; records whether views had the promised type."""

    def __init__(self, where: str | None) -> None:
        super().__init__(where=where)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        where = self.params.where
        return {
            "nav": self.buffer(kind="nav", dtype="float64", where=where),
            "sig": self.buffer(kind="sig", dtype="float64", where=where),
            "single": self.buffer(kind="single", dtype="int64", where=where),
            "obj": self.buffer(kind="nav", dtype=object, where=where),
            "text": self.buffer(kind="nav", dtype="U4", where=where),
            "when": self.buffer(kind="nav", dtype="datetime64[s]", where=where),
            "types_ok": self.buffer(kind="nav", dtype=bool, where="host"),
        }

    def process_frame(self, frame: Any) -> None:
        r = self.results
        promised = np.ndarray if self.params.where == "host" else type(self.xp.zeros(0))
        r.types_ok[:] = (
            type(r.nav) is promised
            and type(r.sig) is promised
            and type(r.single) is promised
            # dtypes device arrays cannot hold always live on the host
            and type(r.obj) is np.ndarray
            and type(r.text) is np.ndarray
            and type(r.when) is np.ndarray
        )
        r.nav[:] = self.forbuf(self.xp.sum(frame), r.nav)
        r.sig += self.forbuf(frame, r.sig)
        r.single += 1
        r.obj[0] = "seen"
        r.text[0] = "seen"
        r.when[0] = np.datetime64(7, "s")

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.nav[:] = src.nav
        dest.obj[:] = src.obj
        dest.text[:] = src.text
        dest.when[:] = src.when
        dest.types_ok[:] = src.types_ok
        dest.sig += src.sig
        dest.single += src.single


@pytest.mark.parametrize("where", [None, "host", "device"])
def test_where_decides_the_view_type_and_results_are_always_numpy(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, where: str | None
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=WhereUDF(where=where))
    assert res["types_ok"].data.all()
    for wrapper in res.values():
        assert type(wrapper.data) is np.ndarray
    assert_array_equal(res["nav"].data, data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["sig"].data, data.sum(axis=NAV_AXES, dtype=np.float64))
    assert_array_equal(res["single"].data, [FRAMES])
    assert set(res["obj"].data.reshape(-1)) == {"seen"}
    assert_array_equal(res["text"].data, np.full(NAV_SHAPE, "seen"))
    assert_array_equal(res["when"].data, np.full(NAV_SHAPE, np.datetime64(7, "s")))


@pytest.mark.parametrize("dtype", ["object", "U3", "S3", "datetime64[s]", "timedelta64[ms]", "f4,i2"])
@pytest.mark.parametrize("where", [None, "device"])
def test_dtypes_device_arrays_cannot_hold_are_kept_on_the_host(dtype: str, where: str | None) -> None:
    assert UDF().buffer(kind="sig", dtype=dtype, where=where).on_host


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint64", "float16", "complex128"])
def test_numeric_buffers_live_where_the_udf_computes_unless_where_is_host(dtype: str) -> None:
    assert not UDF().buffer(kind="sig", dtype=dtype).on_host
    assert not UDF().buffer(kind="sig", dtype=dtype, where="device").on_host
    assert UDF().buffer(kind="sig", dtype=dtype, where="host").on_host


# ---------------------------------------------------------------- use


class PrivateUDF(AnyBackendUDF):
    """Private nav and sig buffers used in process, merge and get_results."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "scratch": self.buffer(kind="nav", dtype="float64", use="private"),
            "acc": self.buffer(kind="sig", dtype="float64", use="private"),
            "peak": self.buffer(kind="single", dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.scratch[:] = self.xp.sum(frame)
        self.results.per_frame[:] = 2 * self.results.scratch
        self.results.acc += frame

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.scratch[:] = src.scratch
        dest.per_frame[:] = src.per_frame
        dest.acc += src.acc
        dest.peak[:] = dest.acc.max()

    def get_results(self) -> Mapping[str, Any]:
        return {"per_frame": self.results.per_frame + self.results.scratch, "peak": [self.results.acc.max()]}


def test_private_buffers_are_visible_to_the_udf_but_not_returned(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=PrivateUDF())
    assert set(res) == {"per_frame", "peak"}
    assert_array_equal(res["per_frame"].data, 3 * data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["peak"].data, [data.sum(axis=NAV_AXES).max()])


class ResultOnlyUDF(AnyBackendUDF):
    """``mean`` is result_only; ``touch`` says what process_frame tries with it."""

    def __init__(self, touch: str = "none") -> None:
        super().__init__(touch=touch)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "total": self.buffer(kind="sig", dtype="float64"),
            "mean": self.buffer(kind="sig", dtype="float64", use="result_only"),
        }

    def process_frame(self, frame: Any) -> None:
        if self.params.touch == "read" and self.results.mean is not None:
            msg = f"a result_only buffer read as {self.results.mean!r} on a worker, not None"
            raise AssertionError(msg)
        if self.params.touch == "write":
            self.results.mean = frame
        self.results.total += frame

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        assert "mean" not in dir(dest)
        assert "mean" not in dir(src)
        dest.total += src.total

    def get_results(self) -> Mapping[str, Any]:
        return {"mean": self.results.total / math.prod(self.meta.dataset_shape.nav)}


def test_result_only_buffers_come_from_get_results(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=ResultOnlyUDF())
    assert set(res) == {"total", "mean"}
    np.testing.assert_allclose(res["mean"].data, data.mean(axis=NAV_AXES, dtype=np.float64), rtol=1e-12)
    assert res["mean"].kind == "sig"


def test_result_only_buffers_read_as_none_on_workers_as_in_libertem(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ResultOnlyUDF(touch="read"))
    np.testing.assert_allclose(res["mean"].data, data.mean(axis=NAV_AXES, dtype=np.float64), rtol=1e-12)


def test_writing_a_result_only_buffer_on_a_worker_says_it_does_not_exist_there(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(AttributeError, match="ResultOnlyUDF buffer 'mean' is result_only"):
        ctx.run_udf(dataset=ds, udf=ResultOnlyUDF(touch="write"))


# ---------------------------------------------------------------- assignment into views


class AssignUDF(AnyBackendUDF):
    """Writes through ``self.results.x = value`` and ``self.results.x += y``."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "nav_set": self.buffer(kind="nav", dtype="float64"),
            "nav_extra_set": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "nav_iadd": self.buffer(kind="nav", dtype="float64"),
            "sig_rebind": self.buffer(kind="sig", dtype="float64"),
            "sig_iadd": self.buffer(kind="sig", dtype="float64"),
            "single_iadd": self.buffer(kind="single", dtype="int64"),
            "single_set": self.buffer(kind="single", extra_shape=(2,), dtype="float64"),
            "same_view": self.buffer(kind="nav", dtype=bool),
        }

    def process_frame(self, frame: Any) -> None:
        xp = self.xp
        r = self.results
        before = r.sig_rebind
        r.nav_set = xp.sum(frame)
        r.nav_extra_set = xp.stack([frame[0, 0], frame[-1, -1]])
        r.nav_iadd += 7
        r.nav_iadd += xp.sum(frame)
        r.sig_rebind = r.sig_rebind + frame
        r.sig_iadd += frame
        r.single_iadd += 1
        r.single_set = r.single_set + xp.asarray([1.0, 2.0])
        r.same_view = r.sig_rebind is before

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        for name in ("nav_set", "nav_extra_set", "nav_iadd", "same_view"):
            setattr(dest, name, getattr(src, name))
        for name in ("sig_rebind", "sig_iadd", "single_iadd", "single_set"):
            setattr(dest, name, getattr(dest, name) + getattr(src, name))


def test_assigning_to_a_result_attribute_writes_into_the_current_view(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=AssignUDF())
    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["nav_set"].data, sums)
    assert_array_equal(res["nav_extra_set"].data, np.stack([data[..., 0, 0], data[..., -1, -1]], axis=-1))
    assert_array_equal(res["nav_iadd"].data, sums + 7)
    assert_array_equal(res["sig_rebind"].data, data.sum(axis=NAV_AXES, dtype=np.float64))
    assert_array_equal(res["sig_iadd"].data, data.sum(axis=NAV_AXES, dtype=np.float64))
    assert_array_equal(res["single_iadd"].data, [FRAMES])
    assert_array_equal(res["single_set"].data, [FRAMES, 2 * FRAMES])
    assert res["same_view"].data.all()


class UndeclaredUDF(AnyBackendUDF):
    def __init__(self, touch: str) -> None:
        super().__init__(touch=touch)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"declared": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        if self.params.touch == "write":
            self.results.undeclared = frame
        else:
            _ = self.results.undeclared


@pytest.mark.parametrize("touch", ["read", "write"])
def test_touching_an_undeclared_buffer_is_an_attribute_error_naming_it(
    ctx: gpuudf.Context, random_counts: CountsFn, touch: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(
        AttributeError, match=r"UndeclaredUDF declares no buffer 'undeclared'; declared: \['declared'\]"
    ):
        ctx.run_udf(dataset=ds, udf=UndeclaredUDF(touch=touch))


# ---------------------------------------------------------------- what the user receives


def test_buffer_wrapper_exposes_numpy_data_and_its_description(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=SumFrameUDF())
    per_frame, total, count = res["per_frame"], res["total"], res["count"]
    assert all(isinstance(w, BufferWrapper) for w in res.values())
    assert (per_frame.kind, total.kind, count.kind) == ("nav", "sig", "single")
    assert per_frame.dtype == total.dtype == np.dtype("float64")
    assert count.dtype == np.dtype("int64")

    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert type(per_frame.data) is np.ndarray
    assert_array_equal(per_frame.data, sums)
    assert_array_equal(per_frame.raw_data, sums.reshape(-1))
    assert_array_equal(total.raw_data, total.data)

    assert_array_equal(np.asarray(per_frame), sums)
    assert np.asarray(per_frame, dtype=np.float32).dtype == np.float32
    copied = np.array(total, copy=True)
    assert_array_equal(copied, total.data)
    assert not np.shares_memory(copied, total.data)
    assert np.shares_memory(np.asarray(total, copy=False), total.data)
    with pytest.raises(ValueError, match="needs a copy, but copy=False"):
        np.asarray(total, dtype=np.float32, copy=False)

    assert_array_equal(per_frame.valid_mask, np.ones(NAV_SHAPE, dtype=bool))
    assert_array_equal(total.valid_mask, np.ones(SIG_SHAPE, dtype=bool))
    assert_array_equal(count.valid_mask, [True])
    assert repr(per_frame) == "<BufferWrapper kind=nav dtype=float64 shape=(5, 7)>"


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float16", "nan"),
        ("float32", "nan"),
        ("float64", "nan"),
        ("complex64", "nan"),
        ("complex128", "nan"),
        ("int8", 0),
        ("int64", 0),
        ("uint16", 0),
        ("uint64", 0),
        ("bool", 0),
        ("object", None),
        ("U3", ""),
        ("S3", ""),
        ("datetime64[s]", "nat"),
        ("timedelta64[ms]", "nat"),
    ],
)
def test_fill_value_outside_the_roi_is_nan_where_the_dtype_has_one(dtype: str, expected: Any) -> None:
    fill = np.full(2, fill_value_for(np.dtype(dtype)), dtype=dtype)
    if expected == "nan":
        assert np.isnan(fill).all()
    elif expected == "nat":
        assert np.isnat(fill).all()
    elif expected is None:
        assert fill.tolist() == [None, None]
    else:
        assert (fill == np.zeros(2, dtype=dtype)).all()
