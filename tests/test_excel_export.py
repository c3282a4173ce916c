"""Excel export: sheets split at the row limit, a day's collections streamed from real MongoDB
in hour parts, a refresh writing only the hours that changed."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openpyxl import load_workbook

from fraudstream.reporting.excel_export import MANIFEST, SHEETS, export_day, write_workbook
from fraudstream.store.collections import ENSEMBLE_RESULTS
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.demo_watch import workbooks_current
from fraudstream.windows import TimeRange, partition_key

DAY = datetime(2026, 11, 10, tzinfo=UTC)


def sheet_rows(path: Path) -> dict[str, list[tuple]]:
    workbook = load_workbook(path, read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in workbook.worksheets}


def test_rows_continue_on_a_new_sheet_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "numbers.xlsx"
    written, sheets = write_workbook(path, "numbers", ["n"], ([i] for i in range(10)), max_rows=4)
    assert (written, sheets) == (10, 4)  # 3 data rows + header per sheet
    content = sheet_rows(path)
    assert list(content) == ["numbers", "numbers_2", "numbers_3", "numbers_4"]
    assert all(rows[0] == ("n",) for rows in content.values())
    assert [r[0] for rows in content.values() for r in rows[1:]] == list(range(10))
    assert not list(tmp_path.glob(".*partial"))


def test_an_empty_day_gets_a_summary_and_no_parts(tmp_path: Path, store: MongoStore) -> None:
    export = export_day(store, tmp_path / "day", TimeRange(DAY, DAY + timedelta(days=1)))
    assert export.rows == dict.fromkeys(
        ["transactions", "model_predictions", "ensemble_results", "flagged_transactions",
         "scored_windows"],
        0,
    )  # fmt: skip
    assert (export.parts, export.written) == ([], [])
    assert dict(sheet_rows(export.summary)["summary"][1:])["hour parts"] == "none"


def add(store: MongoStore, day: datetime, count: int, prefix: str, minutes: int = 7) -> None:
    """Transactions every ``minutes`` from ``day``, scored by v3, one in ten flagged."""
    models = ("random_forest", "gradient_boosting", "logistic_regression")
    for i in range(count):
        when = day + timedelta(minutes=minutes * i)
        key, tid = partition_key(when), f"{prefix}{i}"
        store.collection("transactions").insert_one(
            {"_id": tid, "tx_datetime": when, "customer_id": "c", "terminal_id": "t",
             "tx_amount": 10.5, "partition_key": key, "source": "kafka", "revision": 1}
        )  # fmt: skip
        flagged = i % 10 == 0
        result = {"partition_key": key, "model_version": 3, "fraud_votes": 3 if flagged else 0,
                  "is_fraud": flagged, "confidence": 0.9 if flagged else 0.1,
                  "flagged": flagged}  # fmt: skip
        store.collection("ensemble_results").insert_one({"_id": tid, **result})
        if flagged:
            store.collection("flagged_transactions").insert_one(
                {"_id": tid, **result, "tx_datetime": when, "customer_id": "c",
                 "terminal_id": "t"}
            )  # fmt: skip
        store.collection("model_predictions").insert_one(
            {"_id": tid, "model_version": 3, "partition_key": key,
             "probability": dict.fromkeys(models, 0.5), "vote": dict.fromkeys(models, True)}
        )  # fmt: skip


def test_a_day_is_exported_in_hour_parts_with_its_summary(
    tmp_path: Path, store: MongoStore
) -> None:
    add(store, DAY, 200, "in")
    add(store, DAY + timedelta(days=1), 5, "next")  # another day's rows stay out
    store.collection("scored_windows").insert_many(
        [{"_id": partition_key(DAY), "partition_key": partition_key(DAY), "model_version": 3,
          "scored_at": DAY + timedelta(hours=2), "replaced_version": 2, "flags_added": 1,
          "flags_removed": 2},
         {"_id": partition_key(DAY + timedelta(minutes=10)),
          "partition_key": partition_key(DAY + timedelta(minutes=10)), "model_version": 3,
          "scored_at": DAY + timedelta(hours=1)}]
    )  # fmt: skip
    directory = tmp_path / "2026-11-10"
    export = export_day(store, directory, TimeRange(DAY, DAY + timedelta(days=1)))
    # 200 transactions 7 minutes apart: 1,400 minutes, hours 00 to 23.
    assert export.parts == export.written == [f"hour-{h:02d}" for h in range(24)]
    assert export.rows == {"transactions": 200, "model_predictions": 200,
                           "ensemble_results": 200, "flagged_transactions": 20,
                           "scored_windows": 2}  # fmt: skip
    first = directory / "hour-00"
    windows = sheet_rows(first / "scored_windows.xlsx")["scored_windows"]
    assert windows[1][0] == partition_key(DAY) and windows[1][3:] == (2, 1, 2)
    assert windows[2][3:] == (None, None, None)  # scored once, never replaced
    transactions = sheet_rows(first / "transactions.xlsx")["transactions"]
    assert len(transactions) == 1 + 9 and transactions[1][0] == "in0"  # minutes 0..56
    assert transactions[1][1] == DAY.replace(tzinfo=None)  # UTC wall time
    predictions = sheet_rows(first / "model_predictions.xlsx")["model_predictions"]
    assert predictions[0][3:5] == ("random_forest probability", "gradient_boosting probability")
    assert predictions[1][3] == 0.5 and predictions[1][6] is True
    summary = dict(sheet_rows(export.summary)["summary"][1:])
    assert summary["model versions"] == "v3" and summary["flagged_transactions rows"] == 20
    assert summary["exported_at (UTC)"] is not None
    assert summary["windows re-scored by a better model version"] == 1
    assert (summary["flags added by re-scores"], summary["flags removed by re-scores"]) == (1, 2)
    assert sorted(p.name for p in first.iterdir()) == [
        "ensemble_results.xlsx", "flagged_transactions.xlsx", "model_predictions.xlsx",
        "scored_windows.xlsx", "transactions.xlsx",
    ]  # fmt: skip
    assert not list(directory.rglob("*.partial"))


def test_a_refresh_writes_only_the_hours_that_changed(tmp_path: Path, store: MongoStore) -> None:
    day, directory = TimeRange(DAY, DAY + timedelta(days=1)), tmp_path / "2026-11-10"
    add(store, DAY, 30, "a", minutes=10)  # hours 00 to 04
    assert export_day(store, directory, day).written == [f"hour-{h:02d}" for h in range(5)]
    assert export_day(store, directory, day).written == []  # nothing changed

    add(store, DAY + timedelta(hours=6), 3, "b")  # a new hour
    store.collection("transactions").update_one({"_id": "a7"}, {"$set": {"revision": 2}})
    store.collection("scored_windows").insert_one(
        {"_id": partition_key(DAY + timedelta(hours=3)),
         "partition_key": partition_key(DAY + timedelta(hours=3)), "model_version": 4,
         "scored_at": DAY + timedelta(hours=5)}
    )  # fmt: skip
    refresh = export_day(store, directory, day)
    assert refresh.written == ["hour-01", "hour-03", "hour-06"]  # a7 is at 01:10
    assert refresh.rows["transactions"] == 33

    (directory / "hour-02" / "transactions.xlsx").unlink()  # a part deleted by hand
    assert export_day(store, directory, day).written == ["hour-02"]

    # Every row of an hour moved to another day: its part goes.
    store.collection("transactions").update_many(
        {"_id": {"$in": ["b0", "b1", "b2"]}}, {"$set": {"partition_key": "2026-11-11-06:00"}}
    )
    gone = export_day(store, directory, day)
    assert "hour-06" not in gone.parts and not (directory / "hour-06").exists()


def test_the_demo_knows_when_a_days_workbooks_hold_every_score(
    store: MongoStore, tmp_path: Path
) -> None:
    day = tmp_path / "2026-12-02"
    day.mkdir()
    store.collection(ENSEMBLE_RESULTS).insert_many(
        [
            {"_id": "a", "partition_key": "2026-12-02-10:00"},
            {"_id": "b", "partition_key": "2026-12-02-23:50"},
            {"_id": "c", "partition_key": "2026-12-03-00:00"},  # the next day's
        ]
    )
    assert not workbooks_current(store, day)  # nothing exported yet
    part = {"rows": {sheet.name: 1 for sheet in SHEETS}}  # one row in each workbook
    manifest = {"hour-10": part}
    (day / MANIFEST).write_text(json.dumps(manifest))
    assert not workbooks_current(store, day)  # the export before the last window was scored
    manifest["hour-23"] = part
    (day / MANIFEST).write_text(json.dumps(manifest))
    assert workbooks_current(store, day)
