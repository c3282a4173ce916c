"""A real PostgreSQL server on this machine, for Dagster's storage: ``initdb`` and ``pg_ctl`` from
the machine's PostgreSQL binaries (PATH, or Debian's ``/usr/lib/postgresql/<version>/bin``).

Used by the tests of the Postgres-backed instance and for trying ``docker/dagster.yaml`` without
Docker (docs/deploy.md). The server listens on 127.0.0.1 only and requires a password.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg2
from psycopg2.extensions import connection as Connection

from fraudstream.stack.processes import free_port

SERVER_USER = "postgres"  # initdb refuses to run as root; as root, the server runs as this user


def postgres_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (newest Debian version first), or None."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


@dataclass(frozen=True)
class PostgresServer:
    """A running server and the database created for Dagster."""

    data_dir: Path
    bin_dir: Path
    port: int
    user: str
    password: str
    database: str

    def dagster_env(self) -> dict[str, str]:
        """The variables ``docker/dagster.yaml`` reads its storage settings from."""
        return {
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_DB": self.database,
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
        }

    def connect(self) -> Connection:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password,
            dbname=self.database,
        )  # fmt: skip

    def create_database(self, name: str) -> PostgresServer:
        """A new, empty database on this server (one per test, one per deployment)."""
        admin = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password,
            dbname="postgres",
        )  # fmt: skip
        admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        return replace(self, database=name)

    def stop(self) -> None:
        _run(self.bin_dir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop")


def start_postgres(home: Path, *, user: str, password: str, database: str) -> PostgresServer:
    """Initialise a cluster in ``home/data`` and start it on a free loopback port. As root, the
    server runs as the ``postgres`` user and ``home`` is handed to it (its parents must be
    traversable by that user, as ``/tmp`` is)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(
            "PostgreSQL's initdb and pg_ctl were not found (PATH, /usr/lib/postgresql/*/bin): "
            "install the server package (Debian: apt-get install postgresql)."
        )
    home.mkdir(parents=True, exist_ok=True)
    data_dir, password_file = home / "data", home / "password"
    password_file.write_text(password)
    if os.geteuid() == 0:
        server = pwd.getpwnam(SERVER_USER)
        for path in (home, password_file):
            os.chown(path, server.pw_uid, server.pw_gid)
    try:
        _run(bin_dir / "initdb", "-D", data_dir, "-U", user, f"--pwfile={password_file}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions")  # fmt: skip
    finally:
        password_file.unlink()
    port = free_port(None)
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={home}"
    _run(bin_dir / "pg_ctl", "-D", data_dir, "-o", options, "-l", home / "server.log",
         "-w", "start")  # fmt: skip
    return PostgresServer(data_dir, bin_dir, port, user, password, "postgres").create_database(
        database
    )


def _run(*argv: object) -> None:
    """Run a PostgreSQL tool, as the server user when we are root."""
    command = [str(a) for a in argv]
    if os.geteuid() == 0:
        command = ["runuser", "-u", SERVER_USER, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(str(argv[0])).name} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-800:]}"
        )
