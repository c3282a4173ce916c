"""The alert sensor against a real local HTTP server: a failed run and a failed blocking check
are posted with what failed; a webhook that refuses fails the tick; no webhook: logged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from fraudstream.reporting.alerts import AlertNotDelivered
from pipeline.resources import AlertWebhookResource
from pipeline.sensors.alerts import alert_sensor


class Webhook:
    """An HTTP server on a free port recording the JSON bodies POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        self.status = status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"channel not found")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fraud"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@dg.asset
def scores() -> int:
    """A stand-in asset whose blocking check fails."""
    return 7


@dg.asset_check(asset=scores, blocking=True)
def flag_rate() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="12.0 % flagged, above the 5 % limit")


@dg.asset
def broken() -> None:
    """A stand-in asset that fails."""
    raise RuntimeError("MongoDB at mongodb://db:27017 is not reachable")


def failure_context(
    instance: dg.DagsterInstance, assets: list, checks: list | None = None
) -> dg.RunFailureSensorContext:
    result = dg.materialize([*assets, *(checks or [])], instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()


def test_a_failed_blocking_check_is_posted_with_the_check_and_its_reason(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_DAGSTER_URL", "http://ui.example:3000/")
    with dg.DagsterInstance.ephemeral() as instance:
        context = failure_context(instance, [scores], [flag_rate])
        alert_sensor(context, alerts=AlertWebhookResource(url=webhook.url))
    [posted] = webhook.received
    alert = posted["alert"]
    assert alert["summary"] == "check scores/flag_rate failed"
    assert alert["failed_checks"] == [
        {"asset": "scores", "check": "flag_rate", "severity": "ERROR",
         "description": "12.0 % flagged, above the 5 % limit"}
    ]  # fmt: skip
    assert alert["run_url"] == f"http://ui.example:3000/runs/{context.dagster_run.run_id}"
    assert "12.0 % flagged" in posted["text"] and context.dagster_run.run_id in posted["text"]


def test_a_failed_run_is_posted_with_its_error(webhook: Webhook) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        context = failure_context(instance, [broken])
        alert_sensor(context, alerts=AlertWebhookResource(url=webhook.url))
    [posted] = webhook.received
    assert posted["alert"]["summary"] == "broken failed"
    assert "MongoDB at mongodb://db:27017 is not reachable" in posted["alert"]["error"]
    assert posted["alert"]["failed_checks"] == []


def test_a_webhook_that_refuses_fails_the_tick_so_the_alert_is_sent_again() -> None:
    refusing = Webhook(status=404)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            context = failure_context(instance, [broken])
            with pytest.raises(AlertNotDelivered, match="answered 404"):
                alert_sensor(context, alerts=AlertWebhookResource(url=refusing.url))
        assert len(refusing.received) == 1
    finally:
        refusing.close()


def test_without_a_webhook_the_alert_is_logged(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FRAUDSTREAM_ALERT_WEBHOOK_URL", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        context = failure_context(instance, [broken])
        capfd.readouterr()
        alert_sensor(context, alerts=AlertWebhookResource())
    logged = capfd.readouterr().err
    assert "no FRAUDSTREAM_ALERT_WEBHOOK_URL set" in logged
    assert "broken failed" in logged and "not reachable" in logged
