"""The fraudstream Dagster code location: merges the assets, resources and automation."""

import dagster as dg

from definitions.automation import automation_sensor
from definitions.checks import quality_checks
from definitions.export import excel_export
from definitions.features import transaction_features
from definitions.ingestion import transactions
from definitions.labels import labels
from definitions.models import fraud_models, full_retrain_job
from definitions.predictions import ensemble_predictions
from definitions.quality_report import model_quality_report
from definitions.resources import (
    KafkaResource,
    LabelApiResource,
    MongoResource,
    QualityResource,
    RescoringResource,
    spark_resource,
)
from definitions.schedules import (
    daily_full_retrain_schedule,
    hourly_training_job,
    hourly_training_schedule,
)
from sensors.kafka_lag import kafka_lag_sensor
from sensors.label_api import label_api_sensor
from sensors.landing_files import landing_files_sensor
from sensors.model_rescoring import model_rescoring_sensor

defs = dg.Definitions(
    assets=[
        transactions,
        labels,
        transaction_features,
        fraud_models,
        ensemble_predictions,
        excel_export,
        model_quality_report,
    ],
    asset_checks=quality_checks,
    # One process per run: the multiprocess executor costs ~1.4 s per step (DESIGN.md), and one
    # Spark session per run is the rule.
    executor=dg.in_process_executor,
    jobs=[full_retrain_job, hourly_training_job],
    schedules=[hourly_training_schedule, daily_full_retrain_schedule],
    sensors=[
        kafka_lag_sensor,
        landing_files_sensor,
        label_api_sensor,
        model_rescoring_sensor,
        automation_sensor,
    ],
    resources={
        "kafka": KafkaResource(),
        "mongo": MongoResource(),
        "label_api": LabelApiResource(),
        "pyspark": spark_resource(),
        "quality_limits": QualityResource(),
        "rescoring": RescoringResource(),
    },
)
