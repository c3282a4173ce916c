"""Getting transactions in: the Kafka topic and the landing directory, into MongoDB.

Owns the transaction contract and its validation (``schema``), reading the topic by event time
(``kafka_source``, ``kafka_admin``), storing a window's records and dead letters
(``transactions``), batch files (``landing``, ``landing_watch``, ``batch_files``) and the pure
plans of what to ingest next (``lag``). A stored transaction goes next to ``features``. May import
the shared kernel and ``fraudstream.store``.
"""
