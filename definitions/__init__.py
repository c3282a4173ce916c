"""The fraudstream Dagster code location: merges the assets, resources and automation."""

import dagster as dg

from definitions.ingestion import transactions
from definitions.resources import KafkaResource, MongoResource

defs = dg.Definitions(
    assets=[transactions],
    resources={"kafka": KafkaResource(), "mongo": MongoResource()},
)
