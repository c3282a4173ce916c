"""What the pipeline shows people: the numbers and verdicts of the asset checks (``quality``),
Markdown tables and plots for the Dagster UI (``reports``, ``plots``) and the Excel export
(``excel_export``). The end of a transaction's path.

May import the shared kernel, ``fraudstream.store``, ``fraudstream.labels`` and
``fraudstream.ml``.
"""
