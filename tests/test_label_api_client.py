"""The label API client against a partner that answers garbage: every answer that is not the
contract ends the request within a bounded time with a message, and the cursor is never moved."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fraudstream.labels import api_client
from fraudstream.labels.api_client import LabelApiClient, LabelApiUnavailable

ANSWERS = {
    "/null-items/labels": b'{"items": null, "next_cursor": null}',
    "/not-json/labels": b"<html>502 Bad Gateway</html>",
    "/no-items/labels": b'{"labels": []}',
    "/numeric-cursor/labels": b'{"items": [], "next_cursor": 42}',
    "/not-an-object/labels": b"[1, 2, 3]",
}


class GarbageHandler(BaseHTTPRequestHandler):
    """A partner API gone wrong, one way per path."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if path == "/flood/labels":
            chunk = b"x" * 1_048_576
            for _ in range(api_client.MAX_BODY_BYTES // len(chunk) + 2):
                self.wfile.write(chunk)
        elif path == "/drip/labels":
            for byte in b'{"items": [], "next_cursor": null}':
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        else:
            self.wfile.write(ANSWERS[path])

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def garbage_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), GarbageHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", sorted(path.split("/")[1] for path in ANSWERS))
def test_an_answer_that_is_not_the_contract_is_refused_with_the_reason(
    garbage_api: str, mode: str
) -> None:
    with (
        LabelApiClient(f"{garbage_api}/{mode}", retries=0) as client,
        pytest.raises(LabelApiUnavailable, match=r"not .*items.*cursor was not moved"),
    ):
        client.page("c-1")


def test_a_flood_ends_the_request_at_the_size_limit(garbage_api: str) -> None:
    with (
        LabelApiClient(f"{garbage_api}/flood", retries=0) as client,
        pytest.raises(LabelApiUnavailable, match=r"more than .* bytes"),
    ):
        client.page(None)


def test_a_slow_drip_ends_the_request_at_the_time_limit(
    garbage_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_client, "BODY_SECONDS", 1.0)
    started = time.monotonic()
    with (
        LabelApiClient(f"{garbage_api}/drip", retries=0) as client,
        pytest.raises(LabelApiUnavailable, match="took more than 1 s"),
    ):
        client.page(None)
    assert time.monotonic() - started < 1.0 + api_client.TIMEOUT_SECONDS
