import json
from datetime import UTC, datetime, timedelta

import pytest

from fraudstream.ingest.schema import (
    InvalidRecord,
    check_lateness,
    parse_transaction_json,
    transaction_from_fields,
)
from fraudstream.windows import to_millis

VALID = {
    "transaction_id": "t1",
    "tx_datetime": "2026-11-23T10:00:00+00:00",
    "customer_id": "C1",
    "terminal_id": "T1",
    "tx_amount": 12.5,
}


def payload(**changes: object) -> bytes:
    record = {**VALID, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...}).encode()


def test_a_contract_record_parses_and_keeps_extra_fields() -> None:
    tx = parse_transaction_json(payload(channel="web"))
    assert tx.transaction_id == "t1"
    assert tx.tx_datetime == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert tx.tx_amount == 12.5
    assert tx.extra == {"channel": "web"}
    assert tx.partition_key == "2026-11-23-10:00"


def test_an_integer_amount_and_a_naive_time_are_accepted() -> None:
    tx = parse_transaction_json(payload(tx_amount=3, tx_datetime="2026-11-23T10:00:00"))
    assert tx.tx_amount == 3.0
    assert tx.tx_datetime.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (None, "tombstone"),
        (payload(transaction_id=...), "'transaction_id' is missing"),
        (payload(customer_id=None), "'customer_id' is missing"),
        (payload(terminal_id=7), "'terminal_id' must be a string"),
        (payload(transaction_id=""), "'transaction_id' is empty"),
        (payload(tx_amount=...), "'tx_amount' is missing"),
        (payload(tx_amount="12"), "'tx_amount' must be a number"),
        (payload(tx_amount=True), "'tx_amount' must be a number"),
        (payload(tx_amount=-0.01), "negative"),
        (b'{"transaction_id":"t","tx_datetime":"2026-11-23T10:00:00","customer_id":"c",'
         b'"terminal_id":"t","tx_amount":NaN}', "not valid UTF-8 JSON"),
        (b'{"tx_amount": 1e400}', "not valid UTF-8 JSON"),
        (payload(tx_datetime="yesterday"), "not an ISO-8601"),
        (payload(tx_datetime=1700000000), "'tx_datetime' must be an ISO-8601 string"),
        (payload(tx_datetime=...), "'tx_datetime' is missing"),
    ],
)  # fmt: skip
def test_every_kind_of_bad_record_is_rejected_with_its_reason(
    raw: bytes | None, reason: str
) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        parse_transaction_json(raw)


def test_csv_text_values_parse_amounts() -> None:
    fields = {**VALID, "tx_amount": "57.16"}
    assert transaction_from_fields(fields, text_values=True).tx_amount == 57.16
    with pytest.raises(InvalidRecord, match="not a number"):
        transaction_from_fields({**VALID, "tx_amount": "abc"}, text_values=True)
    with pytest.raises(InvalidRecord, match="not finite"):
        transaction_from_fields({**VALID, "tx_amount": "inf"}, text_values=True)


@pytest.mark.parametrize(("offset_s", "ok"), [(0, True), (300, True), (-300, True), (301, False)])
def test_event_time_must_be_within_the_allowed_lateness_of_the_record_time(
    offset_s: int, ok: bool
) -> None:
    tx = parse_transaction_json(payload())
    record_ms = to_millis(tx.tx_datetime + timedelta(seconds=offset_s))
    if ok:
        check_lateness(tx, record_ms, timedelta(minutes=5))
    else:
        with pytest.raises(InvalidRecord, match="allowed lateness"):
            check_lateness(tx, record_ms, timedelta(minutes=5))
