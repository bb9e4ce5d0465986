"""``Shape``: a tuple that knows its nav and sig axes."""

from __future__ import annotations

import copy
import math
import pickle

import pytest

from gpuudf import Shape


@pytest.mark.parametrize(
    ("dims", "sig_dims", "nav", "sig"),
    [
        pytest.param((13, 17), 1, (13,), (17,), id="nav1-sig1"),
        pytest.param((5, 7, 9, 11), 2, (5, 7), (9, 11), id="nav2-sig2"),
        pytest.param((5, 7, 9, 11), 3, (5,), (7, 9, 11), id="nav1-sig3"),
        pytest.param((3, 2, 5, 3, 4, 5), 3, (3, 2, 5), (3, 4, 5), id="nav3-sig3"),
        pytest.param((3, 2, 5, 17), 1, (3, 2, 5), (17,), id="nav3-sig1"),
    ],
)
def test_shape_splits_nav_and_sig_and_behaves_as_a_tuple(
    dims: tuple[int, ...], sig_dims: int, nav: tuple[int, ...], sig: tuple[int, ...]
) -> None:
    shape = Shape(dims, sig_dims=sig_dims)
    assert isinstance(shape, tuple)
    assert shape == dims
    assert tuple(shape) == dims
    assert hash(shape) == hash(dims)
    assert len(shape) == len(dims)
    assert shape[0] == dims[0]
    assert shape[-1] == dims[-1]
    assert shape[1:] == dims[1:]
    assert list(shape) == list(dims)
    assert shape.sig_dims == sig_dims
    assert shape.nav == nav
    assert shape.sig == sig
    assert isinstance(shape.nav, Shape)
    assert isinstance(shape.sig, Shape)
    assert (shape.nav.sig_dims, shape.sig.sig_dims) == (0, sig_dims)
    assert (shape.nav.size, shape.sig.size, shape.size) == (math.prod(nav), math.prod(sig), math.prod(dims))
    assert (shape.nav.dims, shape.sig.dims, shape.dims) == (len(nav), len(sig), len(dims))
    assert shape.nav.to_tuple() == nav
    assert type(shape.to_tuple()) is tuple
    assert shape.flatten_nav() == (math.prod(nav), *sig)
    assert shape.flatten_nav().sig_dims == sig_dims
    assert shape.flatten_sig() == (*nav, math.prod(sig))
    assert shape.flatten_sig().sig_dims == 1
    assert shape.nav_size == math.prod(nav)
    assert shape.sig_size == math.prod(sig)
    assert shape.flat_nav == (math.prod(nav), *sig)
    assert repr(shape) == f"Shape(nav={nav}, sig={sig})"


def test_shape_accepts_any_iterable_of_ints() -> None:
    shape = Shape(iter([5, 7, 9, 11]), sig_dims=2)
    assert shape == (5, 7, 9, 11)
    assert all(type(d) is int for d in Shape([5.0, 7], sig_dims=1))  # type: ignore[list-item]


def test_shape_survives_pickle_and_copy_with_its_sig_dims() -> None:
    shape = Shape((5, 7, 9, 11), sig_dims=3)
    for twin in (pickle.loads(pickle.dumps(shape)), copy.copy(shape), copy.deepcopy(shape)):
        assert twin == shape
        assert isinstance(twin, Shape)
        assert twin.sig_dims == 3
        assert twin.nav == (5,)


@pytest.mark.parametrize(
    ("dims", "sig_dims", "message"),
    [
        pytest.param(
            (5, 7, 9, 11), 5, r"sig_dims=5 does not fit a shape of rank 4: need 0 <= sig_dims <= 4", id="too-many"
        ),
        pytest.param((5, 7, 9, 11), -1, r"sig_dims=-1 does not fit", id="negative"),
        pytest.param((5,), 2, r"sig_dims=2 does not fit a shape of rank 1", id="rank-1"),
        pytest.param((5, -7, 9), 1, r"shape \(5, -7, 9\) has a negative axis length", id="negative-axis"),
    ],
)
def test_an_impossible_shape_is_a_value_error(dims: tuple[int, ...], sig_dims: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shape(dims, sig_dims=sig_dims)


def test_nav_and_sig_only_shapes_exist_as_in_libertem_and_print_as_tuples() -> None:
    nav_only = Shape((5, 7), sig_dims=0)
    sig_only = Shape((9, 11), sig_dims=2)
    assert (nav_only.nav, nav_only.sig, nav_only.nav_dims) == ((5, 7), (), 2)
    assert (sig_only.nav, sig_only.sig, sig_only.nav_dims) == ((), (9, 11), 0)
    assert repr(nav_only) == "(5, 7)"
    assert repr(Shape((5, 7, 9, 11), sig_dims=2).sig) == "(9, 11)"
    assert Shape((), sig_dims=0).size == 0
