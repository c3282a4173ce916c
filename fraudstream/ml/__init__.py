"""The models and their lifecycle: the three-model ensemble (``models``, ``ensemble``), training
sets from labelled features (``training_data``), when to refit and whether to promote
(``lifecycle``, ``training``), the versioned registry (``registry``), scoring a window with its
best version (``scoring``) and re-scoring when a better one lands (``rescoring``); ``metrics``
are the ranking and alert measures everything reports.

Scores go next to reporting (checks, reports, the Excel export). May import the shared kernel,
``fraudstream.store``, ``fraudstream.labels`` and ``fraudstream.features``.
"""
