"""The embedded stack: real MongoDB, a Kafka-protocol broker and the label API on one machine."""
