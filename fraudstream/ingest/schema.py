"""The transaction contract (docs/contracts.md) and its validation, shared by every source.

A record either becomes a `Transaction` or raises `InvalidRecord` whose message says what is wrong;
sources route the latter to the dead-letter collection instead of dropping it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from fraudstream.windows import from_millis, parse_utc, partition_key

TEXT_FIELDS = ("transaction_id", "customer_id", "terminal_id")
CONTRACT_FIELDS = frozenset((*TEXT_FIELDS, "tx_datetime", "tx_amount"))


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
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise InvalidRecord(f"value is not valid UTF-8 JSON: {error}") from None
    if not isinstance(fields, dict):
        raise InvalidRecord(f"value must be a JSON object, got {type(fields).__name__}")
    return transaction_from_fields(fields)


def transaction_from_fields(fields: Mapping[str, Any], *, text_values: bool = False) -> Transaction:
    """Validate a mapping of contract fields.

    ``text_values`` is for sources whose every value is a string (CSV): ``tx_amount`` is then parsed
    as a number instead of rejected for its type.
    """
    tid, customer, terminal = (fields.get(name) for name in TEXT_FIELDS)
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
    return Transaction(
        transaction_id=tid,
        tx_datetime=tx_datetime,
        customer_id=customer,
        terminal_id=terminal,
        tx_amount=_amount(amount, text_values),
        extra={k: v for k, v in fields.items() if k not in CONTRACT_FIELDS}
        if len(fields) > len(CONTRACT_FIELDS)
        else {},
    )


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
