"""`fraudstream doctor` and the command line's error handling: every check with what to do, and
one line — never a traceback — for any failure a user can cause."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fraudstream.tooling import cli, doctor
from fraudstream.tooling.cli import main


def fake_java(tmp_path: Path, version_line: str) -> Path:
    """A JAVA_HOME whose bin/java prints ``version_line`` as `java -version` does (stderr)."""
    home = tmp_path / f"jdk-{abs(hash(version_line))}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return home


@pytest.mark.parametrize(
    ("line", "ok", "found"),
    [
        ('openjdk version "17.0.9" 2023-10-17', True, "Java 17"),
        ('openjdk version "21" 2023-09-19', True, "Java 21"),
        ('java version "1.8.0_392"', False, "Java 8"),
    ],
)
def test_java_is_found_by_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, ok: bool, found: str
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, line)))
    finding = doctor.java()
    assert (finding.ok, finding.detail.split(" (")[0]) == (ok, found)
    assert ("Java 17 or newer" in finding.fix) != ok


def test_the_other_prerequisites_say_what_to_do() -> None:
    assert not doctor.python_version((3, 10, 4)).ok
    assert doctor.python_version((3, 11, 7)).ok
    mac = doctor.machine("Darwin", "arm64")
    assert not mac.ok and "FRAUDSTREAM_MONGO_URI" in mac.fix
    assert doctor.machine("Linux", "x86_64").ok
    full = doctor.free_disk(Path("/"), minimum=1 << 60)
    assert not full.ok and "--state-dir" in full.fix


def test_doctor_on_this_machine_is_ready(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "Java (Spark)" in out and "ready" in out


def without_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH holding only what the doctor needs besides Java (an empty directory)."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_without_java_doctor_and_up_say_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    without_java(monkeypatch, tmp_path)
    assert main(["doctor", "--state-dir", str(tmp_path / "state")]) == 1
    out = capsys.readouterr().out
    [java_line] = [line for line in out.splitlines() if "Java (Spark)" in line]
    assert "FAIL" in java_line and "not found" in java_line
    assert main(["up", "--state-dir", str(tmp_path / "state")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("missing Java (Spark): not found — Spark needs Java 17")
    assert not (tmp_path / "state" / "stack.json").exists()  # nothing was started


def test_expected_errors_are_one_line_and_bugs_leave_their_traceback_in_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.csv"
    assert main(["simulate", "--from-csv", str(missing), "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip().startswith(f"fraudstream simulate: --from-csv {missing}: no such file (")
    assert len(err.strip().splitlines()) == 1

    def broken(args: object) -> int:
        raise KeyError("stack.json [processes]")

    monkeypatch.setattr(cli, "cmd_env", broken)
    assert main(["env", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "unexpected KeyError" in err and "[processes]" in err
    log = tmp_path / "logs" / "cli-errors.log"
    assert "Traceback" in log.read_text() and "stack.json [processes]" in log.read_text()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("fraudstream ")
