"""What the command line shows: one console for output, one for errors, and the steps every
command that starts the stack shares (the doctor's checks, a spinner while services start)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from fraudstream.config import StackRecord
from fraudstream.tooling import doctor
from fraudstream.tooling.stack.embedded import EmbeddedStack

console = Console(highlight=False, soft_wrap=True)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def start_stack(stack: EmbeddedStack, *, dagster: bool, postgres: bool = False) -> StackRecord:
    """``stack.up`` under a spinner naming the service being started (a line per step when the
    output is not a terminal)."""
    if not console.is_terminal:
        return stack.up(
            dagster=dagster,
            postgres=postgres,
            on_step=lambda step: console.print(f"starting: {step}"),
        )
    with console.status("starting the stack ...") as spinner:
        return stack.up(
            dagster=dagster,
            postgres=postgres,
            on_step=lambda step: spinner.update(f"starting: {step} ..."),
        )


def prerequisites_met(state_dir: Path, *, spark: bool) -> bool:
    """The doctor's required checks; each failed one printed on a line with what to do."""
    failed = doctor.blocking(doctor.diagnose(state_dir, spark=spark))
    for finding in failed:
        error_console.print(
            f"[red]missing[/] {escape(finding.name)}: {escape(finding.detail)} — "
            f"{escape(finding.fix)}",
            soft_wrap=True,
        )
    if failed:
        error_console.print("`fraudstream doctor` checks everything again.")
    return not failed
