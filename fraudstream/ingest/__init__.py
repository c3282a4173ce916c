"""Getting transactions in: the Kafka topic and the landing directory, into MongoDB.

Owns the transaction contract and its validation (``schema``), reading the topic by event time
(``kafka_source``, ``offset_search``, ``kafka_admin``), routing each record of a scan to its
window, a late record's own window or the dead letters (``routing``), storing a range
(``transactions``, with its plan and report in ``report``), batch files (``landing``,
``landing_watch``, ``batch_files``) and the pure plans of what to ingest next (``lag``,
``landing_plan``). A stored transaction goes next to ``features``. May import
the shared kernel and ``fraudstream.store``.
"""
