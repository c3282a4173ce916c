"""The simulated partner's REST label API (contract: docs/contracts.md).

``GET /labels?cursor=<c>&limit=<n>`` returns ``{"items": [...], "next_cursor": str | null}``;
``next_cursor`` is null when nothing new is available (keep the old cursor and ask again later).
``GET /health`` answers ``{"status": "ok"}``. When ``FRAUDSTREAM_LABEL_API_TOKEN`` is set the API
requires ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import orjson

from fraudstream.tooling.simulator.label_feed import LabelFeed, feed_path

MAX_PAGE = 5_000
log = logging.getLogger(__name__)


def make_server(state_dir: Path, port: int, token: str | None) -> ThreadingHTTPServer:
    """An HTTP server for the state dir's label feed on 127.0.0.1:``port``."""
    feed = LabelFeed(feed_path(state_dir))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/health":
                self._reply(HTTPStatus.OK, {"status": "ok"})
                return
            if url.path != "/labels":
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
                return
            if token and not hmac.compare_digest(
                self.headers.get("Authorization", ""), f"Bearer {token}"
            ):
                self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
                return
            query = parse_qs(url.query)
            try:
                limit = min(int(query.get("limit", [str(MAX_PAGE)])[0]), MAX_PAGE)
                items, next_cursor = feed.page(
                    query.get("cursor", [None])[0], limit, datetime.now(UTC)
                )
            except ValueError as error:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            self._reply(
                HTTPStatus.OK,
                {"items": [item.to_api() for item in items], "next_cursor": next_cursor},
            )

        def _reply(self, status: HTTPStatus, body: dict[str, object]) -> None:
            payload = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = make_server(args.state_dir, args.port, os.environ.get("FRAUDSTREAM_LABEL_API_TOKEN"))
    log.info("label API serving %s on port %d", feed_path(args.state_dir), args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
