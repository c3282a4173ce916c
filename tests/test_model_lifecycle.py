"""The model lifecycle hands-free, in-process on real MongoDB: a catch-up whose features arrive
half a day at a time, driven by the real automation conditions and the re-scoring sensor (their
requests executed as the daemon would: ranges as single runs). Training lags scoring by one
arrival, as in a real catch-up where a full fit takes longer than scoring a range: each version
lands after windows it could have scored. Full refits must follow the data time, and every
window must end scored by the best version it may use, consistently across `ensemble_results`,
`model_predictions` and `flagged_transactions`."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import dagster as dg
import numpy as np
import pytest

from definitions import defs
from fraudstream.config import StackRecord
from fraudstream.features.contract import FEATURE_COLUMNS
from fraudstream.ml.registry import ModelRegistry
from fraudstream.ml.rescoring import RescoringPolicy, best_for_window, is_clearly_better
from fraudstream.ml.scoring import windows_to_rescore
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import WINDOW, partition_key, window_start
from pipeline.resources import MongoResource, RescoringResource
from pipeline.sensors.model_rescoring import model_rescoring_sensor

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS, LABELLED_DAYS, TX_PER_DAY = 4, 3, 1_500
CHUNK = timedelta(hours=12)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
LIFECYCLE = ["fraud_models", "ensemble_predictions"]


def seed_features(store: MongoStore) -> None:
    """Feature documents for ``DAYS`` days (fraud when the first two columns are high, ~3 %)
    and the labels of the first ``LABELLED_DAYS`` days, all known from the start."""
    rng = np.random.default_rng(11)
    n = DAYS * TX_PER_DAY
    values = rng.normal(size=(n, len(FEATURE_COLUMNS)))
    fraud = (values[:, 0] + values[:, 1] + rng.normal(0, 0.5, n) > 2.7).astype(int)
    times = [START + timedelta(days=DAYS) * i / n for i in range(n)]
    now = datetime.now(UTC)
    store.collection("transaction_features").insert_many(
        {"_id": f"t{i}", "tx_datetime": times[i], "partition_key": partition_key(times[i]),
         "customer_id": f"c{i % 300}", "terminal_id": f"p{i % 200}", "first_computed_at": now,
         **dict(zip(FEATURE_COLUMNS, map(float, values[i]), strict=True))}
        for i in range(n)
    )  # fmt: skip
    labelled_until = START + timedelta(days=LABELLED_DAYS)
    store.collection("labels").insert_many(
        {"_id": f"t{i}", "tx_fraud": int(fraud[i]), "loaded_at": now, "source": "test"}
        for i in range(n)
        if times[i] < labelled_until
    )


class Daemon:
    """The daemon's part, in-process: automation ticks and re-scoring sensor ticks whose
    requests run at once, each asset's consecutive partitions as one run."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict[str, object]) -> None:
        self.instance = instance
        self.resources = resources
        self.cursor = None
        self.sensor_cursor: str | None = None
        self.lagging: list[tuple[str, str]] = []
        self.rescoring_runs = 0

    def features_arrive(self, first: datetime, end: datetime) -> None:
        for start in windows(first, end):
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization("transaction_features", partition=partition_key(start))
            )

    def automation_tick(self, at: datetime) -> None:
        result = dg.evaluate_automation_conditions(
            defs,
            self.instance,
            asset_selection=dg.AssetSelection.assets(*LIFECYCLE),
            evaluation_time=at,
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        requested = {
            asset: consecutive(sorted(result.get_requested_partitions(dg.AssetKey(asset))), asset)
            for asset in LIFECYCLE
        }
        for first, last in requested["ensemble_predictions"]:
            self.run("ensemble_predictions", {RANGE_START: first, RANGE_END: last})
        self.train_lagging()
        self.lagging = requested["fraud_models"]

    def train_lagging(self) -> None:
        """The training runs the previous tick asked for (they finish after this tick's
        scoring)."""
        for first, last in self.lagging:
            self.run("fraud_models", {RANGE_START: first, RANGE_END: last})
        self.lagging = []

    def rescoring_tick(self) -> int:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.sensor_cursor, resources=self.resources
        )
        result = model_rescoring_sensor(context)
        self.sensor_cursor = result.cursor
        starts = [request.tags[RANGE_START] for request in result.run_requests or []]
        assert starts == sorted(starts, reverse=True), "the newest windows are re-scored first"
        for request in result.run_requests or []:
            self.run("ensemble_predictions", request.tags)
        self.rescoring_runs += len(result.run_requests or [])
        return len(result.run_requests or [])

    def run(self, asset: str, tags: dict[str, str]) -> None:
        selected = [a for a in defs.assets if a.key == dg.AssetKey(asset)]
        result = dg.materialize(
            selected, instance=self.instance, resources=self.resources, tags=dict(tags)
        )
        assert result.success, f"{asset} {tags}"


def windows(first: datetime, end: datetime) -> Iterator[datetime]:
    start = first
    while start < end:
        yield start
        start += WINDOW


def consecutive(keys: list[str], asset: str) -> list[tuple[str, str]]:
    """Runs of consecutive partition keys (hourly or 10-minute) as (first, last) pairs."""
    step = timedelta(hours=1) if asset == "fraud_models" else WINDOW
    parse = "%Y-%m-%d-%H:%M"
    runs: list[tuple[str, str]] = []
    for key in keys:
        moment = datetime.strptime(key, parse).replace(tzinfo=UTC)
        if runs and datetime.strptime(runs[-1][1], parse).replace(tzinfo=UTC) + step == moment:
            runs[-1] = (runs[-1][0], key)
        else:
            runs.append((key, key))
    return runs


@pytest.mark.slow
def test_a_catch_up_refits_in_data_time_and_ends_with_every_window_on_its_best_version(
    stack: StackRecord, database: str, store: MongoStore
) -> None:
    seed_features(store)
    mongo = MongoResource(uri=stack.mongo_uri, database=database)
    daemon = Daemon(
        dg.DagsterInstance.ephemeral(),
        {"mongo": mongo, "rescoring": RescoringResource(max_windows_per_run=36)},
    )
    # Ticks on the wall clock, as the daemon's (the data is older): 3 minutes apart, so each
    # passes the 2-minute retry of windows left unscored for want of a model.
    ticks = (datetime.now(UTC) + timedelta(minutes=3 * n) for n in range(100))
    chunk_start = START
    while chunk_start < START + timedelta(days=DAYS):
        daemon.features_arrive(chunk_start, chunk_start + CHUNK)
        daemon.automation_tick(next(ticks))
        daemon.rescoring_tick()
        chunk_start += CHUNK
    for _ in range(3):
        daemon.automation_tick(next(ticks))
    daemon.train_lagging()
    while daemon.rescoring_tick():
        pass

    registry = ModelRegistry(store)
    versions = sorted(
        (registry.get(d["_id"]) for d in store.collection("models").find({}, {"_id": 1})),
        key=lambda v: v.version,
    )
    full_fits = [v for v in versions if v.kind == "full"]
    # Refits follow the data: never more than a day of data time (plus one half-day arrival)
    # between full fits while labelled data keeps coming, and the last one knows every label.
    assert len(full_fits) >= 3, [v.fit_reason for v in versions]
    gaps = [b.trained_until - a.trained_until for a, b in pairwise(full_fits)]
    assert max(gaps) <= timedelta(days=1) + CHUNK, [v.fit_reason for v in versions]
    last_label = START + timedelta(days=LABELLED_DAYS)
    assert full_fits[-1].data_until >= last_label - timedelta(minutes=2)
    assert all(v.decision for v in versions) and all(v.gate for v in versions)

    # Every window is scored once, in every collection, by a version trained before it: its
    # best, or one the best is not clearly better than (the re-scoring policy's bound on cost).
    summaries = registry.promoted_summaries(START)
    by_number = {v.version: v for v in summaries}
    results = {d["_id"]: d for d in store.collection("ensemble_results").find()}
    predictions = {d["_id"]: d for d in store.collection("model_predictions").find()}
    flagged = {d["_id"] for d in store.collection("flagged_transactions").find()}
    times = {
        d["_id"]: d["tx_datetime"]
        for d in store.collection("transaction_features").find({}, {"tx_datetime": 1})
    }
    assert len(results) == len(predictions) == DAYS * TX_PER_DAY
    policy = RescoringPolicy()
    for tid, result in results.items():
        start = window_start(times[tid])
        best, used = by_number[best_for_window(summaries, start).version], result["model_version"]
        assert by_number[used].data_until < start or best.data_until >= start, tid  # no leak
        assert used == best.version or not is_clearly_better(best, by_number[used], policy), tid
        assert predictions[tid]["model_version"] == result["model_version"]
        assert (tid in flagged) == result["flagged"]
    assert windows_to_rescore(store, registry, policy) == []

    # The unlabelled last day is scored by a version that learned from every label.
    final_day = [r for r in results.values() if r["partition_key"] >= partition_key(last_label)]
    assert {registry.get(r["model_version"]).data_until >= last_label - timedelta(minutes=2)
            for r in final_day} == {True}  # fmt: skip
    rescored = store.collection("scored_windows").count_documents({"replaced_version": {"$gt": 0}})
    assert daemon.rescoring_runs >= 1 and rescored >= 1


def test_the_rescoring_sensor_waits_for_its_unfinished_runs() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB",
            status=dg.DagsterRunStatus.STARTED,
            tags={"fraudstream/trigger": "model_rescoring_sensor"},
        )
    )
    # The sensor looks at its runs before MongoDB: this address is never dialled.
    resources = {
        "mongo": MongoResource(uri="mongodb://127.0.0.1:9", database="unused"),
        "rescoring": RescoringResource(),
    }
    context = dg.build_sensor_context(instance=instance, cursor='{"w": 3}', resources=resources)
    result = model_rescoring_sensor(context)
    assert not result.run_requests and result.cursor == '{"w": 3}'
    assert "waiting for 1 re-scoring run(s)" in result.skip_reason.skip_message
