"""The stack's Spark Connect server: one long-lived Spark driver that feature runs connect to.

A run that starts its own Spark pays a JVM start and cold Python workers (~9 s here) before any
work; through the server it pays a client connection (~1 s). The server runs the same settings
as a run's own session (``config.spark_settings``: master, driver memory, UTC, Arrow) and its
Python workers run this interpreter, so the tasks import the installed ``fraudstream``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pyspark

from fraudstream import config

CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
SPARK_HOME = Path(pyspark.__file__).parent
START_TIMEOUT = 120.0


def server_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    """``spark-submit`` of the Connect server on ``host:port`` with the runs' settings."""
    settings = config.spark_settings(app_name="fraudstream-connect")
    argv = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--class", CONNECT_CLASS,
        "--master", settings.pop("spark.master"),
        "--driver-memory", settings.pop("spark.driver.memory"),
    ]  # fmt: skip
    settings |= {
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        # Sessions share the server's Python workers (runs upload no artifacts): a run's first
        # task does not start and import a new worker.
        "spark.sql.artifact.isolation.enabled": "false",
        "spark.ui.enabled": "false",
    }
    for key, value in settings.items():
        argv += ["--conf", f"{key}={value}"]
    return argv


def server_env() -> dict[str, str]:
    """Spark's home (the pyspark wheel) and this interpreter for the Python workers."""
    return {"SPARK_HOME": str(SPARK_HOME), "PYSPARK_PYTHON": sys.executable}


def main() -> None:
    """``python -m fraudstream.tooling.stack.spark_connect --host 0.0.0.0 --port 15002``: the
    server in the foreground, configured by ``FRAUDSTREAM_SPARK_*`` (the production stack's
    ``spark-connect`` service)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=15002)
    args = parser.parse_args()
    argv = server_argv(args.port, args.host)
    os.execve(argv[0], argv, {**os.environ, **server_env()})


if __name__ == "__main__":
    main()
