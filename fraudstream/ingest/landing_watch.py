"""What changed in the landing directory between two sensor ticks (watchdog snapshots).

A watchdog ``DirectorySnapshot`` is kept in the sensor cursor as plain JSON (path → mode, inode,
device, size, mtime) and rebuilt from it through the snapshot's own ``stat`` / ``listdir`` hooks,
so ``DirectorySnapshotDiff`` compares the stored tree with the current one across daemon
restarts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.utils.dirsnapshot import (
    DirectorySnapshot,
    DirectorySnapshotDiff,
    EmptyDirectorySnapshot,
)

Snapshot = DirectorySnapshot | EmptyDirectorySnapshot


@dataclass(frozen=True)
class _Entry:
    name: str


def take(root: Path) -> Snapshot:
    return DirectorySnapshot(str(root)) if root.is_dir() else EmptyDirectorySnapshot()


def to_state(snapshot: Snapshot) -> dict[str, list[Any]]:
    """The snapshot as JSON-able data."""
    if isinstance(snapshot, EmptyDirectorySnapshot):
        return {}
    state = {}
    for path in snapshot.paths:
        st = snapshot.stat_info(path)
        state[str(path)] = [st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime]
    return state


def from_state(root: Path, state: dict[str, list[Any]]) -> Snapshot:
    """The snapshot ``to_state`` recorded, rebuilt without touching the disk."""
    if str(root) not in state:
        return EmptyDirectorySnapshot()

    def stat(path: str) -> os.stat_result:
        mode, ino, dev, size, mtime = state[path]
        return os.stat_result((mode, ino, dev, 1, 0, 0, size, mtime, mtime, mtime))

    def listdir(path: str | None) -> Iterator[_Entry]:
        prefix = f"{path}{os.sep}"
        for candidate in state:
            if candidate.startswith(prefix) and os.sep not in candidate[len(prefix) :]:
                yield _Entry(candidate[len(prefix) :])

    return DirectorySnapshot(str(root), stat=stat, listdir=listdir)  # type: ignore[arg-type]


def changed_files(previous: Snapshot, current: Snapshot) -> set[Path]:
    """Files created, modified or moved in since ``previous``."""
    diff = DirectorySnapshotDiff(previous, current)
    paths = {*diff.files_created, *diff.files_modified, *(dest for _, dest in diff.files_moved)}
    return {Path(os.fsdecode(p)) for p in paths}
