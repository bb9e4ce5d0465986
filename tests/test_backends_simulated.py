"""The simulated device refuses what CuPy refuses and counts every transfer."""

from __future__ import annotations

import numpy as np
import pytest

from gpuudf.backends.simulated import (
    TRANSFERS,
    SimulatedArray,
    SimulatedArrayModule,
    SimulatedOutOfMemoryError,
)


@pytest.fixture
def xp() -> SimulatedArrayModule:
    TRANSFERS.reset()
    return SimulatedArrayModule()


def test_device_arrays_refuse_implicit_conversion_to_numpy(xp: SimulatedArrayModule) -> None:
    a = xp.zeros((3, 4))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.zeros(4)[:] = a[0]


def test_mixing_device_and_host_arrays_in_one_operation_is_refused(xp: SimulatedArrayModule) -> None:
    a = xp.ones((3, 4))
    with pytest.raises(TypeError, match="Unsupported type"):
        _ = a + np.ones((3, 4))
    with pytest.raises(TypeError, match="Unsupported type"):
        np.maximum(np.ones((3, 4)), a)
    with pytest.raises(TypeError, match="Unsupported type"):
        xp.maximum(a, np.ones((3, 4)))


def test_host_array_fills_only_a_whole_device_array(xp: SimulatedArrayModule) -> None:
    a = xp.zeros((3, 4))
    a[:] = np.ones((3, 4))
    assert TRANSFERS.h2d_copies == 1
    with pytest.raises(ValueError, match=r"non-scalar numpy\.ndarray"):
        a[1:] = np.ones((2, 4))
    a[1:] = 5.0  # scalars are fine
    assert float(a.sum()) == 4 + 5 * 8


def test_reductions_stay_on_the_device_as_zero_dimensional_arrays(xp: SimulatedArrayModule) -> None:
    a = xp.arange(6).reshape(2, 3)
    total = xp.sum(a)
    assert isinstance(total, SimulatedArray)
    assert total.shape == ()
    assert isinstance(np.sum(a, axis=0), SimulatedArray)
    assert float(total) == 15
    assert a.max().item() == 5


def test_explicit_transfers_are_counted_in_bytes(xp: SimulatedArrayModule) -> None:
    host = np.ones((10, 10), dtype=np.float32)
    device = xp.asarray(host)
    back = xp.asnumpy(device * 2)
    assert isinstance(back, np.ndarray)
    assert back.sum() == 200
    assert (TRANSFERS.h2d_copies, TRANSFERS.h2d_nbytes) == (1, 400)
    assert (TRANSFERS.d2h_copies, TRANSFERS.d2h_nbytes) == (1, 400)


def test_submodules_and_dtypes_are_reachable_like_cupy(xp: SimulatedArrayModule) -> None:
    a = xp.ones((4, 4), dtype=xp.float32)
    spectrum = xp.fft.fft2(a)
    assert isinstance(spectrum, SimulatedArray)
    assert spectrum.dtype.kind == "c"
    assert xp.get_array_module(a) is xp
    y, x = xp.ogrid[:4, :4]
    assert isinstance(y, SimulatedArray)
    assert float(xp.sum(a * (y + x))) == 48
    assert xp.get_array_module(np.ones(2)) is np


@pytest.mark.parametrize("dtype", ["U3", "S2", object, "datetime64[s]", [("a", "f4")]])
def test_dtypes_cupy_has_no_arrays_of_are_refused(xp: SimulatedArrayModule, dtype: object) -> None:
    with pytest.raises(ValueError, match="Unsupported dtype"):
        xp.zeros(3, dtype=dtype)


def test_allocations_above_the_limit_raise_out_of_memory() -> None:
    xp = SimulatedArrayModule(max_alloc_nbytes=1000)
    xp.zeros(100, dtype=np.uint8)
    with pytest.raises(SimulatedOutOfMemoryError):
        xp.zeros(1001, dtype=np.uint8)
