"""Fraud labels: their contract and storage (``loading``), the partner's REST API (``api_client``)
and the two ways labels arrive — landing files and the API's cursor (``sources``).

Labels feed the terminal-risk features (known frauds, after the feedback delay) and training.
May import the shared kernel, ``fraudstream.store`` and ``fraudstream.ingest`` (landing files and
the record contract's errors).
"""
