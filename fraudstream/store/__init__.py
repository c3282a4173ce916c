"""The persistence gateway: the one way into MongoDB.

Owns the connection (credentials, TLS), the collection names and their indexes, and the retried
write path every stage writes through; nothing else in fraudstream imports ``pymongo``. May import
only the shared kernel (``fraudstream.config``, ``fraudstream.batching``, ``fraudstream.windows``).
"""
