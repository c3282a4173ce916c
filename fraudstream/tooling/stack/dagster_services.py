"""The Dagster webserver and daemon of the embedded stack, on the state dir's instance.

The instance lives in ``<state dir>/dagster`` (``dagster.yaml`` written here: queued runs, run
retries, no telemetry), its storage in SQLite files beside it or, when asked, in the stack's
PostgreSQL server (``DAGSTER_POSTGRES_*`` in the processes' environment). Both processes load the
code location through the repository's ``workspace.yaml`` with the stack's ``FRAUDSTREAM_*``
settings in their environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import requests

from fraudstream.config import ServiceUnavailable, webserver_host
from fraudstream.tooling.stack.processes import free_port, spawn, wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]  # fraudstream/tooling/stack/ -> the clone
WEBSERVER_PORT = 3000
START_TIMEOUT = 120.0
# Concurrency pools and their limits, set on the instance at start: fraud_models runs in
# "training", one at a time (two training runs started together would both make a full fit).
POOL_LIMITS = {"training": 1}

INSTANCE_YAML = """\
# Written by `fraudstream up`: the embedded stack's Dagster instance (SQLite under this folder).
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
    dequeue_interval_seconds: 1  # a queued run starts within a second of a free slot
    tag_concurrency_limits:
      - key: "fraudstream/trigger"
        value: "kafka_lag_sensor"
        limit: 1
run_retries:
  enabled: true
  max_retries: 0  # per run: the sensors tag their runs with dagster/max_retries
# A run whose worker process died is failed by run monitoring (the launcher checks its pid), and
# retried when its tags ask for it: one dead run never holds the ingestion queue.
run_launcher:
  module: fraudstream.tooling.stack.run_launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 20
  max_resume_run_attempts: 0
telemetry:
  enabled: false
"""


POSTGRES_STORAGE_YAML = """\
storage:
  postgres:
    postgres_db:
      hostname: {env: DAGSTER_POSTGRES_HOST}
      port: {env: DAGSTER_POSTGRES_PORT}
      db_name: {env: DAGSTER_POSTGRES_DB}
      username: {env: DAGSTER_POSTGRES_USER}
      password: {env: DAGSTER_POSTGRES_PASSWORD}
"""


def dagster_home(state_dir: Path, *, postgres: bool = False) -> Path:
    home = state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML + (POSTGRES_STORAGE_YAML if postgres else ""))
    return home


def webserver_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/server_info", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_dagster(
    state_dir: Path,
    env: dict[str, str],
    processes: dict[str, int],
    preferred_port: bool,
    *,
    postgres: bool = False,
    port: int | None = None,
    on_step: Callable[[str], None] = lambda step: None,
) -> str:
    """Start the daemon and the webserver (on 127.0.0.1 unless FRAUDSTREAM_WEBSERVER_HOST says
    otherwise, on ``port`` when given); returns the UI's URL once it answers. With ``postgres``,
    the instance's storage is the server described by the ``DAGSTER_POSTGRES_*`` entries of
    ``env``."""
    workspace = REPO_ROOT / "workspace.yaml"
    if not workspace.exists():
        raise ServiceUnavailable(
            f"{workspace} is missing: Dagster runs from a clone of the fraudstream repository "
            "(pip install -e .); use `fraudstream up --no-dagster` otherwise."
        )
    home = dagster_home(state_dir, postgres=postgres)
    env = {**env, "DAGSTER_HOME": str(home), "FRAUDSTREAM_STATE_DIR": str(state_dir)}
    logs = state_dir / "logs"
    bin_dir = Path(sys.executable).parent
    # Create the instance's storage once, before two processes would race to (their concurrent
    # migrations leave SQLite with two schema heads and the code location unloadable).
    commands = [["instance", "migrate"]] + [
        ["instance", "concurrency", "set", pool, str(limit)] for pool, limit in POOL_LIMITS.items()
    ]
    on_step("Dagster instance: creating or migrating its storage")
    for command in commands:
        done = subprocess.run(
            [str(bin_dir / "dagster"), *command],
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ServiceUnavailable(
                f"could not prepare the Dagster instance in {home} (`dagster {' '.join(command)}`):"
                f" {done.stderr[-500:]}"
            )
    on_step("Dagster daemon and webserver (loading the code location, up to a minute)")
    processes["dagster-daemon"] = spawn(
        [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
        logs / "dagster-daemon.log",
        env=env,
        cwd=REPO_ROOT,
    )
    port = port or free_port(WEBSERVER_PORT if preferred_port else None)
    processes["dagster-webserver"] = spawn(
        [str(bin_dir / "dagster-webserver"), "-h", webserver_host(), "-p", str(port), "-w",
         str(workspace)],
        logs / "dagster-webserver.log",
        env=env,
        cwd=REPO_ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: webserver_answers(url), START_TIMEOUT, "Dagster webserver", logs /
               "dagster-webserver.log")  # fmt: skip
    return url
