"""The exceptions a run raises for UDF mistakes: gpuudf's own classes and the builtins LiberTEM users catch.

Each class is looked up on ``gpuudf`` inside the test, so that a missing
name fails that test alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.udfs import SumUDF
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, AnyBackendUDF, ExecutorCase, ProcessCalledError

CountsFn = Callable[..., np.ndarray[Any, Any]]


class NoMergeUDF(AnyBackendUDF):
    """A ``kind`` buffer and no merge of its own."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind=kind)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"per_frame": self.buffer(kind="nav"), "acc": self.buffer(kind=self.params.kind)}

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


@pytest.mark.parametrize("kind", ["sig", "single"])
@pytest.mark.parametrize(
    "caught",
    ["MissingMergeError", "NotImplementedError", "UDFDefinitionError", "ValueError"],
)
def test_a_sig_or_single_buffer_without_merge_raises_missing_merge_error_that_is_also_not_implemented_error(
    ctx: gpuudf.Context, random_counts: CountsFn, kind: str, caught: str
) -> None:
    expected = (
        getattr(gpuudf, caught, None) or {"NotImplementedError": NotImplementedError, "ValueError": ValueError}[caught]
    )
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(expected, match=rf"NoMergeUDF has {kind} buffers \(acc\) but no merge") as info:
        ctx.run_udf(dataset=ds, udf=NoMergeUDF(kind=kind))
    assert type(info.value) is gpuudf.MissingMergeError


class NoProcessUDF(AnyBackendUDF):
    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"per_frame": self.buffer(kind="nav")}


@pytest.mark.parametrize("caught", ["MissingProcessMethodError", "TypeError", "UDFDefinitionError", "ValueError"])
def test_a_udf_without_a_process_method_raises_missing_process_method_error_that_is_also_type_error(
    ctx: gpuudf.Context, random_counts: CountsFn, caught: str
) -> None:
    expected = getattr(gpuudf, caught, None) or {"TypeError": TypeError, "ValueError": ValueError}[caught]
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(expected, match="NoProcessUDF has no process method") as info:
        ctx.run_udf(dataset=ds, udf=NoProcessUDF())
    assert type(info.value) is gpuudf.MissingProcessMethodError


class UndeclaredResultUDF(AnyBackendUDF):
    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"per_frame": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)

    def get_results(self) -> Mapping[str, Any]:
        return {"per_frame": self.results.per_frame, "extra": np.zeros(3)}


UNDECLARED_MESSAGE = (
    "UndeclaredResultUDF.get_results() returned 'extra', which is not a declared buffer (['per_frame']); "
    "declare it with self.buffer(..., use='result_only')"
)


@pytest.mark.parametrize("caught", ["UndeclaredBufferError", "KeyError", "UDFDefinitionError"])
def test_an_undeclared_buffer_from_get_results_raises_undeclared_buffer_error_that_is_also_key_error(
    ctx: gpuudf.Context, random_counts: CountsFn, caught: str
) -> None:
    expected = getattr(gpuudf, caught, None) or KeyError
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(expected) as info:
        ctx.run_udf(dataset=ds, udf=UndeclaredResultUDF())
    assert type(info.value) is gpuudf.UndeclaredBufferError
    # the plain message, not KeyError's quoted repr of it
    assert str(info.value) == UNDECLARED_MESSAGE


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        pytest.param("threads", {}, r"unknown executor 'threads'; available: 'inline', 'local', 'dask'", id="threads"),
        pytest.param("dask-integration", {}, r"unknown executor 'dask-integration'", id="dask-integration"),
        pytest.param("local", {"cpus": -1}, r"make_with\('local'\): cpus=-1", id="negative-cpus"),
        pytest.param("dask", {"cpus": -1}, r"make_with\('dask'\): cpus=-1", id="dask-negative-cpus"),
        pytest.param(
            "local", {"gpus": 1}, r"make_with\('local'\): .*unexpected keyword argument 'gpus'", id="libertem-keyword"
        ),
    ],
)
def test_a_bad_make_with_spec_raises_executor_spec_exception_that_is_also_value_error(
    spec: str, kwargs: dict[str, Any], message: str
) -> None:
    assert issubclass(gpuudf.ExecutorSpecException, ValueError)
    with pytest.raises(gpuudf.ExecutorSpecException, match=message):
        gpuudf.Context.make_with(spec, **kwargs)
    with pytest.raises(ValueError, match=message):
        gpuudf.Context.make_with(spec, **kwargs)


def test_udf_exception_is_libertems_name_for_udf_definition_error() -> None:
    assert gpuudf.UDFException is gpuudf.UDFDefinitionError


def test_the_error_classes_derive_from_the_builtins_libertem_raises() -> None:
    assert issubclass(gpuudf.MissingMergeError, NotImplementedError)
    assert issubclass(gpuudf.MissingProcessMethodError, TypeError)
    assert issubclass(gpuudf.UndeclaredBufferError, KeyError)
    for cls in (gpuudf.MissingMergeError, gpuudf.MissingProcessMethodError, gpuudf.UndeclaredBufferError):
        assert issubclass(cls, gpuudf.UDFDefinitionError)
        assert cls.__name__ in gpuudf.__all__


def test_running_a_udf_class_instead_of_an_instance_is_a_type_error_saying_an_instance_was_expected(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(
        TypeError, match=r"expected a UDF instance, got the class SumUDF: pass SumUDF\(\.\.\.\) instead"
    ):
        ctx.run_udf(dataset=ds, udf=SumUDF)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="expected a UDF instance, got the class SumUDF"):
        ctx.run_udf(dataset=ds, udf=[SumUDF(), SumUDF])  # type: ignore[list-item]


class BackendsUDF(AnyBackendUDF):
    """``get_backends`` returns ``backends`` as given."""

    def __init__(self, backends: Any) -> None:
        super().__init__(backends=backends)

    def get_backends(self) -> Any:
        return self.params.backends

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"per_frame": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.per_frame[:] = src.per_frame


def test_get_backends_may_return_a_single_name(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    udf = BackendsUDF(backends=executor_case.array_backend)  # "numpy" or "cupy", as a plain string
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=udf)
    assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3)))


@pytest.mark.parametrize(
    "libertem_only",
    [
        ("sparse.COO",),
        ("scipy.sparse.csr_matrix", "sparse.GCXS"),
        ("cupyx.scipy.sparse.csr_matrix", "cuda"),
    ],
    ids=["sparse", "scipy", "cupyx-cuda"],
)
def test_libertems_sparse_backend_names_besides_numpy_or_cupy_are_accepted_but_unknown_names_still_raise(
    ctx: gpuudf.Context, random_counts: CountsFn, libertem_only: tuple[str, ...]
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data)
    res = ctx.run_udf(dataset=ds, udf=BackendsUDF(backends=("numpy", *libertem_only, "cupy")))
    assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3)))
    with pytest.raises(gpuudf.UDFDefinitionError, match=r"names array backends .*'sparse\.bogus'"):
        ctx.run_udf(dataset=ds, udf=BackendsUDF(backends=("numpy", *libertem_only, "sparse.bogus")))
    with pytest.raises(gpuudf.UDFDefinitionError, match="names array backends"):
        ctx.run_udf(dataset=ds, udf=BackendsUDF(backends=libertem_only))  # none gpuudf can run
    assert res["per_frame"].data.shape == NAV_SHAPE
