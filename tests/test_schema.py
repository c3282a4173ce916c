import json
from datetime import UTC, datetime, timedelta

import pytest

from fraudstream.ingest.schema import (
    MAX_DEAD_LETTER_PAYLOAD,
    MAX_RECORD_BYTES,
    InvalidRecord,
    check_event_time,
    check_lateness,
    dead_letter_payload,
    parse_transaction_json,
    transaction_from_fields,
    transaction_id_of,
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
        # Parses, but MongoDB could not store it: rejected instead of failing the batch's write.
        (payload(extra=2**63), "integer beyond 64 bits"),
        (payload(extra=-(2**63) - 1), "integer beyond 64 bits"),
        (payload(extra={"deep": [2**64]}), "integer beyond 64 bits"),
        (payload(extra=1) .replace(b'"extra": 1', b'"extra": 18446744073709551616'),
         "integer beyond 64 bits"),
        (payload(extra={"a\u0000b": 1}), "NUL character"),
        (payload(**{"bad\u0000key": 1}), "NUL character"),
        (b'{"extra": ' + b"[" * 40 + b"]" * 40 + b", " + payload()[1:], "nests deeper"),
        (payload(blob="x" * MAX_RECORD_BYTES), "byte limit"),
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


def test_values_mongodb_can_hold_are_kept_at_their_limits() -> None:
    tx = parse_transaction_json(
        payload(big=2**63 - 1, small=-(2**63), real=1.5e19, nested=[[{"k": 1}]], dotted={"a.b": 1})
    )
    assert tx.extra["big"] == 2**63 - 1 and tx.extra["real"] == 1.5e19


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [(" t1 ", "t1"), (7, "7"), ("cafe\u0301", "caf\u00e9"), ("t-\u00e9", "t-\u00e9")],
)
def test_transaction_ids_are_normalised_the_same_way_for_transactions_and_labels(
    raw: object, normalised: str
) -> None:
    assert transaction_id_of(raw) == normalised
    assert parse_transaction_json(payload(transaction_id=raw)).transaction_id == normalised


@pytest.mark.parametrize("raw", [True, 1.5, None, "  "])
def test_a_transaction_id_that_is_not_text_or_an_integer_is_rejected(raw: object) -> None:
    with pytest.raises(InvalidRecord, match="transaction_id"):
        transaction_id_of(raw)


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "before the first partition"),
        (datetime(2099, 1, 1, tzinfo=UTC), "in the future"),
        (datetime(2026, 11, 23, 10, tzinfo=UTC), None),
    ],
)
def test_an_event_time_no_window_can_hold_is_rejected(moment: datetime, reason: str | None) -> None:
    tx = parse_transaction_json(payload(tx_datetime=moment.isoformat()))
    earliest, latest = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    if reason is None:
        check_event_time(tx, earliest, latest)
    else:
        with pytest.raises(InvalidRecord, match=reason):
            check_event_time(tx, earliest, latest)


def test_a_dead_letter_keeps_a_bounded_payload_and_says_how_big_it_was() -> None:
    assert dead_letter_payload(b'{"a": 1}') == {"payload": '{"a": 1}'}
    assert dead_letter_payload(b"\xff\xfe") == {"payload": b"\xff\xfe"}
    assert dead_letter_payload(None) == {"payload": None}
    huge = dead_letter_payload("é" * MAX_DEAD_LETTER_PAYLOAD)
    assert huge["payload_truncated"] and huge["payload_bytes"] == 2 * MAX_DEAD_LETTER_PAYLOAD
    assert len(huge["payload"].encode()) <= MAX_DEAD_LETTER_PAYLOAD
