"""The fraudstream Dagster code location: merges the assets, resources and automation."""

import dagster as dg

from definitions.features import transaction_features
from definitions.ingestion import transactions
from definitions.labels import labels
from definitions.models import fraud_models, full_retrain_job
from definitions.predictions import ensemble_predictions
from definitions.resources import (
    KafkaResource,
    LabelApiResource,
    MongoResource,
    spark_resource,
)

defs = dg.Definitions(
    assets=[transactions, labels, transaction_features, fraud_models, ensemble_predictions],
    jobs=[full_retrain_job],
    resources={
        "kafka": KafkaResource(),
        "mongo": MongoResource(),
        "label_api": LabelApiResource(),
        "pyspark": spark_resource(),
    },
)
