"""Labels: the contract, storing them, loading files (once each, bad rows dead-lettered, corrupt
files quarantined) and the label API (cursor, token, outage) through the `labels` asset."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from fraudstream.config import StackRecord
from fraudstream.ingest.landing import pending_files
from fraudstream.ingest.schema import InvalidRecord
from fraudstream.labels.api_client import LabelApiClient, LabelApiUnavailable
from fraudstream.labels.loading import Label, label_from_fields, store_labels
from fraudstream.labels.sources import load_label_files, stored_api_cursor
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.simulator.label_feed import append_labels
from pipeline.assets.labels import labels as labels_asset
from pipeline.resources import LabelApiResource, MongoResource
from tests.helpers.files import settled

HANDBOOK_CSV = (
    "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,TX_FRAUD_SCENARIO\n"
    "0,2018-04-01 00:00:31,596,3156,57.16,0,0\n"
    "1,2018-04-01 00:02:10,4961,3412,81.51,1,1\n"
    "2,2018-04-01 00:07:56,2,1365,146.00,maybe,0\n"
    "3,2018-04-01 00:09:29,4128,8737,64.49,0,0\n"
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"transaction_id": "t1", "tx_fraud": "1"}, Label("t1", 1)),
        ({"transaction_id": 7, "tx_fraud": 0}, Label("7", 0)),
        ({"transaction_id": "t1", "tx_fraud": True}, Label("t1", 1)),
        (
            {"transaction_id": "t1", "tx_fraud": "0", "reported_at": "2026-11-01T10:00:00"},
            Label("t1", 0, datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ),
    ],
)
def test_valid_labels(fields: dict[str, object], expected: Label) -> None:
    assert label_from_fields(fields) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tx_fraud": "1"}, "transaction_id must be a non-empty string"),
        ({"transaction_id": " ", "tx_fraud": "1"}, "transaction_id must be a non-empty string"),
        ({"transaction_id": "t", "tx_fraud": "2"}, "tx_fraud must be 0 or 1"),
        ({"transaction_id": "t"}, "tx_fraud must be 0 or 1"),
        ({"transaction_id": "t", "tx_fraud": 1, "reported_at": "soon"}, "not an ISO-8601"),
    ],
)
def test_invalid_labels_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        label_from_fields(fields)


def test_loaded_at_marks_new_and_changed_verdicts_only(store: MongoStore) -> None:
    written = store_labels(store, [Label("a", 0), Label("b", 1)], source="test")
    assert (written.new, written.changed, written.unchanged) == (2, 0, 0)
    first = {d["_id"]: d["loaded_at"] for d in store.collection("labels").find()}
    time.sleep(0.01)
    written = store_labels(store, [Label("a", 0), Label("b", 0)], source="test")
    assert (written.new, written.changed, written.unchanged) == (0, 1, 1)
    second = {d["_id"]: d["loaded_at"] for d in store.collection("labels").find()}
    assert second["a"] == first["a"] and second["b"] > first["b"]
    assert store.collection("labels").find_one({"_id": "b"})["tx_fraud"] == 0


def test_a_handbook_csv_loads_once_with_its_bad_rows_dead_lettered(
    store: MongoStore, tmp_path: Path
) -> None:
    directory = tmp_path / "labels"
    directory.mkdir()
    path = directory / "day1.csv"
    path.write_text(HANDBOOK_CSV)
    settled(path)
    report = load_label_files(store, directory, "run-1")
    assert report.files == ["day1.csv"] and report.rows == 4 and report.written.new == 3
    assert {d["_id"]: d["tx_fraud"] for d in store.collection("labels").find()} == {
        "0": 0, "1": 1, "3": 0,
    }  # fmt: skip
    [letter] = store.collection("dead_letters").find()
    assert letter["position"] == {"file": "day1.csv", "sha256": report_sha(store), "line": 4}
    assert "tx_fraud must be 0 or 1, got 'maybe'" in letter["error"]
    assert letter["payload"].startswith("2,2018-04-01 00:07:56")

    # The same content under another name (and a re-run) is not read again.
    copy = directory / "copy.csv"
    copy.write_text(HANDBOOK_CSV)
    settled(copy)
    assert pending_files(store, directory, "labels") == []
    again = load_label_files(store, directory, "run-2")
    assert again.files == [] and store.collection("dead_letters").count_documents({}) == 1


def report_sha(store: MongoStore) -> str:
    return store.collection("landing_files").find_one({"kind": "labels"})["sha256"]


def test_a_file_still_being_written_waits_and_a_corrupt_one_is_quarantined(
    store: MongoStore, tmp_path: Path
) -> None:
    directory = tmp_path / "landing" / "labels"
    directory.mkdir(parents=True)
    (directory / "fresh.jsonl").write_text('{"transaction_id": "x", "tx_fraud": 1}\n')
    broken = directory / "broken.csv"
    broken.write_bytes(b"transaction_id,tx_fraud\n\xff\xfe1,1\n")
    settled(broken)
    no_header = directory / "wrong.csv"
    no_header.write_text("id;fraud\n1;0\n")
    settled(no_header)
    oversized = directory / "oversized.csv"  # a good row, then a 1 MB field: garbage, not a label
    oversized.write_text("transaction_id,tx_fraud\nok-1,1\n" + "x" * 1_000_000 + ",1\n")
    settled(oversized)

    report = load_label_files(store, directory, "run-1")
    assert report.files == []  # fresh.jsonl is not settled yet
    assert set(report.quarantined) == {"broken.csv", "wrong.csv", "oversized.csv"}
    assert "not a readable CSV" in report.quarantined["oversized.csv"]
    assert "not UTF-8" in report.quarantined["broken.csv"]
    assert "has no column transaction_id, tx_fraud" in report.quarantined["wrong.csv"]
    quarantine = tmp_path / "landing" / "quarantine" / "labels"
    assert (quarantine / "broken.csv").exists() and not broken.exists()
    assert "not UTF-8" in (quarantine / "broken.csv.reason.txt").read_text()

    settled(directory / "fresh.jsonl")
    assert load_label_files(store, directory, "run-2").files == ["fresh.jsonl"]
    assert store.collection("labels").find_one({"_id": "x"})["tx_fraud"] == 1


def test_the_client_retries_then_reports_an_outage_clearly() -> None:
    client = LabelApiClient("http://127.0.0.1:9", timeout=0.5, retries=1, backoff=0.01)
    with pytest.raises(LabelApiUnavailable, match=r"unreachable .* The cursor was not moved"):
        client.page(None)


def test_the_labels_asset_reads_files_and_the_api_from_its_cursor(
    stack: StackRecord,
    database: str,
    store: MongoStore,
    api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    landing = tmp_path / "landing"
    (landing / "labels").mkdir(parents=True)
    settled_file = landing / "labels" / "batch.csv"
    settled_file.write_text("transaction_id,tx_fraud\nf1,1\nf2,0\n")
    settled(settled_file)
    monkeypatch.setenv("FRAUDSTREAM_LANDING_DIR", str(landing))
    append_labels(tmp_path, [("a1", 1, datetime.now(UTC) - timedelta(minutes=5))])
    resources = {
        "mongo": MongoResource(uri=stack.mongo_uri, database=database),
        "label_api": LabelApiResource(url=api, token="s3cret"),
    }
    result = dg.materialize([labels_asset], resources=resources)
    metadata = result.asset_materializations_for_node("labels")[0].metadata
    assert metadata["files_loaded"].value == 1 and metadata["file_labels_new"].value == 2
    assert metadata["api_labels_new"].value == 1
    cursor = stored_api_cursor(store)
    assert cursor is not None and metadata["api_cursor"].value == cursor

    append_labels(tmp_path, [("a2", 0, datetime.now(UTC) - timedelta(minutes=1))])
    again = dg.materialize([labels_asset], resources=resources)
    metadata = again.asset_materializations_for_node("labels")[0].metadata
    assert metadata["files_loaded"].value == 0 and metadata["api_items"].value == 1
    assert sorted(d["_id"] for d in store.collection("labels").find()) == ["a1", "a2", "f1", "f2"]

    wrong_token = {**resources, "label_api": LabelApiResource(url=api, token="nope")}
    failed = dg.materialize([labels_asset], resources=wrong_token, raise_on_error=False)
    assert not failed.success
    assert stored_api_cursor(store) != cursor  # moved by the second run, not by the failed one
