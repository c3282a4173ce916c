"""The assets, one module per stage, in the order a transaction meets them: ``ingestion``,
``labels``, ``features``, ``models``, ``predictions``, ``export``, ``quality_report``."""
