"""Resources: the I/O boundary of the code location.

Fields left unset are resolved when the resource is used: a ``FRAUDSTREAM_*`` variable if set,
otherwise the embedded stack recorded by ``fraudstream up`` in the state dir.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
from pyspark.sql import SparkSession

from fraudstream import config
from fraudstream.features.job import remote_answers
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.ingest.transactions import PARALLEL_MIN_RECORDS
from fraudstream.labels.api_client import RETRIES, TIMEOUT_SECONDS, LabelApiClient
from fraudstream.ml.rescoring import RescoringPolicy
from fraudstream.reporting.alerts import Alert, post_alert
from fraudstream.reporting.quality import QualityThresholds
from fraudstream.store.access import MongoSource
from fraudstream.store.mongo import MongoStore


class KafkaResource(dg.ConfigurableResource):
    """The Kafka topic transactions stream through (FRAUDSTREAM_KAFKA_BOOTSTRAP, _KAFKA_TOPIC,
    _KAFKA_GROUP_ID, _ALLOWED_LATENESS seconds, _INGEST_WORKERS processes for ranges of at
    least `parallel_min_records` records to scan)."""

    bootstrap_servers: str | None = None
    topic: str | None = None
    group_id: str | None = None
    allowed_lateness_seconds: float | None = None
    ingest_workers: int | None = None
    parallel_min_records: int = PARALLEL_MIN_RECORDS

    def settings(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers or config.kafka_bootstrap(),
            topic=self.topic or config.kafka_topic(),
            group_id=self.group_id or config.kafka_group_id(),
        )

    def allowed_lateness(self) -> timedelta:
        if self.allowed_lateness_seconds is not None:
            return timedelta(seconds=self.allowed_lateness_seconds)
        return config.allowed_lateness()

    def workers(self) -> int:
        return self.ingest_workers or config.ingest_workers()

    @contextmanager
    def reader(self) -> Iterator[TopicReader]:
        """A reader of the topic whose timestamps are ordered up to the allowed lateness."""
        with TopicReader(self.settings(), max_disorder=self.allowed_lateness()) as reader:
            yield reader


class MongoResource(dg.ConfigurableResource):
    """The fraudstream MongoDB database (FRAUDSTREAM_MONGO_URI, FRAUDSTREAM_MONGO_DATABASE)."""

    uri: str | None = None
    database: str | None = None

    def source(self) -> MongoSource:
        """Where the database is, with the login: for processes that connect themselves."""
        return MongoSource.from_settings(
            self.uri or config.mongo_uri(), self.database or config.mongo_database()
        )

    @contextmanager
    def store(self) -> Iterator[MongoStore]:
        store = self.source().connect()
        try:
            yield store
        finally:
            store.close()


class AlertWebhookResource(dg.ConfigurableResource):
    """Where alerts about failed runs and checks are posted (FRAUDSTREAM_ALERT_WEBHOOK_URL: any
    webhook taking JSON with a `text` field, e.g. Slack's); unset: the alert sensor logs them."""

    url: str | None = None
    timeout_seconds: float = 5.0

    def webhook(self) -> str | None:
        return self.url or config.alert_webhook_url()

    def post(self, alert: Alert) -> None:
        """Post ``alert`` to the webhook (``AlertNotDelivered`` if it does not accept it)."""
        post_alert(self.webhook(), alert, self.timeout_seconds)


class LabelApiResource(dg.ConfigurableResource):
    """The partner's label API (FRAUDSTREAM_LABEL_API_URL; bearer token from
    FRAUDSTREAM_LABEL_API_TOKEN). Timeouts and retries bound every call."""

    url: str | None = None
    token: str | None = None
    timeout_seconds: float = TIMEOUT_SECONDS
    retries: int = RETRIES

    def configured(self) -> bool:
        """Whether a label API is configured or running with the embedded stack."""
        try:
            self._url()
        except config.ServiceUnavailable:
            return False
        return True

    def client(self) -> LabelApiClient:
        return LabelApiClient(
            self._url(),
            self.token or config.label_api_token(),
            timeout=self.timeout_seconds,
            retries=self.retries,
        )

    def _url(self) -> str:
        return self.url or config.label_api_url()


_LIMITS = QualityThresholds()


class QualityResource(dg.ConfigurableResource):
    """Thresholds of the asset checks (defaults: fraudstream/reporting/quality.py)."""

    max_dead_letter_rate: float = _LIMITS.max_dead_letter_rate
    min_volume_ratio: float = _LIMITS.min_volume_ratio
    min_auc: float = _LIMITS.min_auc
    min_average_precision: float = _LIMITS.min_average_precision
    min_precision: float = _LIMITS.min_precision
    min_recall: float = _LIMITS.min_recall
    min_agreement: float = _LIMITS.min_agreement
    max_flag_rate: float = _LIMITS.max_flag_rate
    min_labelled: int = _LIMITS.min_labelled
    min_labelled_frauds: int = _LIMITS.min_labelled_frauds
    lookback_hours: float = _LIMITS.lookback.total_seconds() / 3600

    def thresholds(self) -> QualityThresholds:
        fields = self.model_dump()
        hours = fields.pop("lookback_hours")
        return QualityThresholds(**fields, lookback=timedelta(hours=hours))


_RESCORING = RescoringPolicy()


class RescoringResource(dg.ConfigurableResource):
    """Which scored windows `model_rescoring_sensor` sends back to scoring when a better model
    version lands (defaults: fraudstream/ml/rescoring.py)."""

    horizon_days: float = _RESCORING.horizon.total_seconds() / 86_400
    fraud_growth: float = _RESCORING.fraud_growth
    max_windows_per_run: int = _RESCORING.max_windows_per_run

    def policy(self) -> RescoringPolicy:
        return RescoringPolicy(
            horizon=timedelta(days=self.horizon_days),
            fraud_growth=self.fraud_growth,
            max_windows_per_run=self.max_windows_per_run,
        )


class SparkResource(dg.ConfigurableResource):
    """Spark for the feature job: a running Spark Connect server when one is configured
    (FRAUDSTREAM_SPARK_REMOTE; `fraudstream up` runs one for its Dagster runs: no run pays a JVM
    start), else a session of the run's own (FRAUDSTREAM_SPARK_MASTER, executor sizing
    FRAUDSTREAM_SPARK_EXECUTOR_*; docs/deploy.md)."""

    remote: str | None = None

    @contextmanager
    def session(self) -> Iterator[SparkSession]:
        remote = self.remote or config.spark_remote()
        if remote is None:
            yield SparkSession.builder.config(map=config.spark_settings()).getOrCreate()
            return
        if not remote_answers(remote):
            raise config.ServiceUnavailable(
                f"the Spark Connect server at {remote} (FRAUDSTREAM_SPARK_REMOTE) does not "
                "answer: start it (`fraudstream up` restarts the embedded one), or unset the "
                "variable to let each run start its own Spark."
            )
        spark = SparkSession.builder.remote(remote).getOrCreate()
        try:
            yield spark
        finally:
            spark.stop()  # ends this run's session; the server and its workers stay warm


def spark_resource() -> SparkResource:
    """The feature job's Spark (see ``SparkResource``)."""
    return SparkResource()
