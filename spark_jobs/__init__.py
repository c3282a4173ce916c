"""PySpark transformations: pure functions of DataFrames, run through dagster-pyspark."""
