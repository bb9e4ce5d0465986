"""Shared-frame files (``gpuudf.datasets.shared``): what the sweep of a dead owner's files removes, and leaves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from gpuudf.datasets.shared import SharedFrames, remove_files_of, remove_orphaned_files


def namespace() -> str:
    return str(Path("/proc/self/ns/pid").stat().st_ino) if Path("/proc/self/ns/pid").exists() else "0"


def dead_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as process:
        process.wait()
    return process.pid


def test_a_file_is_named_after_its_owner_and_its_pid_namespace() -> None:
    shared = SharedFrames.copy_of(np.ones((2, 3, 4), dtype=np.float32))
    assert Path(shared.path).name.startswith(f"gpuudf-{os.getpid()}-{namespace()}-")


def test_the_sweep_removes_files_of_dead_owners_of_this_namespace_only(tmp_path: Path) -> None:
    dead = dead_pid()
    orphan = tmp_path / f"gpuudf-{dead}-{namespace()}-abc"
    other_namespace = tmp_path / f"gpuudf-{dead}-1-abc"
    alive = tmp_path / f"gpuudf-{os.getppid()}-{namespace()}-abc"
    strange = [
        tmp_path / name for name in ("gpuudf-²-1-x", f"gpuudf-{'9' * 40}-{namespace()}-x", "gpuudf-abc", "other")
    ]
    for path in (orphan, other_namespace, alive, *strange):
        path.write_bytes(b"frames")
    assert remove_orphaned_files(str(tmp_path)) == 1
    assert not orphan.exists()
    assert all(p.exists() for p in (other_namespace, alive, *strange))


def test_a_file_that_cannot_be_removed_does_not_stop_the_sweep(tmp_path: Path) -> None:
    dead = dead_pid()
    blocked = tmp_path / f"gpuudf-{dead}-{namespace()}-a"
    blocked.mkdir()  # unlink fails on a directory
    removable = [tmp_path / f"gpuudf-{dead}-{namespace()}-{i}" for i in range(3)]
    for path in removable:
        path.write_bytes(b"frames")
    assert remove_files_of(dead, str(tmp_path)) == 3
    assert not any(p.exists() for p in removable)
