"""A UDF instance deep-copies and pickles: before a run, holding a device ``xp``, and inside a run.

LiberTEM pickles UDFs with their buffers allocated (its ``test_udf_pickle``);
modules do not pickle, so ``self.xp`` travels by its module's name.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf.backends.simulated import SimulatedArray, SimulatedArrayModule, make_simulated_backend
from gpuudf.buffers import BufferDeclaration
from tests.udfs_for_tests import DATA_SHAPE, AnyBackendUDF, SumFrameUDF

CountsFn = Callable[..., np.ndarray[Any, Any]]

SIG_AXES = (2, 3)

COPIERS = [
    pytest.param(copy.deepcopy, id="deepcopy"),
    pytest.param(lambda obj: pickle.loads(pickle.dumps(obj)), id="pickle"),
]


@pytest.mark.parametrize("copier", COPIERS)
def test_a_udf_survives_copying_before_a_run_with_its_parameters_and_numpy_as_xp(
    copier: Callable[[Any], Any],
) -> None:
    udf = SumFrameUDF(depth=3)

    twin = copier(udf)

    assert type(twin) is SumFrameUDF
    assert twin.params.depth == 3
    assert twin.xp is np
    assert twin.copy().params.depth == 3


@pytest.mark.parametrize("copier", COPIERS)
def test_a_copied_udf_runs_like_the_original(
    ctx: gpuudf.Context, random_counts: CountsFn, copier: Callable[[Any], Any]
) -> None:
    data = random_counts(DATA_SHAPE)
    dataset = ctx.load("memory", data=data, num_partitions=3)

    res = ctx.run_udf(dataset=dataset, udf=copier(SumFrameUDF(depth=2)))

    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES, dtype=np.float64))


@pytest.mark.parametrize("copier", COPIERS)
def test_a_udf_holding_a_cupy_like_xp_survives_copying(copier: Callable[[Any], Any]) -> None:
    udf = SumFrameUDF(depth=3)
    udf.xp = make_simulated_backend().xp
    assert isinstance(udf.xp, SimulatedArrayModule)

    twin = copier(udf)

    assert isinstance(twin.xp, SimulatedArrayModule)
    ones = twin.xp.asarray(np.ones(4))
    assert isinstance(ones, SimulatedArray)
    assert float(twin.xp.sum(ones)) == 4.0
    assert isinstance(twin.xp.fft.fft(ones), SimulatedArray)  # submodules too
    assert twin.params.depth == 3
    assert isinstance(udf.xp, SimulatedArrayModule)  # the original keeps its own


class SelfCopyingUDF(AnyBackendUDF):
    """Deep-copies and pickles itself and its result views inside ``process_frame`` and computes with the copies.

    ``via_copy`` is each frame's sum computed through a deep copy's ``xp``;
    ``via_pickle`` through an unpickled copy's; ``views_ok`` whether the
    unpickled ``self.results`` have the views' names and shapes.
    """

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "via_copy": self.buffer(kind="nav", dtype="float64"),
            "via_pickle": self.buffer(kind="nav", dtype="float64"),
            "views_ok": self.buffer(kind="nav", dtype="bool"),
        }

    def process_frame(self, frame: Any) -> None:
        twin = copy.deepcopy(self)
        self.results.via_copy[:] = twin.xp.sum(twin.xp.asarray(frame))
        restored = pickle.loads(pickle.dumps(self))
        self.results.via_pickle[:] = restored.xp.sum(restored.xp.asarray(frame))
        views = pickle.loads(pickle.dumps(self.results))
        self.results.views_ok[:] = sorted(vars(views)) == sorted(vars(self.results)) and all(
            tuple(getattr(views, name).shape) == tuple(getattr(self.results, name).shape) for name in vars(views)
        )


def test_a_udf_deep_copied_and_pickled_inside_process_frame_works(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    dataset = ctx.load("memory", data=data, num_partitions=3)

    res = ctx.run_udf(dataset=dataset, udf=SelfCopyingUDF())

    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["via_copy"].data, sums)
    assert_array_equal(res["via_pickle"].data, sums)
    assert res["views_ok"].data.all()
