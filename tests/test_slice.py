"""``gpuudf.Slice``: LiberTEM's block of a dataset, an origin and a shape.

Expected values were computed with LiberTEM 0.16's ``libertem.common.slice.Slice``
on the same inputs and are written out here.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gpuudf import Shape, Slice

#: One nav axis (flattened, as ``meta.slice`` has it) and a 2-D frame.
BLOCK = Slice((2, 1, 3), Shape((4, 5, 6), sig_dims=2))


def test_the_constructor_keeps_origin_and_shape_as_given() -> None:
    origin: list[Any] = [np.int64(2), 1, 3]
    block = Slice(origin, Shape((4, 5, 6), sig_dims=2))

    assert block.origin == (2, 1, 3)
    assert all(type(o) is int for o in block.origin)
    assert tuple(block.shape) == (4, 5, 6)
    assert block.shape.sig_dims == 2


def test_the_constructor_refuses_an_origin_of_another_rank_than_the_shape() -> None:
    with pytest.raises(ValueError, match="rank"):
        Slice((1, 2), Shape((3, 4, 5), sig_dims=2))


def test_the_constructor_refuses_a_plain_tuple_as_shape() -> None:
    with pytest.raises(TypeError, match="Shape"):
        Slice((1, 2, 3), (3, 4, 5))  # type: ignore[arg-type]


def test_from_shape_covers_the_whole_shape_at_origin_zero() -> None:
    block = Slice.from_shape((3, 4, 5), sig_dims=2)

    assert block.origin == (0, 0, 0)
    assert tuple(block.shape) == (3, 4, 5)
    assert block.shape.sig_dims == 2
    assert block == Slice((0, 0, 0), Shape((3, 4, 5), sig_dims=2))


def test_get_without_an_array_gives_python_slices_per_axis() -> None:
    assert BLOCK.get() == (slice(2, 6), slice(1, 6), slice(3, 9))


def test_get_sig_only_and_nav_only_give_the_slices_of_those_axes() -> None:
    assert BLOCK.get(sig_only=True) == (slice(1, 6), slice(3, 9))
    assert BLOCK.get(nav_only=True) == (slice(2, 6),)
    two_nav = Slice((1, 2, 0, 0), Shape((2, 3, 4, 5), sig_dims=2))
    assert two_nav.get(nav_only=True) == (slice(1, 3), slice(2, 5))
    assert Slice.from_shape((3, 4), sig_dims=2).get(nav_only=True) == ()


def test_get_with_an_array_cuts_the_block_out_of_it() -> None:
    arr = np.arange(10 * 8 * 10).reshape(10, 8, 10)

    block = BLOCK.get(arr)

    assert block.shape == (4, 5, 6)
    assert block[0, 0, 0] == 173
    assert_array_equal(block, arr[2:6, 1:6, 3:9])


def test_get_sig_only_with_an_array_cuts_its_trailing_axes() -> None:
    frame = np.arange(8 * 10).reshape(8, 10)
    stack = np.arange(3 * 8 * 10).reshape(3, 8, 10)

    assert BLOCK.get(frame, sig_only=True).shape == (5, 6)
    assert BLOCK.get(frame, sig_only=True)[0, 0] == 13
    assert_array_equal(BLOCK.get(stack, sig_only=True), stack[:, 1:6, 3:9])


def test_get_nav_only_with_an_array_keeps_its_further_axes_whole() -> None:
    per_frame = np.arange(10 * 7).reshape(10, 7)
    two_nav = Slice((1, 2, 0, 0), Shape((2, 3, 4, 5), sig_dims=2))
    nav_shaped = np.arange(5 * 6 * 2).reshape(5, 6, 2)

    assert BLOCK.get(per_frame, nav_only=True).shape == (4, 7)
    assert BLOCK.get(per_frame, nav_only=True)[0, 0] == 14
    assert two_nav.get(nav_shaped, nav_only=True).shape == (2, 3, 2)
    assert two_nav.get(nav_shaped, nav_only=True)[0, 0].tolist() == [16, 17]


def test_nav_and_sig_are_the_parts_with_their_own_sig_dims() -> None:
    assert BLOCK.nav == Slice((2,), Shape((4,), sig_dims=0))
    assert BLOCK.nav.shape.sig_dims == 0
    assert BLOCK.sig == Slice((1, 3), Shape((5, 6), sig_dims=2))
    assert BLOCK.sig.shape.sig_dims == 2
    two_nav = Slice((1, 2, 0, 0), Shape((2, 3, 4, 5), sig_dims=2))
    assert two_nav.nav == Slice((1, 2), Shape((2, 3), sig_dims=0))
    assert two_nav.sig == Slice((0, 0), Shape((4, 5), sig_dims=2))


def test_shift_makes_the_origin_relative_to_another_slice() -> None:
    other = Slice((1, 0, 1), Shape((2, 3, 4), sig_dims=2))

    assert BLOCK.shift(other) == Slice((1, 1, 2), Shape((4, 5, 6), sig_dims=2))


def test_shift_refuses_a_slice_of_another_rank() -> None:
    with pytest.raises(ValueError, match="rank"):
        BLOCK.shift(Slice((1, 1), Shape((2, 2), sig_dims=2)))


def test_shift_by_moves_the_origin_by_an_offset() -> None:
    assert BLOCK.shift_by((1, 2, 3)) == Slice((3, 3, 6), Shape((4, 5, 6), sig_dims=2))
    with pytest.raises(ValueError, match="rank"):
        BLOCK.shift_by((1, 2))


def test_discard_nav_zeroes_origin_and_length_of_the_nav_axes() -> None:
    assert BLOCK.discard_nav() == Slice((0, 1, 3), Shape((0, 5, 6), sig_dims=2))
    two_nav = Slice((1, 2, 0, 0), Shape((2, 3, 4, 5), sig_dims=2))
    assert two_nav.discard_nav() == Slice((0, 0, 0, 0), Shape((0, 0, 4, 5), sig_dims=2))


def test_intersection_with_an_overlapping_slice_is_the_common_block() -> None:
    other = Slice((4, 0, 0), Shape((5, 3, 5), sig_dims=2))

    common = BLOCK.intersection_with(other)

    assert common == Slice((4, 1, 3), Shape((2, 2, 2), sig_dims=2))
    assert not common.is_null()


def test_intersection_with_a_disjoint_slice_is_null() -> None:
    other = Slice((7, 0, 0), Shape((2, 3, 5), sig_dims=2))

    common = BLOCK.intersection_with(other)

    assert common == Slice((7, 1, 3), Shape((0, 2, 2), sig_dims=2))
    assert common.is_null()


def test_is_null_when_any_axis_has_length_zero() -> None:
    assert not BLOCK.is_null()
    assert Slice((0, 0, 0), Shape((0, 3, 4), sig_dims=2)).is_null()
    assert Slice((0, 0, 0), Shape((3, 4, 0), sig_dims=2)).is_null()


def test_adjust_for_roi_counts_the_selected_frames_before_and_inside() -> None:
    roi = np.array([1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
    block = Slice((3, 0, 0), Shape((6, 5, 6), sig_dims=2))

    expected = Slice((2, 0, 0), Shape((3, 5, 6), sig_dims=2))
    assert block.adjust_for_roi(roi) == expected
    assert block.adjust_for_roi(roi.reshape(3, 4)) == expected  # a nav-shaped ROI is flattened
    assert block.adjust_for_roi(None) == block


def test_adjust_for_roi_selecting_nothing_is_null() -> None:
    block = Slice((5, 0, 0), Shape((3, 4, 4), sig_dims=2))

    adjusted = block.adjust_for_roi(np.zeros(12, dtype=bool))

    assert adjusted == Slice((0, 0, 0), Shape((0, 4, 4), sig_dims=2))
    assert adjusted.is_null()


def test_equal_slices_have_equal_origin_shape_and_sig_dims_and_hash_alike() -> None:
    same = Slice((2, 1, 3), Shape((4, 5, 6), sig_dims=2))

    assert same == BLOCK
    assert hash(same) == hash(BLOCK)
    assert len({same, BLOCK}) == 1
    assert Slice((2, 1, 3), Shape((4, 5, 7), sig_dims=2)) != BLOCK
    assert Slice((2, 1, 4), Shape((4, 5, 6), sig_dims=2)) != BLOCK
    assert Slice((2, 1, 3), Shape((4, 5, 6), sig_dims=1)) != BLOCK  # as in LiberTEM
    assert BLOCK != (2, 1, 3)


def test_a_slice_survives_pickle_and_copies() -> None:
    for twin in (pickle.loads(pickle.dumps(BLOCK)), copy.copy(BLOCK), copy.deepcopy(BLOCK)):
        assert twin == BLOCK
        assert twin.shape.sig_dims == 2
        assert isinstance(twin.shape, Shape)


def test_repr_names_origin_shape_and_sig_dims() -> None:
    assert repr(BLOCK) == "<Slice origin=(2, 1, 3) shape=(4, 5, 6) sig_dims=2>"
