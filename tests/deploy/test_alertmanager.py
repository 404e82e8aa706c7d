"""The shipped Alertmanager configuration in a real Alertmanager (Debian's package): alerts posted
as Prometheus posts them, labelled as the shipped rules label them, and its receivers pointed at
local sinks (PagerDuty's events and the heartbeat at a webhook, ticket mail at an SMTP server).
Routes, grouping, inhibitions, silences and templates are the shipped ones; only the timings run
60 times faster. Every wait is for a condition, with a deadline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.mail import MailSink
from tests.support.paging import (
    Webhook,
    alertmanager_alerts,
    post_alerts,
    running_alertmanager,
    shipped_alert,
    shipped_alertmanager,
    silence,
)
from tests.support.waiting import wait_until

ACCOUNT = "acct-a"
CANVAS = "https://canvas.example.edu"
DEADLINE = 60.0
"""Seconds to wait for a notification: group_wait is 500 ms here; this only stops a hung test."""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook().running() as hook:
        yield hook


@pytest.fixture
def mail() -> Iterator[MailSink]:
    with MailSink().running() as sink:
        yield sink


@pytest.fixture
def am(tmp_path: Path, webhook: Webhook, mail: MailSink) -> Iterator[str]:
    with running_alertmanager(tmp_path, shipped_alertmanager(webhook, mail.port)) as url:
        yield url


def stuck(
    batch: int, alertname: str = "SisImportStuckRunningTooLong", account: str = ACCOUNT
) -> dict[str, Any]:
    reason = {"SisImportStuckRunningTooLong": "running_too_long", "SisImportStuckOrphaned": "orphaned"}
    what = {"SisImportStuckRunningTooLong": "is running too long", "SisImportStuckOrphaned": "is orphaned"}
    return shipped_alert(
        alertname,
        {
            "summary": f"SIS import {batch} of account {account} {what[alertname]}",
            "sis_batch_id": str(batch),
            "canvas_ui_url": f"{CANVAS}/accounts/1/sis_import",
            "canvas_api_url": f"{CANVAS}/api/v1/accounts/1/sis_imports/{batch}",
            "runbook_url": f"https://runbook.example.edu#{alertname.lower()}",
        },
        account=account,
        account_id="1",
        sis_batch_id=str(batch),
        reason=reason[alertname],
    )


def paged(webhook: Webhook, alertname: str | None = None) -> list[str]:
    """PagerDuty's `payload.summary` of every event Alertmanager sent (about `alertname`)."""
    return [
        event["payload"]["summary"]
        for event in webhook.at("/pagerduty")
        if alertname is None or alertname in event["payload"]["custom_details"]["alertnames"].split()
    ]


# ------------------------------------------------------------------ inhibition (item 1)
def test_a_stale_replica_holds_back_no_stuck_page_that_another_replica_raises(
    am: str, webhook: Webhook
) -> None:
    """task-2's watchdog stopped (a per-replica alert) and someone silenced that alert; task-1 is
    fresh and sees an import stuck in another account: the stuck page goes out, not inhibited."""
    stale = shipped_alert(
        "SisConsumerGaugesStale",
        {"summary": "sis-consumer task-2:9464 no longer refreshes its import gauges"},
        job="sis-consumer",
        instance="task-2:9464",
    )
    post_alerts(am, stale)
    wait_until(lambda: paged(webhook, "SisConsumerGaugesStale"), timeout=DEADLINE, what="the stale page")
    silence(am, "task-2 is being replaced", alertname="SisConsumerGaugesStale")
    post_alerts(am, stale, stuck(101, account="acct-b"))

    wait_until(
        lambda: paged(webhook, "SisImportStuckRunningTooLong"), timeout=DEADLINE, what="the stuck page"
    )
    assert alertmanager_alerts(am)["SisImportStuckRunningTooLong 101"]["status"]["inhibitedBy"] == []


def test_stuck_pages_wait_while_no_replica_can_be_scraped(am: str, webhook: Webhook) -> None:
    """Job-level: with no replica scraped the daemon's view is old, and its own alert comes first."""
    post_alerts(am, shipped_alert("SisConsumerDown", {"summary": "No sis-consumer replica can be scraped"}))
    wait_until(lambda: paged(webhook, "SisConsumerDown"), timeout=DEADLINE, what="the down page")
    post_alerts(am, stuck(101))

    def held() -> bool:
        status = alertmanager_alerts(am).get("SisImportStuckRunningTooLong 101", {}).get("status", {})
        return bool(status.get("inhibitedBy"))

    wait_until(held, timeout=DEADLINE, what="the stuck alert inhibited")
    assert paged(webhook, "SisImportStuckRunningTooLong") == []


# ------------------------------------------------------------------ titles (item 2)
def test_a_page_for_many_stuck_imports_is_titled_by_alert_account_count_and_first_import(
    am: str, webhook: Webhook
) -> None:
    """Three imports of one account, one group: their summaries differ, so the group has no common
    summary; PagerDuty's summary is built from the group."""
    post_alerts(am, stuck(101), stuck(102), stuck(103))

    (summary,) = wait_until(
        lambda: paged(webhook, "SisImportStuckRunningTooLong"), timeout=DEADLINE, what="the page"
    )
    assert summary == (
        f"[FIRING] SisImportStuckRunningTooLong, account {ACCOUNT}: 3 imports, the first: "
        f"SIS import 101 of account {ACCOUNT} is running too long {CANVAS}/api/v1/accounts/1/sis_imports/101"
    )
    (event,) = webhook.at("/pagerduty")
    assert [link["href"] for link in event["links"]] == [
        "https://runbook.example.edu#sisimportstuckrunningtoolong"
    ]


def test_a_page_for_one_alert_is_titled_by_its_own_summary(am: str, webhook: Webhook) -> None:
    post_alerts(
        am,
        shipped_alert("SisConsumerNoLeader", {"summary": "No sis-consumer replica holds the leader lease"}),
    )

    (summary,) = wait_until(lambda: paged(webhook, "SisConsumerNoLeader"), timeout=DEADLINE, what="the page")
    assert summary == "[FIRING] SisConsumerNoLeader: No sis-consumer replica holds the leader lease"


def test_a_ticket_mail_for_several_imports_has_a_subject(am: str, mail: MailSink) -> None:
    post_alerts(am, stuck(7, "SisImportStuckOrphaned"), stuck(8, "SisImportStuckOrphaned"))

    (subject,) = wait_until(mail.subjects, timeout=DEADLINE, what="the ticket mail")
    assert subject == (
        f"[sis-consumer] [FIRING] SisImportStuckOrphaned, account {ACCOUNT}: 2 imports, the first: "
        f"SIS import 7 of account {ACCOUNT} is orphaned {CANVAS}/api/v1/accounts/1/sis_imports/7"
    )


def test_one_live_events_outage_over_three_accounts_is_one_page(am: str, webhook: Webhook) -> None:
    """Decided: the pipeline (queue, queue policy) is shared, so its alerts group by alert name."""
    post_alerts(
        am,
        *(
            shipped_alert(
                "SisLiveEventsMissing",
                {"summary": f"SIS imports of account {account} finish without any Live Event"},
                account=account,
            )
            for account in ("acct-a", "acct-b", "acct-c")
        ),
    )

    wait_until(lambda: paged(webhook, "SisLiveEventsMissing"), timeout=DEADLINE, what="the page")
    (event, *_) = webhook.at("/pagerduty")  # the first event: about all three accounts
    assert event["payload"]["custom_details"]["alertnames"].split() == ["SisLiveEventsMissing"] * 3
    assert event["payload"]["summary"] == (
        "[FIRING] SisLiveEventsMissing: 3 alerts, the first: "
        "SIS imports of account acct-a finish without any Live Event"
    )


# ------------------------------------------------------------------ the heartbeat (item 9)
def test_a_maintenance_silence_on_the_service_stops_its_pages_but_not_the_heartbeat(
    am: str, webhook: Webhook
) -> None:
    silence(am, "maintenance window", service="sis-consumer")
    post_alerts(
        am,
        shipped_alert(
            "SisConsumerDeadMansSwitch", {"summary": "The alerting pipeline of sis-consumer works"}
        ),
        stuck(101),
    )

    wait_until(lambda: len(webhook.at("/heartbeat")) >= 2, timeout=DEADLINE, what="two heartbeats")
    assert alertmanager_alerts(am)["SisImportStuckRunningTooLong 101"]["status"]["silencedBy"] != []
    assert paged(webhook) == []
