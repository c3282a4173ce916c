"""Topic administration the stack and the simulator need (create if missing, describe)."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAlreadyExistsError

from fraudstream.config import ServiceUnavailable, kafka_client_options

DEFAULT_PARTITIONS = 4  # an even share for two ingestion workers
# kafka-python waits 30 s to give up on an unreachable broker by default; say so sooner.
BOOTSTRAP_TIMEOUT_MS = 10_000
CONNECT_ERRORS = (KafkaTimeoutError, KafkaConnectionError)


def broker_unreachable(bootstrap: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Kafka broker at {bootstrap} is not reachable: start it (`fraudstream up`) or "
        "point FRAUDSTREAM_KAFKA_BOOTSTRAP at a running broker."
    )


def admin_client(bootstrap: str, **client_options: object) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="fraudstream-admin",
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            **(kafka_client_options() | client_options),
        )
    except CONNECT_ERRORS:
        raise broker_unreachable(bootstrap) from None


def ensure_topic(
    bootstrap: str, topic: str, partitions: int = DEFAULT_PARTITIONS, **client_options: object
) -> bool:
    """Create ``topic`` if it does not exist; True if it was created."""
    admin = admin_client(bootstrap, **client_options)
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def broker_answers(bootstrap: str) -> bool:
    """True if a broker at ``bootstrap`` answers a metadata request."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=3000,
            bootstrap_timeout_ms=3000,
            **kafka_client_options(),
        )
    except Exception:  # any failure to connect means "not healthy" here
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()
