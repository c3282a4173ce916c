"""The embedded instance's run launcher: Dagster's default one, plus telling a dead run worker.

Run monitoring asks a launcher whether a run's worker is alive; the default launcher cannot say,
so a run whose process was killed stayed STARTED forever and held the ingestion queue. Here the
worker's pid (the engine event Dagster writes when the process starts) is checked on this
machine: a vanished worker is reported failed, monitoring fails the run, and the run retries the
sensors asked for (``dagster/max_retries``) launch it again.
"""

from __future__ import annotations

from dagster import DagsterEventType, DagsterRun
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

from fraudstream.tooling.stack.processes import is_running

STARTED_PROCESS = "Started process for run"


class LocalRunLauncher(DefaultRunLauncher):
    """Launches runs like ``DefaultRunLauncher`` and reports a run worker that died."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None or is_running(pid):  # not started yet, or alive
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker process {pid} is gone (killed or crashed) while the run was STARTED",
        )

    def _worker_pid(self, run: DagsterRun) -> int | None:
        events = self._instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        for event in reversed(events):
            if event.message.startswith(STARTED_PROCESS) and event.dagster_event is not None:
                metadata = event.dagster_event.engine_event_data.metadata
                if "pid" in metadata:
                    return int(str(metadata["pid"].value))
        return None
