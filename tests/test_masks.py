"""Mask factories of ``gpuudf.masks``: geometry, sub-pixel behaviour, sparse forms, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal

from gpuudf import masks

SIG = (24, 30)
CENTRE = (11.3, 14.6)


def distance_to(centre: tuple[float, float]) -> np.ndarray[Any, Any]:
    y, x = np.mgrid[: SIG[0], : SIG[1]]
    return np.hypot(y - centre[0], x - centre[1])


def test_a_disk_selects_the_pixels_whose_centre_is_within_the_radius() -> None:
    mask = masks.disk(SIG, CENTRE, 5.5)
    assert mask.shape == SIG
    assert mask.dtype == np.float32
    assert_array_equal(mask, (distance_to(CENTRE) <= 5.5).astype(np.float32))


def test_a_ring_selects_the_pixels_between_its_radii_excluding_the_inner_one() -> None:
    d = distance_to(CENTRE)
    assert_array_equal(masks.ring(SIG, CENTRE, 9, 4), ((d <= 9) & (d > 4)).astype(np.float32))
    assert_array_equal(masks.ring(SIG, CENTRE, 9, 4) + masks.disk(SIG, CENTRE, 4), masks.disk(SIG, CENTRE, 9))


@pytest.mark.parametrize("radius", [3.0, 4.25, 7.5, 10.0])
def test_an_antialiased_disk_has_the_area_of_the_circle_within_two_percent(radius: float) -> None:
    mask = masks.disk(SIG, CENTRE, radius, antialiased=True)
    assert mask.min() >= 0
    assert mask.max() <= 1
    assert mask.sum() == pytest.approx(np.pi * radius**2, rel=0.02)


def test_an_antialiased_disk_grows_smoothly_with_its_radius() -> None:
    totals = [masks.disk(SIG, CENTRE, r, antialiased=True).sum() for r in np.linspace(4, 5, 11)]
    steps = np.diff(totals)
    assert (steps > 0).all()
    assert steps.max() < 3 * steps.min()


def test_an_antialiased_ring_is_the_difference_of_two_antialiased_disks() -> None:
    outer = masks.disk(SIG, CENTRE, 9, antialiased=True)
    inner = masks.disk(SIG, CENTRE, 4, antialiased=True)
    assert_allclose(masks.ring(SIG, CENTRE, 9, 4, antialiased=True), outer - inner, atol=1e-6)


def test_detector_helpers_are_a_disk_over_the_beam_and_a_ring_outside_it() -> None:
    assert_array_equal(masks.bright_field(SIG, CENTRE, 4), masks.disk(SIG, CENTRE, 4))
    assert_array_equal(masks.annular_dark_field(SIG, CENTRE, 6, 11), masks.ring(SIG, CENTRE, 11, 6))


def test_a_point_on_a_pixel_selects_that_pixel() -> None:
    mask = masks.point(SIG, (3, 7))
    assert mask.sum() == 1
    assert mask[3, 7] == 1


def test_a_point_between_pixels_splits_its_weight_bilinearly() -> None:
    mask = masks.point(SIG, (3.25, 7.5))
    assert mask.sum() == pytest.approx(1)
    assert_allclose(mask[3:5, 7:9], [[0.375, 0.375], [0.125, 0.125]])
    # its first moments are the position itself
    y, x = np.mgrid[: SIG[0], : SIG[1]]
    assert (mask * y).sum() == pytest.approx(3.25)
    assert (mask * x).sum() == pytest.approx(7.5)


def test_a_rectangle_with_integer_corners_is_the_slice_it_names() -> None:
    expected = np.zeros(SIG, dtype=np.float32)
    expected[2 : 2 + 5, 3 : 3 + 8] = 1
    assert_array_equal(masks.rectangle(SIG, (2, 3), (5, 8)), expected)


def test_a_rectangle_with_fractional_corners_covers_its_exact_area() -> None:
    mask = masks.rectangle(SIG, (2.5, 3.25), (4.5, 6.0))
    assert mask.sum() == pytest.approx(4.5 * 6.0)
    assert mask[2, 4] == pytest.approx(0.5)  # half of row 2 is covered


def test_gradients_hold_each_pixels_coordinate_from_the_origin() -> None:
    assert_array_equal(masks.gradient_x(SIG)[5], np.arange(SIG[1]))
    assert_array_equal(masks.gradient_y(SIG)[:, 5], np.arange(SIG[0]))
    assert_array_equal(masks.gradient_x(SIG, origin=2.5)[0], np.arange(SIG[1]) - 2.5)


def test_radial_bins_are_rings_of_equal_width_that_add_up_to_the_disk() -> None:
    bins = masks.radial_bins(SIG, CENTRE, 10, n_bins=5)
    assert bins.shape == (5, *SIG)
    assert_array_equal(bins.sum(axis=0), masks.disk(SIG, CENTRE, 10))
    assert_array_equal(bins[2], masks.ring(SIG, CENTRE, 6, 4))
    assert np.all(bins.sum(axis=0) <= 1)


def test_radial_bins_with_an_inner_radius_add_up_to_the_ring() -> None:
    bins = masks.radial_bins(SIG, CENTRE, 10, radius_inner=3, n_bins=7, antialiased=True)
    assert_allclose(bins.sum(axis=0), masks.ring(SIG, CENTRE, 10, 3, antialiased=True), atol=1e-6)


def test_normalized_radial_bins_each_sum_to_one() -> None:
    bins = masks.radial_bins(SIG, CENTRE, 8, n_bins=4, normalize=True)
    assert_allclose(bins.sum(axis=(1, 2)), 1, rtol=1e-6)


def test_radial_bins_default_to_one_bin_per_pixel_of_radius() -> None:
    assert masks.radial_bins(SIG, CENTRE, 8, radius_inner=2).shape[0] == 6


def test_sparse_masks_are_csr_matrices_holding_the_dense_values() -> None:
    single = masks.disk(SIG, CENTRE, 5, sparse=True)
    assert isinstance(single, scipy.sparse.csr_matrix)
    assert single.shape == SIG
    assert_array_equal(single.toarray(), masks.disk(SIG, CENTRE, 5))
    stack = masks.radial_bins(SIG, CENTRE, 8, n_bins=3, sparse=True)
    assert stack.shape == (3, SIG[0] * SIG[1])
    assert_array_equal(stack.toarray(), masks.radial_bins(SIG, CENTRE, 8, n_bins=3).reshape(3, -1))


def test_factories_return_the_dtype_asked_for() -> None:
    assert masks.disk(SIG, CENTRE, 5, dtype=bool).dtype == np.bool_
    assert masks.ring(SIG, CENTRE, 5, 2, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        pytest.param(lambda: masks.disk(SIG, CENTRE, -1), "radius", id="negative-radius"),
        pytest.param(lambda: masks.disk(SIG, CENTRE, np.nan), "radius", id="nan-radius"),
        pytest.param(lambda: masks.disk((24,), CENTRE, 3), "sig_shape", id="one-dimensional-shape"),
        pytest.param(lambda: masks.disk((0, 5), CENTRE, 3), "sig_shape", id="empty-shape"),
        pytest.param(lambda: masks.disk(SIG, (1, 2, 3), 3), "centre", id="three-coordinates"),
        pytest.param(lambda: masks.ring(SIG, CENTRE, 4, 4), "radius_inner", id="inner-not-below-outer"),
        pytest.param(lambda: masks.point(SIG, (24, 0)), "position", id="point-outside"),
        pytest.param(lambda: masks.rectangle(SIG, (0, 0), (0, 3)), "size", id="empty-rectangle"),
        pytest.param(lambda: masks.radial_bins(SIG, CENTRE, 5, n_bins=0), "n_bins", id="no-bins"),
    ],
)
def test_bad_geometry_raises_a_value_error_naming_the_parameter(make: Any, parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        make()
