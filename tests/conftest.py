"""Fixtures: one real embedded stack (mongod + Tansu broker + label API) per test session, and a
fresh topic and database per test so tests never see each other's data."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from fraudstream.config import StackRecord
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.simulator.label_api import make_server
from fraudstream.tooling.stack.embedded import EmbeddedStack
from pipeline.resources import MongoResource, spark_resource
from tests.helpers.demo import DEMO_COMMAND, Demo, demo_environment
from tests.helpers.producing import RecordProducer
from tests.helpers.stack import LATENESS, kafka_resource


@pytest.fixture(scope="session", autouse=True)
def model_key() -> Iterator[None]:
    """Model artifacts are signed with a key of the test session, not one made in the cwd."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAUDSTREAM_MODEL_KEY", "test-session-model-key")
        yield


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def stack(stack_dir: Path) -> Iterator[StackRecord]:
    embedded = EmbeddedStack(stack_dir, preferred_ports=False)
    record = embedded.up()
    try:
        yield record
    finally:
        embedded.down()


@pytest.fixture
def topic(stack: StackRecord, request: pytest.FixtureRequest) -> str:
    """A new 3-partition topic (a marker ``partitions(n)`` asks for another count)."""
    marker = request.node.get_closest_marker("partitions")
    name = f"tx-{uuid.uuid4().hex[:10]}"
    ensure_topic(stack.kafka_bootstrap, name, marker.args[0] if marker else 3)
    return name


@pytest.fixture
def kafka_settings(stack: StackRecord, topic: str) -> KafkaSettings:
    return KafkaSettings(stack.kafka_bootstrap, topic, f"group-{topic}")


@pytest.fixture
def reader(kafka_settings: KafkaSettings) -> Iterator[TopicReader]:
    with TopicReader(kafka_settings, max_disorder=LATENESS) as topic_reader:
        yield topic_reader


@pytest.fixture
def database(stack: StackRecord) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    client: MongoClient = MongoClient(stack.mongo_uri)
    client.drop_database(name)
    client.close()


@pytest.fixture
def store(stack: StackRecord, database: str) -> Iterator[MongoStore]:
    mongo = MongoStore.connect(stack.mongo_uri, database)
    mongo.ensure_indexes()
    yield mongo
    mongo.close()


@pytest.fixture
def producer(stack: StackRecord, topic: str) -> Iterator[RecordProducer]:
    with RecordProducer(stack.kafka_bootstrap, topic) as records:
        yield records


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "partitions(n): number of partitions of the test topic")


# Fixtures that start a service; a test using one (directly or through another fixture) is an
# integration test, so `pytest -m "not integration"` runs the pure tests alone.
SERVICE_FIXTURES = {
    "stack", "api", "garbage_api", "spark", "spark_master", "mongod_with_auth", "demo",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    # The tests on the running demo last, together (its daemon then competes with no other
    # test), the fault suite after those that check the demo as it finished.
    items.sort(
        key=lambda item: (
            "demo" in getattr(item, "fixturenames", ()),
            item.get_closest_marker("faults") is not None,
        )
    )


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`fraudstream demo` run to its summary; its stack and daemon keep running for the tests."""
    state = tmp_path_factory.mktemp("demo") / ".fraudstream"
    try:
        finished = subprocess.run(
            DEMO_COMMAND, env=demo_environment(state), capture_output=True, text=True,
            timeout=1500,
        )  # fmt: skip
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
        record = StackRecord.load(state)
        assert record is not None and record.dagster_url
        yield Demo(finished.stdout, record, state)
    finally:
        EmbeddedStack(state).down()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """The simulator's label API over the feed in ``tmp_path``, token ``s3cret``."""
    server = make_server(tmp_path, 0, token="s3cret")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def resources(stack: StackRecord, topic: str, database: str) -> dict[str, object]:
    """The code location's resources, pointed at this test's topic and database."""
    return {
        "kafka": kafka_resource(stack, topic),
        "mongo": MongoResource(uri=stack.mongo_uri, database=database),
        "spark": spark_resource(),
    }
