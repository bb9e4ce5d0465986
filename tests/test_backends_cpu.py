"""NumpyBackend.iter_tiles: one reused, growing, page-aligned buffer for file tiles; views of in-memory sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gpuudf.backends.backend import PAGE_NBYTES
from gpuudf.backends.cpu import NumpyBackend
from gpuudf.datasets import files as files_module
from gpuudf.datasets import load
from gpuudf.shape import Positions

FRAME = (3, 4)
DTYPE = np.dtype("float32")


class Reader:
    """A FrameReader over ``frames`` that logs each call: positions, the ``out`` it got and what it returned."""

    def __init__(self, frames: np.ndarray[Any, Any]) -> None:
        self.frames = frames
        self.calls: list[tuple[Positions, np.ndarray[Any, Any] | None, bool, np.ndarray[Any, Any]]] = []

    def __call__(
        self, positions: Positions, out: np.ndarray[Any, Any] | None, /, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        index = slice(positions.start, positions.stop) if isinstance(positions, range) else positions
        if out is None:
            result = self.frames[index]  # a view for a range, as a memory dataset's
        else:
            out[...] = self.frames[index]
            result = out
        self.calls.append((positions, out, prefer_view, result))
        return result


def address(array: np.ndarray[Any, Any]) -> int:
    return int(array.__array_interface__["data"][0])


def frames(count: int) -> np.ndarray[Any, Any]:
    return np.arange(count * 12, dtype=DTYPE).reshape(count, *FRAME)


def test_tiles_are_read_into_one_buffer_reused_across_tiles_and_across_calls() -> None:
    backend = NumpyBackend()
    reader = Reader(frames(20))
    tiles: list[Positions] = [range(4), range(4, 8), range(8, 10)]
    first = [address(tile) for tile in backend.iter_tiles(reader, tiles, FRAME, DTYPE)]
    assert len(set(first)) == 1
    again = [address(tile) for tile in backend.iter_tiles(reader, [range(10, 13), np.array([1, 5])], FRAME, DTYPE)]
    assert set(again) == set(first)
    # every out the reader got was a view of that same buffer
    assert {address(out) for _, out, _, _ in reader.calls if out is not None} == set(first)


def test_each_tile_is_what_the_reader_returned_for_its_positions() -> None:
    backend = NumpyBackend()
    data = frames(20)
    reader = Reader(data)
    tiles: list[Positions] = [range(4), np.array([5, 9, 11]), range(19, 20)]
    seen = []
    for positions, tile in zip(tiles, backend.iter_tiles(reader, tiles, FRAME, DTYPE), strict=True):
        assert tile is reader.calls[-1][3]
        assert tile.shape == (len(positions), *FRAME)
        assert tile.dtype == DTYPE
        assert_array_equal(tile, data[positions])
        seen.append(tile.copy())
    assert [len(call[0]) for call in reader.calls] == [4, 3, 1]
    assert all(out is not None and prefer_view for _, out, prefer_view, _ in reader.calls)
    assert_array_equal(np.concatenate(seen), data[[0, 1, 2, 3, 5, 9, 11, 19]])


def test_a_tile_is_valid_until_the_next_one_is_requested() -> None:
    backend = NumpyBackend()
    data = frames(8)
    tiles = iter(backend.iter_tiles(Reader(data), [range(2), range(2, 4)], FRAME, DTYPE))
    first = next(tiles)
    assert_array_equal(first, data[0:2])
    second = next(tiles)
    assert np.shares_memory(first, second)
    assert_array_equal(first, data[2:4])  # the buffer now holds the second tile


def test_the_buffer_grows_when_a_larger_tile_comes_and_stays_large() -> None:
    backend = NumpyBackend()
    data = frames(40)
    reader = Reader(data)
    list(backend.iter_tiles(reader, [range(2)], FRAME, DTYPE))
    small = backend._tile_buffer.nbytes
    assert small >= 2 * 12 * DTYPE.itemsize
    tiles = list(backend.iter_tiles(reader, [range(3), range(3, 30)], FRAME, DTYPE))
    assert len(tiles) == 2
    assert backend._tile_buffer.nbytes >= 27 * 12 * DTYPE.itemsize > small
    assert_array_equal(tiles[1], data[3:30])
    large = address(tiles[1])
    # a later, smaller run keeps the large buffer
    assert [address(t) for t in backend.iter_tiles(reader, [range(1, 2)], FRAME, DTYPE)] == [large]
    # another dtype or frame shape fits the same bytes
    wide = list(backend.iter_tiles(Reader(data.astype(np.float64)), [range(10)], FRAME, np.dtype("float64")))
    assert address(wide[0]) == large
    assert wide[0].dtype == np.float64
    assert_array_equal(wide[0], data[0:10])


def test_the_tile_buffer_starts_on_a_page_boundary() -> None:
    backend = NumpyBackend()
    for count in (1, 3, 1000):
        tile = next(iter(backend.iter_tiles(Reader(frames(count)), [range(count)], FRAME, DTYPE)))
        assert address(tile) % PAGE_NBYTES == 0


def test_no_tiles_yield_nothing_and_allocate_nothing() -> None:
    backend = NumpyBackend()
    reader = Reader(frames(3))
    assert list(backend.iter_tiles(reader, [], FRAME, DTYPE)) == []
    assert reader.calls == []
    assert backend._tile_buffer.nbytes == 0


def test_with_a_source_array_tiles_are_the_readers_own_views_and_no_buffer_is_made() -> None:
    backend = NumpyBackend()
    source = frames(10)
    source.flags.writeable = False
    reader = Reader(source)
    tiles: list[Positions] = [range(4), range(4, 10), np.array([2, 3])]
    got = list(backend.iter_tiles(reader, tiles, FRAME, DTYPE, source=source))
    assert [call[1] for call in reader.calls] == [None, None, None]
    assert all(tile is call[3] for tile, call in zip(got, reader.calls, strict=True))
    assert np.shares_memory(got[0], source)
    assert np.shares_memory(got[1], source)
    assert_array_equal(got[2], source[[2, 3]])
    assert backend._tile_buffer.nbytes == 0


@pytest.mark.parametrize("memory_maps", [False, True], ids=["preadv", "memory-maps"])
def test_a_raw_files_tiles_equal_its_frames_whether_read_into_the_buffer_or_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_maps: bool
) -> None:
    monkeypatch.setattr(files_module, "_MEMORY_MAPS", [memory_maps])
    data = np.arange(35 * 99, dtype=np.uint16).reshape(35, 9, 11)
    data.tofile(tmp_path / "data.raw")
    ds = load("raw", path=tmp_path / "data.raw", nav_shape=(5, 7), sig_shape=(9, 11), dtype="uint16")
    backend = NumpyBackend()
    tiles: list[Positions] = [range(8), range(8, 16), np.array([16, 18, 20]), range(21, 35)]
    got = [tile.copy() for tile in backend.iter_tiles(ds.read_frames, tiles, (9, 11), ds.dtype)]
    for positions, tile in zip(tiles, got, strict=True):
        assert_array_equal(tile, data[positions])
    views = list(backend.iter_tiles(ds.read_frames, [range(8)], (9, 11), ds.dtype))
    in_buffer = np.shares_memory(views[0], backend._tile_buffer)
    assert in_buffer is not memory_maps  # mapped views where maps are allowed, the buffer elsewhere
