"""The transaction contract (docs/contracts.md) and its validation, shared by every source.

A record either becomes a `Transaction` or raises `InvalidRecord` whose message says what is wrong;
sources route the latter to the dead-letter collection instead of dropping it. A valid transaction
can always be stored: values MongoDB cannot hold (integers beyond 64 bits, NUL in a key, nesting
deeper than ``MAX_DEPTH``, records over ``MAX_RECORD_BYTES``) are rejected here, with the reason,
instead of failing the write of a whole batch.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fraudstream.config import partition_start
from fraudstream.windows import TimeRange, from_millis, parse_utc, partition_key

TEXT_FIELDS = ("transaction_id", "customer_id", "terminal_id")
CONTRACT_FIELDS = frozenset((*TEXT_FIELDS, "tx_datetime", "tx_amount"))
MAX_RECORD_BYTES = 1_048_576  # Kafka's default message limit; a transaction is ~200 bytes
MAX_DEPTH = 32  # nesting of extra fields
MAX_DEAD_LETTER_PAYLOAD = 65_536  # bytes of a rejected record its dead letter keeps
# How far past the wall clock an event time may be (producer clocks drift); beyond, it is rejected.
FUTURE_TOLERANCE = timedelta(hours=1)
INT64 = (-(2**63), 2**63 - 1)
# An integer literal orjson could only read as a float (beyond 64 bits).
_HUGE_INTEGER = re.compile(rb"(?<![\w.+\-\"])-?\d{19,}(?![\w.\"])")


class InvalidRecord(ValueError):
    """A record that breaks the transaction contract; the message is the dead-letter reason."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """One card transaction as the contract defines it; unknown fields are kept in ``extra``."""

    transaction_id: str
    tx_datetime: datetime
    customer_id: str
    terminal_id: str
    tx_amount: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def partition_key(self) -> str:
        return partition_key(self.tx_datetime)

    def fields(self) -> dict[str, Any]:
        """The contract fields as stored in MongoDB (``extra`` only when present)."""
        document: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "tx_datetime": self.tx_datetime,
            "customer_id": self.customer_id,
            "terminal_id": self.terminal_id,
            "tx_amount": self.tx_amount,
        }
        if self.extra:
            document["extra"] = self.extra
        return document


def parse_transaction_json(payload: bytes | None) -> Transaction:
    """Validate one Kafka record value (UTF-8 JSON object)."""
    if payload is None:
        raise InvalidRecord("record has no value (tombstone); a transaction must be a JSON object")
    if len(payload) > MAX_RECORD_BYTES:
        raise InvalidRecord(
            f"record of {len(payload):,} bytes is over the {MAX_RECORD_BYTES:,}-byte limit"
        )
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise InvalidRecord(f"value is not valid UTF-8 JSON: {error}") from None
    if not isinstance(fields, dict):
        raise InvalidRecord(f"value must be a JSON object, got {type(fields).__name__}")
    tx = transaction_from_fields(fields)
    if tx.extra and _holds_huge_float(tx.extra) and _holds_huge_literal(payload):
        raise InvalidRecord(
            "an extra field holds an integer beyond 64 bits, which cannot be stored"
        )
    return tx


def transaction_from_fields(fields: Mapping[str, Any], *, text_values: bool = False) -> Transaction:
    """Validate a mapping of contract fields.

    ``text_values`` is for sources whose every value is a string (CSV): ``tx_amount`` is then parsed
    as a number instead of rejected for its type.
    """
    tid, customer, terminal = (fields.get(name) for name in TEXT_FIELDS)
    if type(tid) is int:
        tid = transaction_id_of(tid)
    raw_time, amount = fields.get("tx_datetime"), fields.get("tx_amount", _MISSING)
    # Fast path for well-formed text fields (the hot loop of ingestion); the slow path below
    # names what is wrong.
    if not (
        type(tid) is str
        and type(customer) is str
        and type(terminal) is str
        and tid.strip()
        and customer.strip()
        and terminal.strip()
    ):
        for name in TEXT_FIELDS:
            _require_text(fields, name)
    if type(raw_time) is not str:
        if raw_time is None:
            raise InvalidRecord("field 'tx_datetime' is missing")
        raise InvalidRecord(_type_error("tx_datetime", "an ISO-8601 string", raw_time))
    try:
        tx_datetime = parse_utc(raw_time)
    except ValueError:
        raise InvalidRecord(f"tx_datetime {raw_time!r} is not an ISO-8601 date-time") from None
    extra = (
        {k: v for k, v in fields.items() if k not in CONTRACT_FIELDS}
        if len(fields) > len(CONTRACT_FIELDS)
        else {}
    )
    if extra:
        _check_storable(extra, "extra", 1)
    return Transaction(
        transaction_id=transaction_id_of(tid),
        tx_datetime=tx_datetime,
        customer_id=customer.strip(),
        terminal_id=terminal.strip(),
        tx_amount=_amount(amount, text_values),
        extra=extra,
    )


def transaction_id_of(value: object) -> str:
    """A transaction id as transactions and labels both store it: text stripped of surrounding
    blanks in Unicode NFC (so one id always compares equal), integers as their digits."""
    if type(value) is int:
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecord(f"transaction_id must be a non-empty string, got {value!r:.80}")
    text = value.strip()
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def holdable_event_times(now: datetime | None = None) -> TimeRange:
    """The event times a window can hold: from the first partition's start to the wall clock
    plus ``FUTURE_TOLERANCE``."""
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    return TimeRange(min(partition_start(), latest - FUTURE_TOLERANCE), latest)


def check_event_time(tx: Transaction, earliest: datetime, latest: datetime) -> None:
    """Reject an event time no window can hold: before the first partition, or in the future
    beyond ``latest`` (the wall clock plus a tolerance)."""
    if tx.tx_datetime < earliest:
        raise InvalidRecord(
            f"tx_datetime {tx.tx_datetime.isoformat()} is before the first partition "
            f"({earliest.isoformat()}, FRAUDSTREAM_PARTITION_START): no window holds it"
        )
    if tx.tx_datetime > latest:
        raise InvalidRecord(
            f"tx_datetime {tx.tx_datetime.isoformat()} is in the future (after "
            f"{latest.isoformat()}): the producer's clock or the record is wrong"
        )


def dead_letter_payload(raw: bytes | str | None) -> dict[str, Any]:
    """A rejected record's content as its dead letter keeps it: text when it decodes as UTF-8,
    raw bytes otherwise, cut to ``MAX_DEAD_LETTER_PAYLOAD`` bytes (a dead letter must itself be
    storable) with its full size."""
    if raw is None:
        return {"payload": None}
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    kept = data[:MAX_DEAD_LETTER_PAYLOAD]
    payload: bytes | str = kept
    with contextlib.suppress(UnicodeDecodeError):  # undecodable: kept as raw BSON binary
        payload = kept.decode("utf-8", "ignore" if len(data) > len(kept) else "strict")
    if len(data) == len(kept):
        return {"payload": payload}
    return {"payload": payload, "payload_truncated": True, "payload_bytes": len(data)}


def check_lateness(tx: Transaction, record_timestamp_ms: int, allowed: timedelta) -> None:
    """Reject a record whose event time is further from its Kafka timestamp than allowed."""
    # Float milliseconds on the hot path; exact datetimes only for the message.
    if (
        abs(tx.tx_datetime.timestamp() * 1000 - record_timestamp_ms)
        <= allowed.total_seconds() * 1000
    ):
        return
    record_time = from_millis(record_timestamp_ms)
    distance = abs(tx.tx_datetime - record_time)
    if distance > allowed:
        raise InvalidRecord(
            f"tx_datetime {tx.tx_datetime.isoformat()} is {distance} away from the record "
            f"timestamp {record_time.isoformat()}, beyond the allowed lateness of {allowed}; "
            "the producer must stamp records with the event time (or send them promptly), "
            "or FRAUDSTREAM_ALLOWED_LATENESS must be raised"
        )


_MISSING = object()


def _check_storable(value: Any, path: str, depth: int) -> None:
    """Reject what MongoDB cannot store: integers beyond 64 bits, NUL in a key, deep nesting."""
    if depth > MAX_DEPTH:
        raise InvalidRecord(f"{path:.60} nests deeper than {MAX_DEPTH} levels")
    if type(value) is int:
        if not INT64[0] <= value <= INT64[1]:
            raise InvalidRecord(f"{path:.60} is an integer beyond 64 bits, which cannot be stored")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InvalidRecord(f"{path:.60} has a key with a NUL character: {key!r:.60}")
            _check_storable(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path}[{index}]", depth + 1)


def _holds_huge_literal(payload: bytes) -> bool:
    """Whether the JSON text holds an integer literal beyond 64 bits (orjson reads it as float)."""
    return any(not INT64[0] <= int(match) <= INT64[1] for match in _HUGE_INTEGER.findall(payload))


def _holds_huge_float(value: Any) -> bool:
    """Whether a float read from an integer literal beyond 64 bits is among the values."""
    if isinstance(value, float):
        return value.is_integer() and abs(value) >= 2.0**63
    if isinstance(value, dict):
        return any(_holds_huge_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_huge_float(item) for item in value)
    return False


def _require_text(fields: Mapping[str, Any], name: str) -> None:
    value = fields.get(name, _MISSING)
    if value is _MISSING or value is None:
        raise InvalidRecord(f"field {name!r} is missing")
    if not isinstance(value, str):
        raise InvalidRecord(_type_error(name, "a string", value))
    if not value.strip():
        raise InvalidRecord(f"field {name!r} is empty")


def _amount(value: Any, text_values: bool) -> float:
    if value is _MISSING or value is None:
        raise InvalidRecord("field 'tx_amount' is missing")
    if text_values and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidRecord(f"tx_amount {value!r} is not a number") from None
    # bool is an int subclass: `true` is not an amount.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(_type_error("tx_amount", "a number", value))
    amount = float(value)
    if not math.isfinite(amount):
        raise InvalidRecord(f"tx_amount {value!r} is not finite")
    if amount < 0:
        raise InvalidRecord(f"tx_amount {value!r} is negative")
    return amount


def _type_error(name: str, expected: str, value: Any) -> str:
    return f"field {name!r} must be {expected}, got {type(value).__name__} {value!r:.80}"
