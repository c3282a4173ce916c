"""The code location's resources pointed at one test's topic on the session's embedded stack."""

from __future__ import annotations

from datetime import timedelta

from fraudstream.config import StackRecord
from pipeline.resources import KafkaResource

LATENESS = timedelta(minutes=5)  # the allowed lateness the tests' readers use


def kafka_resource(stack: StackRecord, topic: str) -> KafkaResource:
    return KafkaResource(
        bootstrap_servers=stack.kafka_bootstrap, topic=topic, group_id=f"g-{topic}"
    )
