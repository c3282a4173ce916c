"""The fraudstream Dagster code location: merges the assets, resources and automation."""

import dagster as dg

from pipeline.assets.export import excel_export
from pipeline.assets.features import transaction_features
from pipeline.assets.ingestion import transactions
from pipeline.assets.labels import labels
from pipeline.assets.models import fraud_models
from pipeline.assets.predictions import ensemble_predictions
from pipeline.assets.quality_report import model_quality_report
from pipeline.automation import automation_sensor, quality_report_automation_sensor
from pipeline.checks import quality_checks
from pipeline.resources import (
    AlertWebhookResource,
    KafkaResource,
    LabelApiResource,
    MongoResource,
    QualityResource,
    RescoringResource,
    spark_resource,
)
from pipeline.schedules import (
    daily_full_retrain_schedule,
    full_retrain_job,
    hourly_training_job,
    hourly_training_schedule,
)
from pipeline.sensors.alerts import alert_sensor
from pipeline.sensors.kafka_lag import kafka_lag_sensor
from pipeline.sensors.label_api import label_api_sensor
from pipeline.sensors.landing_files import landing_files_sensor
from pipeline.sensors.model_rescoring import model_rescoring_sensor

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
    # One process per run: the multiprocess executor costs ~1.4 s per step (bench/README.md).
    executor=dg.in_process_executor,
    jobs=[full_retrain_job, hourly_training_job],
    schedules=[hourly_training_schedule, daily_full_retrain_schedule],
    sensors=[
        kafka_lag_sensor,
        landing_files_sensor,
        label_api_sensor,
        model_rescoring_sensor,
        automation_sensor,
        quality_report_automation_sensor,
        alert_sensor,
    ],
    resources={
        "kafka": KafkaResource(),
        "mongo": MongoResource(),
        "label_api": LabelApiResource(),
        "spark": spark_resource(),
        "quality_limits": QualityResource(),
        "rescoring": RescoringResource(),
        "alerts": AlertWebhookResource(),
    },
)
