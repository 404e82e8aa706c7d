"""What the alert rules, the dashboard and the Alertmanager example must keep true for paging to be
right (their behaviour is tested by promtool, alerts_test.yaml, and by test_alertmanager.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from consumer.observability.metrics import LEADER_ONLY
from tests.support import dashboard as check

PRODUCTION = 'job="sis-consumer"'
SELECTOR = re.compile(r"\b(up|process_\w+|canvas_sis_\w+|sis_consumer_\w+)\b(\{[^}]*\})?")


def _queries(rule: dict[str, Any]) -> list[str]:
    """The rule's expression and the queries its annotations run (Go raw strings: `...`)."""
    annotations = " ".join(rule["annotations"].values())
    return [rule["expr"], *re.findall(r"`([^`]*)`", annotations)]


def test_every_rule_reads_the_production_job_only() -> None:
    """A staging job beside production can neither page as production nor hide it being down."""
    loose = [
        f"{rule['alert']}: {match[0]}"
        for rule in check.alert_rules()
        for query in _queries(rule)
        for match in SELECTOR.finditer(query)
        if PRODUCTION not in (match[2] or "")
    ]
    assert loose == []


def test_the_check_catches_a_selector_without_the_job() -> None:
    rule = {"alert": "X", "expr": 'max(up{job=~"sis-consumer.*"}) and sis_consumer_leader', "annotations": {}}
    found = [m[0] for q in _queries(rule) for m in SELECTOR.finditer(q) if PRODUCTION not in (m[2] or "")]
    assert found == ['up{job=~"sis-consumer.*"}', "sis_consumer_leader"]


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_gauges_only_the_leader_keeps_current_are_read_from_the_current_leader(source: str) -> None:
    """A former leader keeps its last value (the rate limit left, the token's state): read the one
    replica that leads now."""
    exprs = (
        [q for rule in check.alert_rules() for q in _queries(rule)]
        if source == "alerts"
        else [e.expr for e in check.dashboard_exprs(check.load_dashboard())]
    )
    leader_only = [e for e in exprs if any(name in e for name in LEADER_ONLY)]
    assert leader_only, f"the {source} read no leader-only gauge"
    join = re.compile(r"and on \(job, instance\)\s+sis_consumer_leader(\{[^}]*\})? == 1")
    assert [e for e in leader_only if not join.search(e)] == []


def test_the_heartbeat_has_a_route_of_its_own_sent_every_group_interval() -> None:
    """Outside the service's route (a silence on `service` must not stop it), and repeat_interval
    below group_interval: equal, Alertmanager skips every other tick."""
    config = check.load_yaml(check.ALERTMANAGER_CONFIG)
    first, second = config["route"]["routes"][:2]
    assert first["matchers"] == ['alertname="SisConsumerDeadMansSwitch"']
    assert second["matchers"] == ['service="sis-consumer"']
    assert (first["group_interval"], first["repeat_interval"]) == ("1m", "30s")
    heartbeat = [r for r in check.alert_rules() if r["alert"] == "SisConsumerDeadMansSwitch"]
    assert "service" not in heartbeat[0]["labels"]


@pytest.mark.parametrize("doc", [check.RUNBOOK, check.REPO / "README.md"])
def test_the_docs_give_the_heartbeats_cadence_the_route_sends_at(doc: Any) -> None:
    """The route above sends it at every group_interval tick: 1m."""
    text = " ".join(doc.read_text(encoding="utf-8").split())
    assert re.search(r"(SisConsumerDeadMansSwitch`?|sends it) every minute", text)
