"""The landing-files sensor's decisions as a pure plan: new files, runs, unreadable, pending."""

from pathlib import Path

import pytest

from fraudstream.ingest.landing import LandingFile, OutsideLanding, UnreadableFile, confined
from fraudstream.ingest.landing_plan import consecutive_stretches, kind_of, plan_landing

ROOT = Path("/landing")


def landed(relative: str, digest: str) -> LandingFile:
    return LandingFile(ROOT / relative, digest * 64, 100)


def windows_by_name(windows: dict[str, list[str]]):
    def windows_of(file: LandingFile) -> list[str]:
        found = windows[file.path.name]
        if isinstance(found, str):
            raise UnreadableFile(found)
        return found

    return windows_of


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("labels/a.csv", "labels"),
        ("transactions/b.jsonl", "transactions"),
        ("transactions/B.CSV", "transactions"),
        ("transactions/.partial.csv", None),
        ("transactions/notes.txt", None),
        ("quarantine/transactions/c.csv", None),
        ("d.csv", None),
    ],
)
def test_only_data_files_in_a_kind_directory_count(relative: str, kind: str | None) -> None:
    assert kind_of(ROOT, ROOT / relative) == kind


def test_a_batch_file_runs_once_per_stretch_of_consecutive_windows() -> None:
    keys = ["2026-11-23-10:00", "2026-11-23-10:10", "2026-11-23-10:40", "2026-11-23-11:00",
            "2026-11-23-11:10"]  # fmt: skip
    assert consecutive_stretches(keys) == [keys[:2], keys[2:3], keys[3:]]
    assert consecutive_stretches([]) == []


def test_new_files_are_planned_and_processed_ones_are_not() -> None:
    batch, old, label = (
        landed("transactions/new.csv", "a"),
        landed("transactions/old.csv", "b"),
        landed("labels/l.csv", "c"),
    )
    windows = windows_by_name({"new.csv": ["2026-11-23-10:00", "2026-11-23-10:10"]})
    plan = plan_landing(ROOT, [batch, old, label], [], {old.sha256}, windows)

    assert plan.label_files == [label]
    assert [b.file for b in plan.batch_files] == [batch]
    assert plan.batch_files[0].runs() == [["2026-11-23-10:00", "2026-11-23-10:10"]]
    assert (
        plan.batch_files[0].run_key(["2026-11-23-10:00"])
        == f"batch-file:{'a' * 16}:2026-11-23-10:00"
    )
    assert plan.labels_run_key() == f"labels-files:{'c' * 16}"
    assert plan.requests_runs


def test_an_unreadable_file_is_set_aside_with_its_reason_and_the_rest_go_on() -> None:
    bad, good = landed("transactions/bad.csv", "d"), landed("transactions/good.csv", "e")
    windows = windows_by_name(
        {"bad.csv": "no tx_datetime column", "good.csv": ["2026-11-23-10:00"]}
    )
    plan = plan_landing(ROOT, [bad, good], [], set(), windows)

    assert plan.unreadable == [(bad, "no tx_datetime column")]
    assert [b.file for b in plan.batch_files] == [good]


def test_nothing_new_says_why_including_files_still_being_written() -> None:
    bad = landed("transactions/bad.csv", "f")
    plan = plan_landing(
        ROOT, [bad], [ROOT / "transactions/writing.csv"], set(), windows_by_name({"bad.csv": "x"})
    )

    assert not plan.requests_runs
    assert plan.skip_reason() == "quarantined bad.csv; 1 file(s) still being written"
    assert plan_landing(ROOT, [], [], set(), windows_by_name({})).skip_reason() == (
        "no new landing files"
    )


def test_run_configs_may_only_name_files_inside_the_landing_directory(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "labels"
    landing.mkdir(parents=True)
    inside = landing / "a.csv"
    inside.write_text("transaction_id,tx_fraud\n")
    secret = tmp_path / "secret.csv"
    secret.write_text("x")
    (landing / "link.csv").symlink_to(secret)

    assert confined([str(inside)], landing) == [inside]
    for escape in (
        str(secret),
        str(landing / ".." / ".." / "secret.csv"),
        str(landing / "link.csv"),
    ):
        with pytest.raises(OutsideLanding, match="not inside"):
            confined([escape], landing)
