"""``ApplyMasksUDF``: virtual detectors against NumPy, dense and sparse, on every executor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import sparse as pydata_sparse
from numpy.testing import assert_allclose, assert_array_equal

import gpuudf
from gpuudf import masks
from gpuudf.datasets import DataSet
from gpuudf.errors import UDFDefinitionError
from gpuudf.executors import InlineExecutor
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs import ApplyMasksUDF
from gpuudf.udfs.masks import Band, build_mask_stack, plan_bands
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

CENTRE = (4.0, 5.0)


def detector_masks() -> np.ndarray[Any, Any]:
    """A bright-field disk, a dark-field ring and an x gradient, as one stack."""
    return np.stack(
        [
            masks.bright_field(SIG_SHAPE, CENTRE, 2.5),
            masks.annular_dark_field(SIG_SHAPE, CENTRE, 2.5, 5),
            masks.gradient_x(SIG_SHAPE),
        ]
    )


def bright_field() -> np.ndarray[Any, Any]:
    return masks.bright_field(SIG_SHAPE, CENTRE, 2.5)


def dark_field() -> np.ndarray[Any, Any]:
    return masks.annular_dark_field(SIG_SHAPE, CENTRE, 2.5, 5)


def sparse_bright_field() -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(bright_field())


def sparse_dark_field() -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(dark_field())


def apply_with_numpy(data: np.ndarray[Any, Any], stack: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The reference: one float64 matrix product over all frames."""
    flat = data.reshape(-1, stack[0].size).astype(np.float64)
    result: np.ndarray[Any, Any] = (flat @ stack.reshape(len(stack), -1).T.astype(np.float64)).reshape(
        (*data.shape[:-2], len(stack))
    )
    return result


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_dense_masks_give_the_numpy_matrix_product_for_every_frame(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, data_dtype: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype=data_dtype, high=100)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=ApplyMasksUDF(mask_factories=[bright_field, dark_field]))
    intensity = res["intensity"]
    assert set(res) == {"intensity"}
    assert intensity.kind == "nav"
    assert intensity.data.shape == (*NAV_SHAPE, 2)
    assert intensity.dtype == np.float32
    assert_array_equal(intensity.data, apply_with_numpy(data, np.stack([bright_field(), dark_field()])))


def test_a_factory_returning_a_stack_gives_one_channel_per_mask_in_order(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ApplyMasksUDF(mask_factories=detector_masks))
    assert_array_equal(res["intensity"].data, apply_with_numpy(data, detector_masks()))


def test_one_mask_gives_one_channel(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ApplyMasksUDF(mask_factories=bright_field))
    assert res["intensity"].data.shape == (*NAV_SHAPE, 1)
    assert_array_equal(res["intensity"].data, apply_with_numpy(data, bright_field()[None]))


def test_masks_may_be_given_as_arrays_instead_of_factories(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    dataset = ctx.load("memory", data=data)
    stack = detector_masks()
    as_stack = ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(mask_factories=stack))["intensity"].data
    as_list = ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(mask_factories=list(stack)))["intensity"].data
    assert_array_equal(as_stack, apply_with_numpy(data, stack))
    assert_array_equal(as_list, as_stack)


TWO_DETECTORS = np.stack([bright_field(), dark_field()])


@pytest.mark.parametrize(
    ("udf", "stack"),
    [
        pytest.param(
            ApplyMasksUDF(mask_factories=[sparse_bright_field, sparse_dark_field]), TWO_DETECTORS, id="scipy-masks"
        ),
        pytest.param(
            ApplyMasksUDF(mask_factories=[bright_field, dark_field], use_sparse=True), TWO_DETECTORS, id="use-sparse"
        ),
        pytest.param(
            ApplyMasksUDF(mask_factories=[bright_field, dark_field], use_sparse="scipy.sparse.csc"),
            TWO_DETECTORS,
            id="csc-spelling",
        ),
        pytest.param(
            ApplyMasksUDF(
                mask_factories=[lambda: pydata_sparse.COO.from_numpy(bright_field()), dark_field],
                use_sparse="sparse.pydata",
            ),
            TWO_DETECTORS,
            id="pydata-masks",
        ),
        pytest.param(
            ApplyMasksUDF(mask_factories=lambda: masks.radial_bins(SIG_SHAPE, CENTRE, 5, n_bins=2, sparse=True)),
            masks.radial_bins(SIG_SHAPE, CENTRE, 5, n_bins=2),
            id="sparse-stack",
        ),
    ],
)
def test_sparse_masks_give_the_same_intensities_as_dense_ones(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    udf: ApplyMasksUDF,
    stack: np.ndarray[Any, Any],
) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    assert res["intensity"].dtype == np.float32
    assert_array_equal(res["intensity"].data, apply_with_numpy(data, stack))


@pytest.mark.parametrize(
    ("factories", "use_sparse", "sparse_expected"),
    [
        pytest.param([sparse_bright_field, sparse_dark_field], None, True, id="all-sparse-stay-sparse"),
        pytest.param([sparse_bright_field, dark_field], None, False, id="mixed-are-dense"),
        pytest.param([sparse_bright_field], False, False, id="use-sparse-false-densifies"),
        pytest.param([bright_field], True, True, id="use-sparse-true-sparsifies"),
    ],
)
def test_the_stack_is_sparse_when_asked_or_when_every_mask_is(
    factories: list[Any], use_sparse: bool | None, sparse_expected: bool
) -> None:
    stack = build_mask_stack(factories, SIG_SHAPE, use_sparse)
    assert scipy.sparse.issparse(stack) is sparse_expected
    assert stack.shape == (len(factories), SIG_SHAPE[0] * SIG_SHAPE[1])


@pytest.mark.parametrize(
    ("kwargs", "data_dtype", "result_dtype"),
    [
        pytest.param({}, "uint16", "float32", id="float32-by-default"),
        pytest.param(
            {"mask_factories": lambda: bright_field().astype(np.float64)},
            "uint16",
            "float64",
            id="float64-masks-give-float64",
        ),
        pytest.param(
            {"mask_factories": lambda: bright_field().astype(np.float64), "mask_dtype": np.float32},
            "uint16",
            "float32",
            id="mask-dtype-overrides",
        ),
        pytest.param(
            {"mask_factories": lambda: bright_field().astype(np.int64), "preferred_dtype": np.int64},
            "uint16",
            "int64",
            id="integer-arithmetic",
        ),
        pytest.param(
            {"mask_factories": lambda: bright_field().astype(np.complex64)}, "float32", "complex64", id="complex-masks"
        ),
    ],
)
def test_the_result_dtype_is_that_of_input_and_masks_together(
    ctx: gpuudf.Context, random_counts: CountsFn, kwargs: dict[str, Any], data_dtype: str, result_dtype: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype=data_dtype, high=100)
    udf = ApplyMasksUDF(**{"mask_factories": bright_field, **kwargs})
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=udf)
    assert res["intensity"].dtype == np.dtype(result_dtype)
    assert_allclose(res["intensity"].data, apply_with_numpy(data, bright_field()[None]))


def test_with_a_roi_only_the_selected_frames_are_computed(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    roi = np.random.default_rng(3).random(NAV_SHAPE) < 0.4
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ApplyMasksUDF(mask_factories=detector_masks), roi=roi)
    intensity = res["intensity"]
    assert_array_equal(intensity.data[roi], apply_with_numpy(data, detector_masks())[roi])
    assert_array_equal(intensity.valid_mask, np.broadcast_to(roi[..., None], intensity.data.shape))


@pytest.mark.parametrize(
    "udf",
    [
        pytest.param(ApplyMasksUDF(mask_factories=detector_masks), id="dense"),
        pytest.param(ApplyMasksUDF(mask_factories=bright_field), id="one-mask"),
        pytest.param(ApplyMasksUDF(mask_factories=[sparse_bright_field, sparse_dark_field]), id="sparse"),
        pytest.param(ApplyMasksUDF(mask_factories=detector_masks, mask_dtype=np.float64), id="float64"),
    ],
)
def test_apply_masks_agrees_on_the_cpu_and_the_simulated_gpu(random_counts: CountsFn, udf: ApplyMasksUDF) -> None:
    with gpuudf.Context(executor=InlineExecutor()) as ctx:
        dataset = ctx.load("memory", data=random_counts(DATA_SHAPE, dtype="uint16", high=1000), num_partitions=3)
        assert_backends_agree(udf, dataset)


class CountingFactory:
    """A mask factory that counts its calls (inline executors only: the count stays in this process)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> np.ndarray[Any, Any]:
        self.calls += 1
        return detector_masks()


@pytest.mark.parametrize("device", ["cpu", "sim:0"])
def test_masks_are_built_once_on_the_driver_and_once_per_worker_not_per_partition(
    random_counts: CountsFn, device: str
) -> None:
    factory = CountingFactory()
    with gpuudf.Context(executor=InlineExecutor(device)) as ctx:
        dataset = ctx.load("memory", data=random_counts(DATA_SHAPE, high=100), num_partitions=7)
        ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(mask_factories=factory))
    assert factory.calls == 2


@pytest.mark.parametrize(
    ("factories", "kwargs", "message"),
    [
        pytest.param(lambda: np.ones((3, 4)), {}, r"mask_factories\[0\] has shape \(3, 4\)", id="wrong-shape"),
        pytest.param([bright_field, lambda: np.ones((2, 2))], {}, r"mask_factories\[1\]", id="second-wrong"),
        pytest.param(lambda: np.zeros((0, *SIG_SHAPE)), {}, "no masks", id="empty-stack"),
        pytest.param([], {}, "no masks", id="empty-list"),
        pytest.param(lambda: np.full(SIG_SHAPE, "a"), {}, "numeric", id="strings"),
        pytest.param(lambda: 1 / 0, {}, r"mask_factories\[0\].*failed.*ZeroDivisionError", id="factory-fails"),
        pytest.param(detector_masks, {"mask_count": 2}, "mask_count=2.*3 masks", id="wrong-mask-count"),
    ],
)
def test_bad_masks_fail_at_the_start_of_the_run_naming_the_parameter(
    ctx: gpuudf.Context, random_counts: CountsFn, factories: Any, kwargs: dict[str, Any], message: str
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=message):
        ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(mask_factories=factories, **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"use_sparse": "dense"}, "use_sparse", id="unknown-sparse-mode"),
        pytest.param({"mask_count": 0}, "mask_count", id="zero-mask-count"),
        pytest.param({"backends": ("numba",)}, "backends", id="no-supported-backend"),
    ],
)
def test_bad_arguments_fail_when_the_udf_is_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApplyMasksUDF(mask_factories=bright_field, **kwargs)


def test_the_backends_argument_limits_where_the_masks_are_applied() -> None:
    assert ApplyMasksUDF(mask_factories=bright_field).get_backends() == ("numpy", "cupy")
    assert ApplyMasksUDF(mask_factories=bright_field, backends=("numpy",)).get_backends() == ("numpy",)


def test_libertem_only_arguments_are_accepted(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    udf = ApplyMasksUDF(mask_factories=bright_field, use_torch=False, mask_count=1, mask_dtype=np.float32)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=udf)
    assert_array_equal(res["intensity"].data, apply_with_numpy(data, bright_field()[None]))


def test_bands_leave_out_rows_where_every_mask_is_zero_and_split_at_long_gaps() -> None:
    nonzero = np.zeros((3, 32), dtype=bool)
    nonzero[0, 3:6] = True  # a small disk at the top
    nonzero[1, 5:7] = True  # another one, overlapping it
    nonzero[2, 20:24] = True  # a third far below: a gap of 13 rows
    assert plan_bands(nonzero) == [Band(3, 7, (0, 1)), Band(20, 24, (2,))]
    # gaps of fewer than an eighth of the rows do not split
    nonzero[2, [10, 14, 17]] = True
    assert plan_bands(nonzero) == [Band(3, 24, (0, 1, 2))]
    full = np.ones((16, 32), dtype=bool)
    assert plan_bands(full) == [Band(0, 32, tuple(range(16)))]
    assert plan_bands(np.zeros((2, 8), dtype=bool)) == []


def test_bands_cover_every_non_zero_of_every_mask(rng: np.random.Generator) -> None:
    for _ in range(20):
        nonzero = rng.random((5, 40)) < 0.02
        covered = np.zeros_like(nonzero)
        for band in plan_bands(nonzero, min_gap_fraction=float(rng.random())):
            covered[list(band.masks), band.start : band.stop] = True
        assert not (nonzero & ~covered).any()


def three_detectors_with_a_gap() -> np.ndarray[Any, Any]:
    """A disk at the top, an empty mask, and a point at the bottom: bands with non-contiguous masks."""
    stack = np.zeros((4, *SIG_SHAPE), dtype=np.float32)
    stack[0] = masks.disk(SIG_SHAPE, (1, 2), 1)
    stack[2] = masks.point(SIG_SHAPE, (7.5, 9))
    stack[3] = masks.disk(SIG_SHAPE, (0, 8), 0.5)
    return stack


@pytest.mark.parametrize(
    ("sig_shape", "factory"),
    [
        pytest.param(SIG_SHAPE, three_detectors_with_a_gap, id="empty-mask-and-gaps"),
        pytest.param((99,), lambda: np.eye(99, dtype=np.float32)[[3, 50, 51]], id="one-dimensional-frames"),
        pytest.param((3, 3, 11), lambda: np.arange(2 * 99, dtype=np.float32).reshape(2, 3, 3, 11) % 3, id="3d-frames"),
    ],
)
def test_banded_products_match_numpy_for_any_frame_layout(
    ctx: gpuudf.Context, random_counts: CountsFn, sig_shape: tuple[int, ...], factory: Callable[[], Any]
) -> None:
    data = random_counts((*NAV_SHAPE, *sig_shape), high=100)
    dataset = ctx.load("memory", data=data, sig_dims=len(sig_shape))
    res = ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(mask_factories=factory))
    stack = factory().reshape(-1, int(np.prod(sig_shape)))
    expected = data.reshape(-1, stack.shape[1]).astype(np.float64) @ stack.T.astype(np.float64)
    assert_array_equal(res["intensity"].data, expected.reshape((*NAV_SHAPE, -1)))
