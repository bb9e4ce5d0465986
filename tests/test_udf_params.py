"""LiberTEM's UDF conveniences: ``self.params`` as a mapping, ``UDF_METHOD``, ``BACKEND_*`` and ``TILE_*`` constants."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import DATA_SHAPE, AnyBackendUDF, ProcessCalledError

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

SIG_AXES = (2, 3)


# ---------------------------------------------------------------- self.params as a mapping


def test_params_get_returns_a_parameter_or_the_default() -> None:
    params = UDF(scale=2.0, label=None).params
    assert params.get("scale") == 2.0
    assert params.get("label", "unused") is None  # given as None: not the default
    assert params.get("missing") is None
    assert params.get("missing", 7) == 7


def test_params_support_in_item_access_keys_items_and_values() -> None:
    params = UDF(scale=2.0, offset=1).params
    assert "scale" in params
    assert "missing" not in params
    assert params["offset"] == 1
    assert params.keys() == ["scale", "offset"]
    assert params.items() == [("scale", 2.0), ("offset", 1)]
    assert params.values() == [2.0, 1]
    assert list(params) == ["scale", "offset"]
    assert params.scale == 2.0  # attribute access stays


def test_params_item_access_for_a_missing_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="missing"):
        UDF(scale=2.0).params["missing"]


class ParamsMappingUDF(AnyBackendUDF):
    """Reads its parameters LiberTEM's ways; ``offset`` is optional."""

    def __init__(self, scale: float = 1.0, **optional: Any) -> None:
        super().__init__(scale=scale, **optional)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"scaled": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        if sorted(self.params.keys()) != sorted(name for name, _ in self.params.items()):
            msg = f"keys {self.params.keys()} and items {self.params.items()} disagree"
            raise ProcessCalledError(msg)
        if "scale" not in self.params or "missing" in self.params:
            msg = f"'scale' in params: {'scale' in self.params}, 'missing' in params: {'missing' in self.params}"
            raise ProcessCalledError(msg)
        self.results.scaled[:] = self.xp.sum(frame) * self.params["scale"] + self.params.get("offset", 0.0)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.scaled[:] = src.scaled


@pytest.mark.parametrize(
    ("kwargs", "scale", "offset"),
    [({}, 1.0, 0.0), ({"scale": 3.0}, 3.0, 0.0), ({"scale": 2.0, "offset": 5.0}, 2.0, 5.0)],
    ids=["defaults", "scale", "scale-and-offset"],
)
def test_params_read_as_a_mapping_inside_the_process_methods(
    ctx: gpuudf.Context, random_counts: CountsFn, kwargs: dict[str, Any], scale: float, offset: float
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ParamsMappingUDF(**kwargs))
    assert_array_equal(res["scaled"].data, data.sum(axis=SIG_AXES, dtype=np.float64) * scale + offset)


# ---------------------------------------------------------------- UDF_METHOD


def test_udf_method_is_the_enum_get_method_returns_and_its_members_equal_the_plain_names() -> None:
    assert UDF.UDF_METHOD is gpuudf.UDFMethod
    assert (UDF.UDF_METHOD.TILE, UDF.UDF_METHOD.FRAME, UDF.UDF_METHOD.PARTITION) == ("tile", "frame", "partition")
    assert [m.value for m in UDF.UDF_METHOD] == ["tile", "frame", "partition"]

    class FrameOnly(UDF):
        def process_frame(self, frame: Any) -> None:
            pass

    method = FrameOnly().get_method()
    assert isinstance(method, UDF.UDF_METHOD)
    assert method is UDF.UDF_METHOD.FRAME


class ChosenMethodUDF(AnyBackendUDF):
    """Implements all three process methods; ``method`` is what get_method() returns, enum or string.

    ``used`` records per frame which ran: 1 tile, 2 frame, 3 partition.
    """

    def __init__(self, method: str, as_enum: bool) -> None:
        super().__init__(method=method, as_enum=as_enum)

    def get_method(self) -> Any:
        return UDF.UDF_METHOD(self.params.method) if self.params.as_enum else self.params.method

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"used": self.buffer(kind="nav", dtype="int64"), "per_frame": self.buffer(kind="nav", dtype="float64")}

    def process_tile(self, tile: Any) -> None:
        self.results.used[:] = 1
        self.results.per_frame[:] = self.xp.sum(tile, axis=(1, 2))

    def process_frame(self, frame: Any) -> None:
        self.results.used[:] = 2
        self.results.per_frame[:] = self.xp.sum(frame)

    def process_partition(self, partition: Any) -> None:
        self.results.used[:] = 3
        self.results.per_frame[:] = self.xp.sum(partition, axis=(1, 2))


@pytest.mark.parametrize(("method", "code"), [("tile", 1), ("frame", 2), ("partition", 3)])
def test_get_method_returning_the_enum_or_a_plain_string_selects_that_method(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, method: str, code: int
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load_partitioned(data)
    for as_enum in (True, False):
        res = ctx.run_udf(dataset=ds, udf=ChosenMethodUDF(method=method, as_enum=as_enum))
        assert (res["used"].data == code).all(), as_enum
        assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES))


# ---------------------------------------------------------------- BACKEND_* constants


class ConstantBackendsUDF(UDF):
    """``get_backends`` built from LiberTEM's constants; ``spelling`` picks which."""

    def __init__(self, spelling: str) -> None:
        super().__init__(spelling=spelling)

    def get_backends(self) -> tuple[str, ...]:
        if self.params.spelling == "all":
            return UDF.BACKEND_ALL
        return (self.BACKEND_NUMPY, self.BACKEND_CUPY)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"per_frame": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)


def test_backend_constants_name_the_array_backends() -> None:
    assert (UDF.BACKEND_NUMPY, UDF.BACKEND_CUPY) == ("numpy", "cupy")
    assert set(UDF.BACKEND_ALL) == {"numpy", "cupy"}


@pytest.mark.parametrize("spelling", ["numpy-and-cupy", "all"])
def test_get_backends_built_from_the_backend_constants_runs_on_every_executor(
    ctx: gpuudf.Context, random_counts: CountsFn, spelling: str
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ConstantBackendsUDF(spelling=spelling))
    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES))


# ---------------------------------------------------------------- TILE_* constants


class TileDepthUDF(AnyBackendUDF):
    """Records each frame's tile depth; ``preference`` names the tiling preferences it returns."""

    def __init__(self, preference: str) -> None:
        super().__init__(preference=preference)

    def get_tiling_preferences(self) -> Mapping[str, Any]:
        return {
            "none": {},
            "size-max": {"total_size": UDF.TILE_SIZE_MAX},
            "depth-default": {"depth": UDF.TILE_DEPTH_DEFAULT, "total_size": UDF.TILE_SIZE_MAX},
            "depth-max": {"depth": UDF.TILE_DEPTH_MAX},
            "best-fit": {"depth": UDF.TILE_DEPTH_DEFAULT, "total_size": UDF.TILE_SIZE_BEST_FIT},
            "depth-2-size-max": {"depth": 2, "total_size": UDF.TILE_SIZE_MAX},
        }[self.params.preference]

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"depth": self.buffer(kind="nav", dtype="int64"), "per_frame": self.buffer(kind="nav", dtype="float64")}

    def process_tile(self, tile: Any) -> None:
        self.results.depth[:] = tile.shape[0]
        self.results.per_frame[:] = self.xp.sum(tile, axis=(1, 2))


@pytest.mark.parametrize("preference", ["size-max", "depth-default", "depth-max", "best-fit"])
def test_the_tile_constants_mean_no_preference(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, preference: str
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load_partitioned(data, tileshape=(3, *DATA_SHAPE[2:]))  # the dataset prefers 3-frame tiles
    plain = ctx.run_udf(dataset=ds, udf=TileDepthUDF(preference="none"))
    res = ctx.run_udf(dataset=ds, udf=TileDepthUDF(preference=preference))
    assert_array_equal(res["depth"].data, plain["depth"].data)
    assert res["depth"].data.max() <= 3
    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES))


def test_a_finite_preference_still_applies_next_to_a_no_preference_constant(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=TileDepthUDF(preference="depth-2-size-max"))
    assert res["depth"].data.max() == 2
    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES))
