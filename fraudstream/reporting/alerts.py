"""Alerts for the people on call: a failed run or a failed check, posted to a webhook.

The payload is JSON that chat webhooks (Slack, Mattermost, Teams' incoming webhooks) show as
is — ``text``, one line per fact — with the same facts as fields under ``alert`` for programs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import requests


class AlertNotDelivered(RuntimeError):
    """The webhook did not accept the alert."""


@dataclass(frozen=True)
class FailedCheck:
    asset: str
    check: str
    severity: str
    description: str


@dataclass(frozen=True)
class Alert:
    """What failed, where, and what to do."""

    summary: str  # one line: what failed
    run_id: str
    job: str
    error: str
    partitions: str | None = None
    failed_checks: list[FailedCheck] = field(default_factory=list)
    run_url: str | None = None

    @property
    def text(self) -> str:
        lines = [f":rotating_light: fraudstream: {self.summary}", f"run {self.run_id} ({self.job})"]
        if self.partitions:
            lines.append(f"partitions: {self.partitions}")
        lines += [
            f"check {c.asset}/{c.check} failed ({c.severity}): {c.description}"
            for c in self.failed_checks
        ]
        lines.append(f"error: {self.error}")
        if self.run_url:
            lines.append(f"logs: {self.run_url}")
        return "\n".join(lines)


def post_alert(url: str, alert: Alert, timeout_seconds: float = 5.0) -> None:
    """POST the alert as JSON; ``AlertNotDelivered`` unless the webhook answers 2xx."""
    try:
        response = requests.post(
            url, json={"text": alert.text, "alert": asdict(alert)}, timeout=timeout_seconds
        )
    except requests.RequestException as error:
        raise AlertNotDelivered(
            f"the alert webhook {url} is unreachable ({type(error).__name__}): check "
            "FRAUDSTREAM_ALERT_WEBHOOK_URL; the sensor retries this failure on its next tick"
        ) from None
    if not response.ok:
        raise AlertNotDelivered(
            f"the alert webhook {url} answered {response.status_code} "
            f"({response.text[:200]!r}): check FRAUDSTREAM_ALERT_WEBHOOK_URL and the webhook's "
            "settings; the sensor retries this failure on its next tick"
        )
