"""A stuck import pages a person, end to end: the real daemon watching the simulated Canvas,
scraped by a real Prometheus with the shipped alert rules, routed by a real Alertmanager to a
webhook. Healthy imports page nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.adapters.store_sqlite import open_sqlite
from consumer.core.tracker import Observation, State
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
from tests.support.records import OTHER_ACCOUNT
from tests.support.waiting import await_until

pytestmark = pytest.mark.e2e

ACCOUNT = 1
RUNNING_TOO_LONG = "SisImportStuckRunningTooLong"
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


@contextmanager
def watching(
    daemon: Daemon, workdir: Path, webhook: Webhook, *, keep_firing: bool = True
) -> Iterator[tuple[Daemon, str]]:
    """`daemon` started, scraped by a real Prometheus with the shipped rules (import alerts with
    `for: 1s`), routed by a real Alertmanager to `webhook`."""
    rules = derive_rules(workdir / "alerts.yaml", for_="1s", keep_firing=keep_firing)
    try:
        daemon.start()
        with (
            alertmanager(workdir, webhook.url) as am,
            prometheus(workdir, rules, f"127.0.0.1:{daemon.port}", am) as prom,
        ):
            yield daemon, prom
    finally:
        daemon.close()


@pytest.fixture
def watched(sandbox: Sandbox, tmp_path: Path, webhook: Webhook) -> Iterator[tuple[Daemon, str]]:
    daemon = Daemon(sandbox.queues, tmp_path, **sandbox.env(ACCOUNT), **FAST)
    with watching(daemon, tmp_path, webhook) as watched:
        yield watched


async def _evaluated_a_while_after_now(prom: str) -> None:
    """Long enough for any rule to have fired (for: 1s) and Alertmanager to have sent (group_wait
    1s): every rule group evaluated at least 4 s from now."""
    moment = datetime.now(UTC) + timedelta(seconds=4)

    async def rules_evaluated() -> bool:
        return evaluated_after(prom, moment)

    await await_until(rules_evaluated, timeout=30, interval=0.5, what="rules evaluated since")


def _pages(prom: str) -> list[str]:
    return [a["labels"]["alertname"] for a in firing(prom) if a["labels"].get("severity") == "page"]


@pytest.mark.usefixtures("watched")
async def test_a_stuck_import_pages(sandbox: Sandbox, webhook: Webhook) -> None:
    sandbox.canvas.plan(ACCOUNT, "imported", stuck=True)
    await sandbox.canvas.start_import(ACCOUNT)

    async def paged() -> bool:
        return any(
            a["labels"]["alertname"] == RUNNING_TOO_LONG and a["status"] == "firing" for a in webhook.alerts()
        )

    await await_until(paged, timeout=60, interval=0.5, what="the page at the webhook")
    page = next(a for a in webhook.alerts() if a["labels"]["alertname"] == RUNNING_TOO_LONG)
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
    await _evaluated_a_while_after_now(prom)
    assert _pages(prom) == []
    assert webhook.alerts() == []


async def test_a_deploy_while_an_import_is_stuck_sends_exactly_one_notification(
    sandbox: Sandbox, watched: tuple[Daemon, str], webhook: Webhook
) -> None:
    """The daemon is stopped and a new one started (its series go stale in between): the page
    holds through the gap (`keep_firing_for`) instead of resolving and paging again."""
    daemon, prom = watched
    sandbox.canvas.plan(ACCOUNT, "imported", stuck=True)
    await sandbox.canvas.start_import(ACCOUNT)

    async def paged() -> bool:
        return bool(webhook.notifications(RUNNING_TOO_LONG))

    await await_until(paged, timeout=60, interval=0.5, what="the page at the webhook")
    assert daemon.stop() == 0

    # The template stops the old task before the new one runs: a scrape fails in between (a stop
    # can take less than a scrape interval, so wait for that failed scrape rather than hope).
    async def gap_seen() -> bool:
        return has_series(prom, 'up{job="sis-consumer"} == 0')

    await await_until(gap_seen, timeout=60, interval=0.2, what="a failed scrape while no daemon runs")
    following = daemon.successor().start()

    async def back() -> bool:
        # The new process (another start time) scraped, with the stuck import.
        return all(
            has_series(prom, query)
            for query in (
                'up{job="sis-consumer"} == 1',
                'changes(process_start_time_seconds{job="sis-consumer"}[1m]) > 0',
                "canvas_sis_import_stuck_info",
            )
        )

    await await_until(back, timeout=60, interval=0.5, what="the new daemon's series")
    await _evaluated_a_while_after_now(prom)
    following.close()
    assert len(webhook.notifications(RUNNING_TOO_LONG)) == 1


async def test_a_healthy_night_with_no_imports_pages_nobody(
    sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    """Nothing runs tonight. The scheduled account's last success is 25 h old, within its 26 h; the
    account that only ever had a one-off upload, 3 days ago, has no schedule."""
    scheduled = sandbox.canvas.account(ACCOUNT).uuid
    daemon = Daemon(
        sandbox.queues,
        tmp_path,
        **sandbox.env(ACCOUNT),
        SIS_CONSUMER_ACCOUNTS=f"{scheduled},{OTHER_ACCOUNT}",
        SIS_CONSUMER_EXPECT_SUCCESS_EVERY=f"{scheduled}=26h",
    )
    now = datetime.now(UTC)
    async with open_sqlite(daemon.db) as store:
        for account, batch, ago in (
            (scheduled, 501, timedelta(hours=25)),
            (OTHER_ACCOUNT, 9, timedelta(days=3)),
        ):
            for state, at in (
                (State.IMPORTING, now - ago - timedelta(minutes=20)),
                (State.IMPORTED, now - ago),
            ):
                await store.apply(Observation(account, batch, state, at, account_id="1"), now)

    with watching(daemon, tmp_path, webhook) as (_, prom):

        async def last_successes_scraped() -> bool:
            return has_series(prom, "count(canvas_sis_import_last_success_timestamp_seconds) == 2")

        await await_until(
            last_successes_scraped, timeout=60, interval=0.5, what="both accounts' last success"
        )
        await _evaluated_a_while_after_now(prom)
        assert _pages(prom) == []
    assert webhook.alerts() == []


async def test_a_learned_threshold_pages_a_fast_accounts_stuck_import_long_before_the_fixed_two_hours(
    sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    """Three sub-second imports teach the account its pace: a stuck import pages after seconds (the
    learning floor is 2 s), not after SIS_CONSUMER_STUCK_RUNNING (2 h, left at its default). The
    page leads to the import: Canvas account id, SIS import id, the Canvas URLs, the threshold."""
    daemon = Daemon(
        sandbox.queues,
        tmp_path,
        **sandbox.env(ACCOUNT),
        SIS_CONSUMER_GAUGE_INTERVAL="300ms",
        SIS_CONSUMER_STUCK_LEARN_AFTER="3",
        SIS_CONSUMER_STUCK_LEARN_FLOOR="2s",
    )
    with watching(daemon, tmp_path, webhook) as (_, prom):
        for _ in range(3):
            sandbox.canvas.plan(ACCOUNT, "imported")
            await sandbox.canvas.start_import(ACCOUNT)

        async def learned() -> bool:
            # Twice the slowest run, at least the floor: a few seconds on a busy machine.
            return has_series(
                prom, 'canvas_sis_import_stuck_threshold_seconds{reason="running_too_long"} < 60'
            )

        await await_until(learned, timeout=60, interval=0.5, what="the learned threshold on /metrics")
        threshold = daemon.sample("canvas_sis_import_stuck_threshold_seconds", reason="running_too_long")
        sandbox.canvas.plan(ACCOUNT, "imported", stuck=True)
        stuck = await sandbox.canvas.start_import(ACCOUNT)

        async def paged() -> bool:
            return bool(webhook.notifications(RUNNING_TOO_LONG))

        await await_until(paged, timeout=60, interval=0.5, what="the page at the webhook")
    (page,) = [a for a in webhook.alerts() if a["labels"]["alertname"] == RUNNING_TOO_LONG]
    account = sandbox.canvas.account(ACCOUNT)
    canvas = sandbox.canvas.url
    assert page["labels"]["sis_batch_id"] == str(stuck.id)
    assert page["annotations"]["canvas_account_id"] == str(account.id)
    assert page["annotations"]["canvas_ui_url"] == f"{canvas}/accounts/{account.id}/sis_import"
    assert (
        page["annotations"]["canvas_api_url"]
        == f"{canvas}/api/v1/accounts/{account.id}/sis_imports/{stuck.id}"
    )
    # Prometheus's humanizeDuration of a few seconds: "%.4gs".
    assert (
        f"importing longer than {threshold:.4g}s (its account's threshold)"
        in page["annotations"]["description"]
    )
