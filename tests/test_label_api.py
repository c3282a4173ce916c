"""The simulated partner's label feed and its real HTTP API."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from fraudstream.tooling.simulator.label_feed import LabelFeed, append_labels, feed_path

NOW = datetime.now(UTC)


def test_labels_are_served_in_order_from_their_report_time_and_the_cursor_skips_none(
    tmp_path: Path,
) -> None:
    append_labels(
        tmp_path, [("a", 0, NOW - timedelta(hours=2)), ("b", 1, NOW + timedelta(hours=1))]
    )
    feed = LabelFeed(feed_path(tmp_path))

    page, cursor = feed.page(None, 10, datetime.now(UTC))
    assert [item.transaction_id for item in page] == ["a"]
    assert feed.page(cursor, 10, datetime.now(UTC)) == ([], None)

    append_labels(tmp_path, [("c", 0, NOW - timedelta(days=3))])  # reported long ago, sent late
    page, cursor = feed.page(cursor, 10, datetime.now(UTC))
    assert [item.transaction_id for item in page] == ["c"]
    page, _ = feed.page(cursor, 10, NOW + timedelta(hours=2))
    assert [item.transaction_id for item in page] == ["b"]


def test_pages_respect_the_limit(tmp_path: Path) -> None:
    append_labels(tmp_path, [(f"t{i}", i % 2, NOW - timedelta(minutes=i)) for i in range(25)])
    feed, cursor, seen = LabelFeed(feed_path(tmp_path)), None, []
    while True:
        page, next_cursor = feed.page(cursor, 10, datetime.now(UTC))
        if next_cursor is None:
            break
        assert len(page) <= 10
        seen += [item.transaction_id for item in page]
        cursor = next_cursor
    assert sorted(seen) == sorted(f"t{i}" for i in range(25))


def test_the_http_api_follows_the_contract_and_requires_the_token(api: str, tmp_path: Path) -> None:
    append_labels(tmp_path, [("t1", 1, NOW - timedelta(minutes=5))])
    auth = {"Authorization": "Bearer s3cret"}
    assert requests.get(f"{api}/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{api}/labels", timeout=5).status_code == 401

    body = requests.get(f"{api}/labels", headers=auth, timeout=5).json()
    assert body["items"] == [
        {"transaction_id": "t1", "tx_fraud": 1, "reported_at": body["items"][0]["reported_at"]}
    ]
    assert datetime.fromisoformat(body["items"][0]["reported_at"]) < NOW
    again = requests.get(
        f"{api}/labels", params={"cursor": body["next_cursor"]}, headers=auth, timeout=5
    ).json()
    assert again == {"items": [], "next_cursor": None}
    bad = requests.get(f"{api}/labels", params={"cursor": "junk"}, headers=auth, timeout=5)
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]
