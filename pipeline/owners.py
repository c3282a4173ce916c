"""Who answers for an asset (shown in the UI and usable in asset selections: `owner:team:ml`)."""

DATA_ENGINEERING = ["team:data-engineering"]  # ingestion, features, exports
ML = ["team:ml"]  # models, scoring, their quality
