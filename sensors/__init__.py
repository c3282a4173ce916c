"""Sensors that request work: Kafka lag, landing files, the REST label source."""
