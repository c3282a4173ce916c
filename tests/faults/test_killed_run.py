"""A run's process killed (`kill -9`) on the running demo: run monitoring marks the run failed
and the daemon retries it; the one-at-a-time ingestion queue never waits behind a dead run."""

import os
import signal

import dagster as dg
import pytest

from tests.helpers.demo import Demo
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(900)]


def test_a_run_whose_process_is_killed_is_failed_by_monitoring_and_retried(demo: Demo) -> None:
    instance = dg.DagsterInstance.from_config(str(demo.state / "dagster"))
    window = sorted(demo.store.documents_per_window("transactions"))[0]
    # Features start a Spark session: the run stays STARTED long enough to be killed mid-way.
    run_id = demo.api.launch_run(
        ["transaction_features"], window, tags={"dagster/max_retries": "1"}
    )

    def worker_pid() -> int | None:
        for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            if event.message.startswith("Started process for run"):
                return int(str(event.dagster_event.engine_event_data.metadata["pid"].value))
        return None

    wait_for(lambda: worker_pid() is not None, 120, "the run's worker started", poll=0.5)
    os.kill(worker_pid(), signal.SIGKILL)

    def status() -> dg.DagsterRunStatus:
        return instance.get_run_by_id(run_id).status

    wait_for(lambda: status() == dg.DagsterRunStatus.FAILURE, 180, "the dead run failed", poll=5)
    retried = dg.RunsFilter(tags={"dagster/parent_run_id": run_id})

    def retry_succeeded() -> bool:
        runs = instance.get_runs(filters=retried)
        return any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)

    wait_for(retry_succeeded, 300, "the retry of the killed run succeeded", poll=5)
    instance.dispose()
