"""A stuck import pages a person, end to end: the real daemon watching the simulated Canvas,
scraped by a real Prometheus with the shipped alert rules, routed by a real Alertmanager to a
webhook. Healthy imports page nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.sandbox.knobs import Knobs, Outcome
from consumer.sandbox.local_sqs import LocalSqs
from consumer.sandbox.stack import Sandbox
from tests.support.daemon import Daemon
from tests.support.paging import (
    Webhook,
    alertmanager,
    derive_rules,
    evaluated_after,
    firing,
    has_series,
    prometheus,
)
from tests.support.waiting import await_until

pytestmark = pytest.mark.e2e

ACCOUNT = 1
# The daemon's own thresholds, shortened through its configuration.
FAST = {
    "SIS_CONSUMER_STUCK_RUNNING": "2s",
    "SIS_CONSUMER_STUCK_NEVER_STARTED": "2s",
    "SIS_CONSUMER_STUCK_ORPHANED": "2s",
    "SIS_CONSUMER_GAUGE_INTERVAL": "300ms",
    "SIS_CONSUMER_RECONCILE_AFTER": "1s",
    "SIS_CONSUMER_RECONCILE_SPACING": "50ms",
}


@pytest.fixture
async def sandbox(local_sqs: LocalSqs, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sandbox]:
    async with Sandbox(knobs=Knobs(importing_seconds=0.3), sqs=local_sqs) as sb:
        for key, value in sb.queues.env().items():
            monkeypatch.setenv(key, value)
        yield sb


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook().running() as hook:
        yield hook


@pytest.fixture
def watched(sandbox: Sandbox, tmp_path: Path, webhook: Webhook) -> Iterator[tuple[Daemon, str]]:
    daemon = Daemon(sandbox.queues, tmp_path, **sandbox.env(ACCOUNT), **FAST)
    rules = derive_rules(tmp_path / "alerts.yaml", for_="1s")
    try:
        daemon.start()
        with (
            alertmanager(tmp_path, webhook.url) as am,
            prometheus(tmp_path, rules, f"127.0.0.1:{daemon.port}", am) as prom,
        ):
            yield daemon, prom
    finally:
        daemon.close()


@pytest.mark.usefixtures("watched")
async def test_a_stuck_import_pages(sandbox: Sandbox, webhook: Webhook) -> None:
    sandbox.canvas.plan(ACCOUNT, "imported", stuck=True)
    await sandbox.canvas.start_import(ACCOUNT)

    async def paged() -> bool:
        return any(
            a["labels"]["alertname"] == "SisImportStuckRunningTooLong" and a["status"] == "firing"
            for a in webhook.alerts()
        )

    await await_until(paged, timeout=60, interval=0.5, what="the page at the webhook")
    page = next(a for a in webhook.alerts() if a["labels"]["alertname"] == "SisImportStuckRunningTooLong")
    assert page["labels"]["severity"] == "page"
    assert page["labels"]["account"] == sandbox.canvas.account(ACCOUNT).uuid
    assert page["annotations"]["runbook_url"].endswith("#sisimportstuckrunningtoolong")


async def test_healthy_imports_page_nobody(
    sandbox: Sandbox, watched: tuple[Daemon, str], webhook: Webhook
) -> None:
    _, prom = watched
    outcomes: tuple[Outcome, ...] = ("imported", "imported", "imported_with_messages")
    for outcome in outcomes:
        sandbox.canvas.plan(ACCOUNT, outcome)
        await sandbox.canvas.start_import(ACCOUNT)

    async def all_seen() -> bool:
        return has_series(prom, "sum(canvas_sis_imports_finished_total) >= 3")

    await await_until(all_seen, timeout=60, interval=0.5, what="Prometheus to see three finished imports")
    # Long enough for any rule to have fired (for: 1s) and Alertmanager to have sent (group_wait 1s).
    moment = datetime.now(UTC) + timedelta(seconds=4)

    async def rules_evaluated() -> bool:
        return evaluated_after(prom, moment)

    await await_until(rules_evaluated, timeout=30, interval=0.5, what="rules evaluated since")
    assert [a["labels"]["alertname"] for a in firing(prom) if a["labels"].get("severity") == "page"] == []
    assert webhook.alerts() == []
