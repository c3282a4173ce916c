"""A real PostgreSQL server on this machine, for Dagster's storage: ``initdb`` and ``pg_ctl`` from
the machine's PostgreSQL binaries (PATH, or Debian's ``/usr/lib/postgresql/<version>/bin``).

The storage of ``fraudstream up --postgres``'s Dagster instance, and the server the tests of the
production instance (``docker/dagster.yaml``) run against. It listens on 127.0.0.1 only and
requires a password.
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

from fraudstream.tooling.stack.processes import free_port

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

    @property
    def pid(self) -> int:
        """The postmaster's pid (a process group of its own, as ``terminate`` needs)."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    @property
    def url(self) -> str:
        """Where Dagster's data is, without the password (fit for records and messages)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

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
    """Start the cluster in ``home/data`` on a free loopback port, initialising it (and creating
    ``database``) the first time. As root, the server runs as the ``postgres`` user and ``home``
    is handed to it (its parents must be traversable by that user, as ``/tmp`` is)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(
            "PostgreSQL's initdb and pg_ctl were not found (PATH, /usr/lib/postgresql/*/bin): "
            "install the server package (Debian: apt-get install postgresql)."
        )
    home.mkdir(parents=True, exist_ok=True)
    data_dir = home / "data"
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        _init_cluster(bin_dir, home, data_dir, user, password)
    port = free_port(None)
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={home}"
    _run(bin_dir / "pg_ctl", "-D", data_dir, "-o", options, "-l", home / "server.log",
         "-w", "start")  # fmt: skip
    server = PostgresServer(data_dir, bin_dir, port, user, password, "postgres")
    return server.create_database(database) if fresh else replace(server, database=database)


def _init_cluster(bin_dir: Path, home: Path, data_dir: Path, user: str, password: str) -> None:
    server = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None
    if server and (blocked := _first_untraversable(home, server)):
        raise PermissionError(
            f"PostgreSQL runs as the {SERVER_USER!r} user (initdb refuses root), which cannot "
            f"enter {blocked}: keep the state dir under a directory it can traverse (e.g. "
            "FRAUDSTREAM_STATE_DIR=/var/tmp/fraudstream), or run as a non-root user."
        )
    password_file = home / "password"
    password_file.write_text(password)
    if server:
        for path in (home, password_file):
            os.chown(path, server.pw_uid, server.pw_gid)
    try:
        _run(bin_dir / "initdb", "-D", data_dir, "-U", user, f"--pwfile={password_file}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions")  # fmt: skip
    finally:
        password_file.unlink()


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


def _first_untraversable(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory above ``path`` that ``user`` may not enter, if any."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for directory in reversed(path.parents):
        mode, owner, group = (st := directory.stat()).st_mode, st.st_uid, st.st_gid
        if owner == user.pw_uid:
            allowed = mode & 0o100
        elif group in groups:
            allowed = mode & 0o010
        else:
            allowed = mode & 0o001
        if not allowed:
            return directory
    return None
