"""Sensors that request work: Kafka lag, landing files, the label API, and re-scoring when a
better model version lands. Each reads state, calls a pure planner and returns run requests."""
