"""Development tooling beside the domain: the embedded stack that runs real services on one
machine (``stack``), the traffic and label simulator (``simulator``), the demo (``demo``) and the
``fraudstream`` command line (``cli``).

Nothing in the domain imports it. May import every domain package, and Dagster (its instance's
run launcher).
"""
