"""Helpers shared by the tests (test modules never import each other): producing records
(``producing``), the embedded stack's resources (``stack``), files (``files``), polling a running
system (``waiting``) and driving the UI in a browser (``browser``)."""
