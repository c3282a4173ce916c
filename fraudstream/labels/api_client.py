"""Client of the partner's label API (contract: docs/contracts.md, ``GET <url>?cursor=<c>``).

Every request has a timeout; connection errors and 429/5xx answers are retried with exponential
backoff a bounded number of times, then raise ``LabelApiUnavailable`` saying what to check. A body
is read within ``BODY_SECONDS`` and ``MAX_BODY_BYTES`` (a slow drip or a flood ends the request
too) and must be the contract's ``{"items": [...], "next_cursor": ...}``. The bearer token comes
from the environment (``FRAUDSTREAM_LABEL_API_TOKEN``), never from code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from fraudstream.config import ServiceUnavailable
from fraudstream.ingest.schema import InvalidRecord
from fraudstream.labels.loading import Label, label_from_fields

PAGE_LIMIT = 5_000


TIMEOUT_SECONDS = 5.0  # connect and read, per request
RETRIES = 3
MAX_BODY_BYTES = 16 * 1024 * 1024  # a page of 5,000 labels is ~0.5 MB
BODY_SECONDS = 30.0  # the whole body, however slowly it trickles


class LabelApiUnavailable(ServiceUnavailable):
    """The label API could not be reached or answered with an error."""


@dataclass(frozen=True)
class LabelPage:
    """One answer of the API: valid labels, invalid items with their reason, the next cursor."""

    labels: list[Label]
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    next_cursor: str | None = None


class LabelApiClient:
    """Reads labels page by page from a cursor."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        retries: int = RETRIES,
        backoff: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LabelApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page(self, cursor: str | None, limit: int = PAGE_LIMIT) -> LabelPage:
        """The labels available after ``cursor`` (from the beginning when None)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        endpoint = f"{self.url}/labels"
        try:
            response = self.session.get(endpoint, params=params, timeout=self.timeout, stream=True)
            content = _bounded_body(response, endpoint)
        except requests.RequestException as error:
            raise LabelApiUnavailable(
                f"label API {endpoint} is unreachable ({type(error).__name__}); check "
                "FRAUDSTREAM_LABEL_API_URL and that the service is up. The cursor was not moved."
            ) from None
        if response.status_code in (401, 403):
            raise LabelApiUnavailable(
                f"label API {endpoint} refused the credentials (HTTP {response.status_code}): "
                "set FRAUDSTREAM_LABEL_API_TOKEN to a valid token. The cursor was not moved."
            )
        if response.status_code != 200:
            raise LabelApiUnavailable(
                f"label API {endpoint} answered HTTP {response.status_code} after retries: "
                f"{content[:200]!r}. The cursor was not moved; the next tick retries."
            )
        try:
            body = orjson.loads(content)
            items, next_cursor = body["items"], body.get("next_cursor")
            if not isinstance(items, list) or not isinstance(next_cursor, str | None):
                raise TypeError("not the contract")
        except (ValueError, KeyError, TypeError):
            raise LabelApiUnavailable(
                f"label API {endpoint} answered something that is not "
                '{"items": [...], "next_cursor": ...}: check the URL points at the label API. '
                "The cursor was not moved."
            ) from None
        labels, invalid = [], []
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise InvalidRecord(f"an item must be a JSON object, got {item!r:.80}")
                labels.append(label_from_fields({str(k).lower(): v for k, v in item.items()}))
            except InvalidRecord as error:
                invalid.append((item, str(error)))
        return LabelPage(labels, invalid, next_cursor)

    def pages(
        self, cursor: str | None, limit: int = PAGE_LIMIT
    ) -> Iterator[tuple[str | None, LabelPage]]:
        """Pages from ``cursor`` until nothing new is available, each with the cursor it was
        read from."""
        while True:
            page = self.page(cursor, limit)
            yield cursor, page
            if page.next_cursor is None or page.next_cursor == cursor:
                return
            cursor = page.next_cursor


def _bounded_body(response: requests.Response, endpoint: str) -> bytes:
    """The response body, or ``LabelApiUnavailable`` when it is larger than ``MAX_BODY_BYTES`` or
    takes longer than ``BODY_SECONDS`` to arrive."""
    deadline, chunks, size = time.monotonic() + BODY_SECONDS, [], 0
    with response:
        # read1: whatever has arrived (a fixed-size read would wait for the whole chunk).
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise LabelApiUnavailable(
                    f"label API {endpoint} answered more than {MAX_BODY_BYTES:,} bytes: not a "
                    "page of labels. The cursor was not moved."
                )
            if time.monotonic() > deadline:
                raise LabelApiUnavailable(
                    f"label API {endpoint} took more than {BODY_SECONDS:.0f} s to send one "
                    "page. The cursor was not moved; the next tick retries."
                )
    return b"".join(chunks)
