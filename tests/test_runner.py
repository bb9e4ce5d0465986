"""Running UDFs (API.md §4): ranks, several UDFs in one pass, planning errors, clean runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, BackendUnavailableError, UDFDefinitionError
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.executors import InlineExecutor
from tests.udfs_for_tests import (
    DATA_SHAPE,
    AnyBackendUDF,
    ExecutorCase,
    MaxUDF,
    ProcessCalledError,
    SumFrameUDF,
    SumPartitionUDF,
    SumTileUDF,
    nav_axes,
    sig_axes,
)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


# ---------------------------------------------------------------- ranks


@pytest.mark.parametrize("udf_class", [SumFrameUDF, SumTileUDF, SumPartitionUDF], ids=["frame", "tile", "partition"])
@pytest.mark.parametrize("sig", [(17,), (9, 11), (3, 4, 5)], ids=["sig1", "sig2", "sig3"])
@pytest.mark.parametrize("nav", [(13,), (5, 7), (3, 2, 5)], ids=["nav1", "nav2", "nav3"])
def test_any_nav_and_sig_rank_gives_the_numpy_result(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    nav: tuple[int, ...],
    sig: tuple[int, ...],
    udf_class: type[UDF],
) -> None:
    data = random_counts((*nav, *sig))
    sig_dims = len(sig)
    ds = load_partitioned(data, sig_dims=sig_dims)
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    res = ctx.run_udf(dataset=ds, udf=udf_class())
    assert_array_equal(res["per_frame"].data, data.sum(axis=sig_axes(data, sig_dims), dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=nav_axes(data, sig_dims), dtype=np.float64))
    assert_array_equal(res["count"].data, [math.prod(nav)])


# ---------------------------------------------------------------- several UDFs


def test_a_list_of_udfs_returns_a_list_of_results_in_order(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    udfs = [MaxUDF(), SumTileUDF(depth=3), SumFrameUDF(), MaxUDF()]
    results = ctx.run_udf(dataset=load_partitioned(data), udf=udfs)
    assert isinstance(results, list)
    assert [set(r) for r in results] == [
        {"maxbuf"},
        {"per_frame", "total", "count"},
        {"per_frame", "total", "count"},
        {"maxbuf"},
    ]
    maximum = data.max(axis=(0, 1))
    assert_array_equal(results[0]["maxbuf"].data, maximum)
    assert_array_equal(results[3]["maxbuf"].data, maximum)
    for res in results[1:3]:
        assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3), dtype=np.float64))
        assert_array_equal(res["total"].data, data.sum(axis=(0, 1), dtype=np.float64))


def test_a_tuple_of_one_udf_still_returns_a_list(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    results = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=(MaxUDF(),))
    assert isinstance(results, list)
    assert len(results) == 1
    assert_array_equal(results[0]["maxbuf"].data, data.max(axis=(0, 1)))


class NativeFirstPixelUDF(AnyBackendUDF):
    """Keeps native frames: runs in the same pass as float32 UDFs."""

    def get_preferred_input_dtype(self) -> Any:
        return self.USE_NATIVE_DTYPE

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"first": self.buffer(kind="nav", dtype=self.meta.input_dtype)}

    def process_tile(self, tile: Any) -> None:
        self.results.first[:] = tile[:, 0, 0]


def test_udfs_with_different_input_dtypes_share_one_pass(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=60000)
    native, summed = ctx.run_udf(dataset=load_partitioned(data), udf=[NativeFirstPixelUDF(), SumTileUDF()])
    assert native["first"].dtype == np.uint16
    assert_array_equal(native["first"].data, data[..., 0, 0])
    assert_array_equal(summed["per_frame"].data, data.sum(axis=(2, 3), dtype=np.float64))


# ---------------------------------------------------------------- planning errors


class SigWithoutMergeUDF(AnyBackendUDF):
    def __init__(self, kind: str) -> None:
        super().__init__(kind=kind)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"per_frame": self.buffer(kind="nav"), "partial": self.buffer(kind=self.params.kind)}

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


@pytest.mark.parametrize("kind", ["sig", "single"])
def test_a_sig_or_single_buffer_without_merge_fails_before_any_frame(
    ctx: gpuudf.Context, random_counts: CountsFn, kind: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=rf"SigWithoutMergeUDF has {kind} buffers \(partial\) but no merge"):
        ctx.run_udf(dataset=ds, udf=SigWithoutMergeUDF(kind=kind))


class ReturningUDF(AnyBackendUDF):
    """Declares a private and a result_only sig buffer; get_results returns ``returned``."""

    def __init__(self, returned: str) -> None:
        super().__init__(returned=returned)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "total": self.buffer(kind="sig", dtype="float64"),
            "hidden": self.buffer(kind="sig", use="private"),
            "derived": self.buffer(kind="sig", use="result_only"),
        }

    def process_tile(self, tile: Any) -> None:
        self.results.total += self.xp.sum(tile, axis=0)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.total += src.total

    def get_results(self) -> Any:
        sig = self.meta.dataset_shape.sig
        return {
            "undeclared": {"derived": np.zeros(sig), "nonsense": np.zeros(3)},
            "private": {"hidden": np.zeros(sig), "derived": np.zeros(sig)},
            "wrong-shape": {"derived": np.zeros(3)},
            "not-a-dict": [("derived", np.zeros(sig))],
            "missing": {},
        }[self.params.returned]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        pytest.param(
            "undeclared", r"ReturningUDF\.get_results\(\) returned 'nonsense', which is not a declared buffer"
        ),
        pytest.param("private", r"ReturningUDF\.get_results\(\) returned the private buffer 'hidden'"),
        pytest.param("wrong-shape", r"returned 'derived' with shape \(3,\); the buffer's shape is \(9, 11\)"),
        pytest.param("not-a-dict", r"ReturningUDF\.get_results\(\) must return a dict, got list"),
        pytest.param("missing", r"must return its result_only buffers, missing: \['derived'\]"),
    ],
)
def test_get_results_returning_what_was_not_declared_is_an_error(
    ctx: gpuudf.Context, random_counts: CountsFn, returned: str, message: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=message):
        ctx.run_udf(dataset=ds, udf=ReturningUDF(returned=returned))


# ---------------------------------------------------------------- backends


class BackendsUDF(AnyBackendUDF):
    """Declares ``backends``; its process method must not run when the run is refused."""

    def __init__(self, backends: tuple[str, ...]) -> None:
        super().__init__(backends=backends)

    def get_backends(self) -> tuple[str, ...]:
        return tuple(self.params.backends)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


def test_a_udf_needing_a_backend_the_executor_lacks_fails_before_any_frame(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn
) -> None:
    offered = executor_case.array_backend
    other = "cupy" if offered == "numpy" else "numpy"
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(BackendUnavailableError, match=rf"the run needs {other}, but .* offer only \('{offered}',\)"):
        ctx.run_udf(dataset=ds, udf=BackendsUDF(backends=(other,)))


def test_a_cupy_only_udf_on_the_cpu_inline_executor_says_no_gpu_was_found(random_counts: CountsFn) -> None:
    with gpuudf.Context(executor=InlineExecutor()) as cpu_ctx:
        ds = cpu_ctx.load("memory", data=random_counts(DATA_SHAPE))
        with pytest.raises(BackendUnavailableError, match=r"the run needs cupy.*no usable CUDA GPU was found"):
            cpu_ctx.run_udf(dataset=ds, udf=BackendsUDF(backends=("cupy",)))


def test_backends_argument_can_exclude_what_the_executor_offers(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    other = "cupy" if executor_case.array_backend == "numpy" else "numpy"
    with pytest.raises(BackendUnavailableError, match=rf"the run needs {other}"):
        ctx.run_udf(dataset=ds, udf=BackendsUDF(backends=("numpy", "cupy")), backends=(other,))


def test_backends_argument_restricting_to_the_offered_backend_runs(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=MaxUDF(), backends=(executor_case.array_backend,))
    assert_array_equal(res["maxbuf"].data, data.max(axis=(0, 1)))


@pytest.mark.parametrize(
    ("udfs", "backends", "message"),
    [
        pytest.param(
            [BackendsUDF(backends=("numpy",)), BackendsUDF(backends=("cupy",))],
            None,
            r"the UDFs of this run share no array backend",
            id="no-common-backend",
        ),
        pytest.param(
            [BackendsUDF(backends=("cupy",))],
            ("numpy",),
            r"backends=\('numpy',\) excludes every backend",
            id="excluded",
        ),
        pytest.param(
            [BackendsUDF(backends=("jax",))], None, r"BackendsUDF names array backends \('jax',\)", id="unknown"
        ),
        pytest.param([BackendsUDF(backends=())], None, r"BackendsUDF names array backends \(\)", id="empty"),
        pytest.param([MaxUDF()], 5, r"backends must be a tuple of names, got 5", id="not-names"),
    ],
)
def test_impossible_backend_choices_are_definition_errors(
    ctx: gpuudf.Context, random_counts: CountsFn, udfs: list[UDF], backends: Any, message: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=message):
        ctx.run_udf(dataset=ds, udf=udfs, backends=backends)


# ---------------------------------------------------------------- a run leaves its inputs alone


def test_a_run_leaves_the_users_udf_as_it_was_but_for_the_meta_of_the_run(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    udf = SumTileUDF(depth=2)
    before = dict(vars(udf))
    params_before = dict(vars(udf.params))
    first = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    assert vars(udf).keys() == {*before, "meta"}  # LiberTEM's UDFs keep the meta of their run, too
    assert (udf.meta.dataset_shape, udf.meta.input_dtype) == (DATA_SHAPE, np.dtype("float32"))
    assert all(vars(udf)[k] is v for k, v in before.items())
    assert dict(vars(udf.params)) == params_before
    assert udf.task_data == {}
    second = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    for name in first:
        assert_array_equal(first[name].data, second[name].data)


class ScribblingUDF(AnyBackendUDF):
    """Tries to write into the frames it is given."""

    def get_preferred_input_dtype(self) -> Any:
        return self.USE_NATIVE_DTYPE

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"x": self.buffer(kind="nav")}

    def process_tile(self, tile: Any) -> None:
        tile[...] = -1


@pytest.mark.parametrize("udf_class", [SumFrameUDF, MaxUDF, ScribblingUDF])
def test_a_run_never_writes_into_the_input_array(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, udf_class: type[UDF]
) -> None:
    data = random_counts(DATA_SHAPE)
    pristine = data.copy()
    ds = load_partitioned(data)
    error: ValueError | None = None
    try:
        ctx.run_udf(dataset=ds, udf=udf_class())
    except ValueError as exc:  # a read-only view refusing the write is fine too
        error = exc
    assert error is None or "read-only" in str(error)
    assert_array_equal(data, pristine)
    assert data.flags.writeable


def test_run_udf_rejects_an_empty_list_of_udfs(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(ValueError, match="run_udf needs at least one UDF"):
        ctx.run_udf(dataset=ds, udf=[])


def test_run_udf_rejects_a_udf_class_instead_of_an_instance(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(TypeError, match="expected a UDF instance, got the class MaxUDF: pass MaxUDF"):
        ctx.run_udf(dataset=ds, udf=[MaxUDF])  # type: ignore[list-item]


def test_run_udf_rejects_a_dataset_not_made_by_load(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    with pytest.raises(TypeError, match=r"dataset must come from Context\.load, got ndarray"):
        ctx.run_udf(dataset=random_counts(DATA_SHAPE), udf=MaxUDF())  # type: ignore[arg-type]
