"""What the landing-files sensor asks for, decided without I/O: which files are new, which runs
their rows need, which files are unreadable and which are still being written.

A batch file re-materializes exactly the 10-minute windows its rows fall in, as one run per stretch
of consecutive windows; new label files go to one ``labels`` run together. The sensor reads the
directory and the ledger, calls :func:`plan_landing`, and acts on the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fraudstream.ingest.landing import (
    LABELS_KIND,
    SUFFIXES,
    TRANSACTIONS_KIND,
    LandingFile,
    UnreadableFile,
)
from fraudstream.windows import window_of_key

KINDS = (LABELS_KIND, TRANSACTIONS_KIND)


@dataclass(frozen=True)
class BatchFileRuns:
    """A new batch file, the windows its rows fall in, and the runs that ingest them."""

    file: LandingFile
    windows: list[str]

    def runs(self) -> list[list[str]]:
        """The windows as stretches of consecutive ones: one run each."""
        return consecutive_stretches(self.windows)

    def run_key(self, stretch: list[str]) -> str:
        return f"batch-file:{self.file.sha256[:16]}:{stretch[0]}"


@dataclass(frozen=True)
class LandingPlan:
    """Everything one tick of the landing-files sensor does."""

    label_files: list[LandingFile] = field(default_factory=list)
    batch_files: list[BatchFileRuns] = field(default_factory=list)
    unreadable: list[tuple[LandingFile, str]] = field(default_factory=list)
    pending: list[Path] = field(default_factory=list)

    @property
    def requests_runs(self) -> bool:
        return bool(self.label_files or self.batch_files)

    def labels_run_key(self) -> str:
        return "labels-files:" + ",".join(f.sha256[:16] for f in self.label_files)

    def skip_reason(self) -> str:
        """Why nothing was requested (meaningful when ``requests_runs`` is false)."""
        notes = [f"quarantined {file.path.name}" for file, _ in self.unreadable]
        reason = "; ".join(notes) if notes else "no new landing files"
        waiting = f"; {len(self.pending)} file(s) still being written" if self.pending else ""
        return reason + waiting


def kind_of(root: Path, path: Path) -> str | None:
    """``labels`` or ``transactions`` for a data file in that sub-directory, else None."""
    if path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
        return None
    for kind in KINDS:
        if path.parent == root / kind:
            return kind
    return None


def plan_landing(
    root: Path,
    ready: Iterable[LandingFile],
    pending: Iterable[Path],
    processed: set[str],
    windows_of: Callable[[LandingFile], list[str]],
) -> LandingPlan:
    """The runs for the settled files under ``root`` whose content (SHA-256) was never
    processed; ``windows_of`` names the windows a batch file's rows fall in and raises
    :class:`UnreadableFile` for a file that cannot be read."""
    plan = LandingPlan(pending=sorted(pending))
    for file in sorted(ready, key=lambda f: f.path):
        kind = kind_of(root, file.path)
        if kind is None or file.sha256 in processed:
            continue
        if kind == LABELS_KIND:
            plan.label_files.append(file)
            continue
        try:
            plan.batch_files.append(BatchFileRuns(file, windows_of(file)))
        except UnreadableFile as error:
            plan.unreadable.append((file, str(error)))
    return plan


def consecutive_stretches(keys: Iterable[str]) -> list[list[str]]:
    """Partition keys grouped into stretches of consecutive 10-minute windows, in order."""
    stretches: list[list[str]] = []
    for key in keys:
        if stretches and window_of_key(stretches[-1][-1]).end == window_of_key(key).start:
            stretches[-1].append(key)
        else:
            stretches.append([key])
    return stretches
