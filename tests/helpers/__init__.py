"""Helpers shared by the tests (test modules never import each other): producing records
(``producing``), the embedded stack's resources (``stack``), landing files (``files``), polling a
running system (``waiting``), reading the UI's state (``dagster_ui``) and driving the UI in a
browser (``browser``)."""
