"""A plain kafka-python producer for tests: contract-shaped and malformed records, explicit
partitions and timestamps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from fraudstream.windows import parse_utc, to_millis


def tx(
    transaction_id: str, when: datetime, amount: float = 10.0, customer: str = "C1", **extra: Any
) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "tx_datetime": when.isoformat(),
        "customer_id": customer,
        "terminal_id": "T1",
        "tx_amount": amount,
        **extra,
    }


class RecordProducer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)

    def __enter__(self) -> RecordProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._producer.close()

    def send(
        self,
        value: dict[str, Any] | bytes | None,
        timestamp: datetime,
        partition: int = 0,
        key: bytes | None = b"C1",
    ) -> None:
        payload = json.dumps(value).encode() if isinstance(value, dict) else value
        self._producer.send(
            self.topic,
            value=payload,
            key=key,
            partition=partition,
            timestamp_ms=to_millis(timestamp),
        )

    def send_tx(self, record: dict[str, Any], partition: int = 0, delay_s: float = 0) -> None:
        """Send a transaction stamped with its own event time (plus a sending delay)."""
        when = parse_utc(record["tx_datetime"]) + timedelta(seconds=delay_s)
        self.send(record, when, partition, key=record["customer_id"].encode())

    def flush(self) -> None:
        self._producer.flush()


HOUR_START = parse_utc("2026-11-23T10:00:00Z")


def publish_hour(producer: RecordProducer) -> None:
    """An hour of 120 valid records from HOUR_START over 3 partitions, and one malformed."""
    for i in range(120):
        producer.send_tx(tx(f"t{i:03d}", HOUR_START + timedelta(seconds=30 * i)), partition=i % 3)
        if i == 2:
            producer.send(b"{broken", HOUR_START + timedelta(minutes=1), partition=1)
    producer.flush()
