"""The deployment artifacts under deploy/ agree with the daemon and pass their tools' own checks.

promtool, amtool and cfn-lint are required, not optional: a missing tool fails the test with the
command that installs it (.ci/run installs them).
"""

from __future__ import annotations

import http.server
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from consumer.adapters import dynamodb_io
from consumer.adapters.dynamodb_schema import TTL_ATTRIBUTE, table_definition
from consumer.core.stuck import StuckReason
from tests.support import dashboard as check

REQUIRED_DASHBOARD_METRICS = {
    "canvas_sis_imports_finished_total",
    "canvas_sis_import_duration_seconds_bucket",
    "canvas_sis_import_stage_seconds_bucket",
    "canvas_sis_imports_in_progress",
    "canvas_sis_imports_stuck",
    "canvas_sis_import_last_success_timestamp_seconds",
    "sis_consumer_event_delivery_seconds_bucket",
    "sis_consumer_sqs_requests_total",
    "sis_consumer_messages_total",
    "sis_consumer_canvas_requests_total",
    "sis_consumer_canvas_rate_limit_remaining",
    "canvas_sis_import_stuck_info",
    "canvas_sis_import_stuck_threshold_seconds",
    "canvas_sis_imports_finished_without_events_total",
    "sis_consumer_gauges_refreshed_timestamp_seconds",
}


def _tool(name: str) -> str:
    """The tool's path; a missing tool fails the test (never skips it) with how to install it."""
    try:
        return check.tool(name)
    except check.ToolMissing as exc:
        missing = str(exc)
    pytest.fail(missing, pytrace=False)


def _passes(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{shlex.join(result.args)}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def exported() -> dict[str, str]:
    return check.exported_metrics()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return check.load_dashboard()


@pytest.fixture(scope="module")
def alerts() -> list[dict[str, Any]]:
    return check.alert_rules()


# ------------------------------------------------------------------ the checker itself
def test_exported_names_come_from_the_metrics_module(exported: dict[str, str]) -> None:
    assert exported["canvas_sis_imports_finished_total"] == "counter"
    assert exported["canvas_sis_import_duration_seconds"] == "histogram"
    assert exported["sis_consumer_last_poll_timestamp_seconds"] == "gauge"
    assert "canvas_sis_imports_finished" not in exported  # a counter is only exported with _total


def test_checker_reports_unknown_and_misused_metric_names(exported: dict[str, str]) -> None:
    problems = check.unknown_metrics(
        [
            "rate(canvas_sis_imports_finished_total[5m])",  # fine
            "rate(canvas_sis_import_finished_total[5m])",  # typo
            "canvas_sis_import_duration_seconds",  # a histogram's bare name
            "sum(sis_consumer_messages_total_bucket)",  # a suffix on a counter
        ],
        exported,
    )
    assert len(problems) == 3, problems
    assert problems[0].startswith("canvas_sis_import_finished_total: not exported")
    assert problems[1].startswith("canvas_sis_import_duration_seconds: a histogram has no bare series")
    assert problems[2].startswith("sis_consumer_messages_total_bucket: not exported")


def test_template_variables_are_substituted() -> None:
    expr = 'sum(rate(x{account=~"$account",b=~"${account}",c="[[account]]"}[$__rate_interval])) [$__range]'
    assert check.substitute(expr) == 'sum(rate(x{account=~".*",b=~".*",c=".*"}[5m])) [1h]'
    with pytest.raises(KeyError, match="unknown template variable"):
        check.substitute("rate(x[$nope])")


def test_promtool_rejects_a_broken_dashboard_expression() -> None:
    _tool("promtool")
    result = check.promtool_check_exprs([check.Expr("broken", "sum(rate(x[5m])")])
    assert result.returncode != 0


# ------------------------------------------------------------------ Grafana dashboard
def test_every_dashboard_expression_parses(dashboard: dict[str, Any]) -> None:
    _tool("promtool")
    exprs = check.dashboard_exprs(dashboard)
    assert len(exprs) > 20
    _passes(check.promtool_check_exprs(exprs))


def test_dashboard_uses_only_exported_metrics(dashboard: dict[str, Any], exported: dict[str, str]) -> None:
    exprs = [e.expr for e in check.dashboard_exprs(dashboard)]
    assert check.unknown_metrics(exprs, exported) == []
    used = set().union(*(check.metric_names(e) for e in exprs))
    assert used >= REQUIRED_DASHBOARD_METRICS, REQUIRED_DASHBOARD_METRICS - used


def test_dashboard_is_templated_by_datasource_and_account(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    account = variables["account"]
    assert account["query"]["query"] == "label_values(canvas_sis_imports_finished_total, account)"
    assert account["datasource"]["uid"] == "${datasource}"
    per_account = [
        t["expr"]
        for p in check.dashboard_panels(dashboard)
        for t in p.get("targets", [])
        if "canvas_sis_imports_finished_total" in t["expr"]
    ]
    assert per_account
    assert all('account=~"$account"' in e for e in per_account)


def test_every_panel_and_target_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    panels = [p for p in check.dashboard_panels(dashboard) if p["type"] != "row"]
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    ids = [p["id"] for p in check.dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# ------------------------------------------------------------------ Prometheus alert rules
def test_promtool_check_rules() -> None:
    _passes(check.run([_tool("promtool"), "check", "rules", str(check.ALERTS)]))


def test_promtool_test_rules() -> None:
    _passes(check.run([_tool("promtool"), "test", "rules", check.ALERTS_TEST.name], cwd=check.ALERTS.parent))


def test_example_prometheus_config_is_valid() -> None:
    _passes(check.run([_tool("promtool"), "check", "config", str(check.PROMETHEUS_CONFIG)]))


def test_alerts_use_only_exported_metrics(exported: dict[str, str]) -> None:
    exprs = [e.expr for e in check.alert_exprs()]
    assert check.unknown_metrics(exprs, exported) == []


def test_every_alert_has_severity_summary_description_and_for(alerts: list[dict[str, Any]]) -> None:
    """`service` routes them all but the dead-man's switch, which a silence on it must not stop."""
    for rule in alerts:
        assert rule["labels"]["severity"] in {"page", "ticket", "heartbeat"}, rule["alert"]
        if rule["labels"]["severity"] == "heartbeat":
            assert "service" not in rule["labels"], rule["alert"]
        else:
            assert rule["labels"]["service"] == "sis-consumer", rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), f"{rule['alert']}: `for:` is a plain duration"


def test_one_alert_per_stuck_reason_paging_for_all_but_orphaned(alerts: list[dict[str, Any]]) -> None:
    """An orphaned batch blocks nothing in Canvas: a ticket. The others page."""
    for reason in StuckReason:
        matching = [
            r
            for r in alerts
            if f'canvas_sis_import_stuck_info{{job="sis-consumer",reason="{reason.value}"}}' in r["expr"]
        ]
        assert len(matching) == 1, f"expected one alert for stuck reason {reason.value}"
        expected = "ticket" if reason is StuckReason.ORPHANED else "page"
        assert matching[0]["labels"]["severity"] == expected, reason


def test_alerts_about_one_import_lead_to_it_and_hold_through_a_deploy(alerts: list[dict[str, Any]]) -> None:
    """Each stuck alert is per import (its Canvas ids as labels), its annotations carry the ids and
    the Canvas URLs, and `keep_firing_for` bridges the moment a replica's series go stale."""
    stuck = [r for r in alerts if "canvas_sis_import_stuck_info" in r["expr"]]
    assert len(stuck) == len(StuckReason)
    for rule in stuck:
        assert "max by (account, account_id, sis_batch_id, reason)" in rule["expr"], rule["alert"]
        links = {"canvas_account_id", "sis_batch_id", "canvas_ui_url", "canvas_api_url"}
        assert links <= set(rule["annotations"]), rule["alert"]
        assert rule.get("keep_firing_for") == "10m", rule["alert"]


def test_required_alerts_exist(alerts: list[dict[str, Any]]) -> None:
    exprs = "\n".join(r["expr"] for r in alerts)
    for needle in (
        "canvas_sis_imports_finished_total",
        'max by (account) (canvas_sis_import_last_success_timestamp_seconds{job="sis-consumer"})',
        "canvas_sis_import_expected_success_since_timestamp_seconds",
        "canvas_sis_import_expected_success_interval_seconds",
        "canvas_sis_imports_finished_without_events_total",
        'max(up{job="sis-consumer"}) == 0',
        'absent(up{job="sis-consumer"})',
        'time() - max(sis_consumer_last_poll_timestamp_seconds{job="sis-consumer"}) > 120',
        "sis_consumer_gauges_refreshed_timestamp_seconds",
        "process_start_time_seconds",
        'sis_consumer_messages_total{job="sis-consumer",outcome="retried"}',
        'increase(sis_consumer_messages_total{job="sis-consumer",outcome="dead_lettered"}',
        'max(sis_consumer_leader{job="sis-consumer"}) == 0',
        'sis_consumer_canvas_token_refused_since_timestamp_seconds{job="sis-consumer"} > 0',
        'sis_consumer_canvas_requests_total{job="sis-consumer",status=~"403|429"}',
        "vector(1)",
    ):
        assert needle in exprs, needle


def test_every_alert_has_a_firing_and_a_silent_unit_test(alerts: list[dict[str, Any]]) -> None:
    cases: dict[str, set[bool]] = {}
    for group in check.load_yaml(check.ALERTS_TEST)["tests"]:
        for case in group.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for rule in alerts:
        if rule["labels"]["severity"] == "heartbeat":  # the dead-man's switch always fires
            assert cases.get(rule["alert"]) == {True}, rule["alert"]
            continue
        assert cases.get(rule["alert"]) == {True, False}, f"{rule['alert']}: needs a firing and a silent case"


def test_runbook_urls_share_one_base_and_their_anchors_exist() -> None:
    assert check.runbook_problems() == []


def test_runbook_check_catches_a_missing_anchor(tmp_path: Path) -> None:
    runbook = tmp_path / "RUNBOOK.md"
    runbook.write_text("# Runbook\n\n## SisConsumerDown\n", encoding="utf-8")
    problems = check.runbook_problems(check.ALERTS, runbook)
    assert any("#sisimportstucksilent is not a heading" in p for p in problems)
    assert not any("#sisconsumerdown" in p for p in problems)


# ------------------------------------------------------------------ Alertmanager
def test_amtool_check_config() -> None:
    _passes(check.run([_tool("amtool"), "check-config", str(check.ALERTMANAGER_CONFIG)]))


def _route(*labels: str) -> list[str]:
    """The receivers `amtool config routes test` picks for an alert with `labels`."""
    result = check.run(
        [_tool("amtool"), "config", "routes", "test", f"--config.file={check.ALERTMANAGER_CONFIG}", *labels]
    )
    _passes(result)
    return result.stdout.split()


@pytest.mark.parametrize(("severity", "receiver"), [("page", "sis-oncall-pager"), ("ticket", "sis-tickets")])
def test_alertmanager_routes_by_severity(severity: str, receiver: str) -> None:
    assert _route(f"severity={severity}", "service=sis-consumer", "alertname=Example") == [receiver]


@pytest.mark.parametrize("severity", ["page", "ticket"])
def test_another_services_alert_reaches_no_sis_receiver(severity: str) -> None:
    (receiver,) = _route(f"severity={severity}", "service=billing", "alertname=HighLatency")
    assert not receiver.startswith("sis-"), receiver


def test_the_dead_mans_switch_goes_to_its_heartbeat_receiver_never_to_a_person() -> None:
    assert _route("alertname=SisConsumerDeadMansSwitch", "severity=heartbeat") == ["sis-deadmans-switch"]


def test_stuck_alerts_are_inhibited_only_by_job_level_alerts(
    alerts: list[dict[str, Any]],
) -> None:
    """The inhibition's matchers, read as Alertmanager reads them (anchored regexes), against the
    alert names of the rules file: a renamed alert would silently escape them. A per-replica alert
    (SisConsumerGaugesStale) holds back nothing another replica raises."""
    config = check.load_yaml(check.ALERTMANAGER_CONFIG)
    names = {r["alert"] for r in alerts}

    def matching(matchers: list[str]) -> set[str]:
        found = set(names)
        for matcher in matchers:
            parsed = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher)
            assert parsed is not None, matcher
            label, op, value = parsed.groups()
            if label == "service":
                assert (op, value) == ("=", "sis-consumer")
                continue
            assert label == "alertname"
            found = {n for n in found if (re.fullmatch(value, n) if op == "=~" else n == value)}
        return found

    rule = config["inhibit_rules"][0]
    assert matching(rule["source_matchers"]) == {"SisConsumerDown", "SisConsumerPollStalled"}
    sources = set().union(*(matching(r["source_matchers"]) for r in config["inhibit_rules"]))
    assert "SisConsumerGaugesStale" not in sources
    stuck = {n for n in names if n.startswith("SisImportStuck")}
    assert len(stuck) == len(StuckReason)
    assert matching(rule["target_matchers"]) == stuck | {"SisImportNoRecentSuccess", "SisLiveEventsMissing"}
    assert rule["equal"] == ["service"]


# ------------------------------------------------------------------ CloudFormation
def _template() -> Mapping[str, Any]:
    # Imported by name: cfn-lint ships no type information.
    decode = importlib.import_module("cfnlint.decode").decode
    template, matches = decode(str(check.CLOUDFORMATION))
    assert not matches, matches
    return dict(template)


def test_cfn_lint() -> None:
    _passes(check.run([_tool("cfn-lint"), str(check.CLOUDFORMATION)]))


def test_queue_meets_canvas_requirements() -> None:
    resources = _template()["Resources"]
    queue = resources["LiveEventsQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "canvas-live-events-${QueueNameSuffix}"}
    assert "FifoQueue" not in queue
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert _template()["Parameters"]["MaxReceiveCount"]["Default"] == 10
    policies = [
        r for r in resources.values() if r["Type"] in {"AWS::SQS::QueuePolicy", "AWS::SQS::QueueInlinePolicy"}
    ]
    on_queue = [p for p in policies if p["Properties"].get("Queue") == {"Ref": "LiveEventsQueue"}]
    assert len(on_queue) == 1
    allow, deny = on_queue[0]["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"AWS": "arn:aws:iam::636161780776:root"}
    assert allow["Action"] == "sqs:SendMessage"
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


URGENT_ALARMS = {"QueueBacklogAlarm", "NoLiveEventsAlarm", "StoreThrottledAlarm"}
TICKET_ALARMS = {"DeadLetterQueueAlarm", "RunningTasksAlarm", "IntakeDeadLetterQueueAlarm"}


def test_what_matters_cannot_be_left_out_or_deleted_by_mistake() -> None:
    """No default for the allowlist and the alarm topics (an empty one accepted every account and
    alarmed nobody); the queues and the table survive the stack, and the table its own deletion."""
    template = _template()
    parameters = template["Parameters"]
    for required in ("AllowedAccounts", "AlarmTopicArn", "TicketTopicArn"):
        assert "Default" not in parameters[required], required
    assert not re.fullmatch(parameters["AllowedAccounts"]["AllowedPattern"], "")
    resources = template["Resources"]
    for name in ("LiveEventsQueue", "DeadLetterQueue", "StateTable"):
        assert (resources[name]["DeletionPolicy"], resources[name]["UpdateReplacePolicy"]) == (
            "Retain",
            "Retain",
        )
    assert resources["StateTable"]["Properties"]["DeletionProtectionEnabled"] is True
    alarms = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == URGENT_ALARMS | TICKET_ALARMS
    quiet = alarms["NoLiveEventsAlarm"]
    assert (quiet["MetricName"], quiet["Statistic"], quiet["ComparisonOperator"]) == (
        "NumberOfMessagesSent",
        "Sum",
        "LessThanThreshold",
    )
    running = alarms["RunningTasksAlarm"]
    assert (running["MetricName"], running["Threshold"]) == ("RunningTaskCount", {"Ref": "DesiredCount"})


@pytest.mark.parametrize(
    ("names", "topic"), [(URGENT_ALARMS, "AlarmTopicArn"), (TICKET_ALARMS, "TicketTopicArn")]
)
def test_urgent_alarms_and_ticket_alarms_notify_their_own_topics(names: set[str], topic: str) -> None:
    resources = _template()["Resources"]
    for name in names:
        alarm = resources[name]["Properties"]
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic}], name


def test_every_alarm_links_to_its_runbook_section_under_the_runbook_url_parameter() -> None:
    """A repo path is no link at 3 a.m.; the default is the base the Prometheus alerts use."""
    template = _template()
    anchors = check.runbook_anchors()
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        description = resource["Properties"]["AlarmDescription"]["Fn::Sub"]
        (anchor,) = re.findall(r"\$\{RunbookUrl\}#([\w-]+)", description)
        assert anchor in anchors, name
        assert "deploy/RUNBOOK.md" not in description, name
    bases = {r["annotations"]["runbook_url"].split("#")[0] for r in check.alert_rules()}
    assert bases == {template["Parameters"]["RunbookUrl"]["Default"]}


def test_the_stuck_settings_the_runbook_says_to_raise_are_stack_parameters() -> None:
    template = _template()
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    for parameter, variable in (
        ("StuckRunning", "SIS_CONSUMER_STUCK_RUNNING"),
        ("StuckNeverStarted", "SIS_CONSUMER_STUCK_NEVER_STARTED"),
        ("StuckLearnFloor", "SIS_CONSUMER_STUCK_LEARN_FLOOR"),
        ("StuckLearnCeiling", "SIS_CONSUMER_STUCK_LEARN_CEILING"),
        ("StuckLearnAfter", "SIS_CONSUMER_STUCK_LEARN_AFTER"),
    ):
        assert env[variable] == {"Ref": parameter}
        assert template["Parameters"][parameter]["Default"] == ""  # unset: the daemon's default


def test_prometheus_finds_the_tasks_under_the_name_the_template_registers() -> None:
    template = _template()
    service = template["Resources"]["Service"]["Properties"]
    assert service["ServiceRegistries"] == [{"RegistryArn": {"Fn::GetAtt": ["DiscoveryService", "Arn"]}}]
    discovery = template["Resources"]["DiscoveryService"]["Properties"]
    assert discovery["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 10}]
    name = template["Outputs"]["DiscoveryName"]["Value"]["Fn::Sub"]
    (job,) = check.load_yaml(check.PROMETHEUS_CONFIG)["scrape_configs"]
    (dns,) = job["dns_sd_configs"]
    assert (job["job_name"], dns["type"], dns["port"]) == ("sis-consumer", "A", 9464)
    assert dns["names"] == [name.replace("${QueueNameSuffix}", "prod")]


def test_task_role_is_least_privilege() -> None:
    role = _template()["Resources"]["TaskRole"]["Properties"]
    statements = [s for p in role["Policies"] if "PolicyName" in p for s in p["PolicyDocument"]["Statement"]]
    by_sid = {s["Sid"]: s for s in statements}
    assert sorted(by_sid["ConsumeLiveEvents"]["Action"]) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert by_sid["ConsumeLiveEvents"]["Resource"] == {"Fn::GetAtt": ["LiveEventsQueue", "Arn"]}
    assert sorted(by_sid["DeadLetter"]["Action"]) == ["sqs:GetQueueAttributes", "sqs:SendMessage"]
    assert by_sid["DeadLetter"]["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert by_sid["Store"]["Resource"] == [
        {"Fn::GetAtt": ["StateTable", "Arn"]},
        {"Fn::Sub": "${StateTable.Arn}/index/*"},
    ]
    assert all("*" not in json.dumps(s["Action"]) for s in statements)


# Operations only `sis-consumer store init` makes (the stack creates the table instead).
_STORE_INIT_ONLY = {
    "CreateTable",
    "DescribeContinuousBackups",
    "DescribeTimeToLive",
    "UpdateContinuousBackups",
    "UpdateTimeToLive",
}
# TransactWriteItems has no IAM action of its own: each item needs the action of its kind.
_TRANSACTION_ITEMS = {"ConditionCheckItem", "DeleteItem", "PutItem", "UpdateItem"}


def _dynamodb_operations_in_the_code() -> set[str]:
    """Every DynamoDB operation named in the store's adapters (botocore's list of operations decides
    what counts as one), store init's own calls left out."""
    import botocore.session

    known = set(botocore.session.get_session().get_service_model("dynamodb").operation_names)
    adapters = Path(dynamodb_io.__file__).parent
    sources = [
        (adapters / name).read_text(encoding="utf-8")
        for name in ("store_dynamodb.py", "dynamodb_io.py", "lease_dynamodb.py", "dynamodb_writes.py")
    ]
    named = set().union(*(re.findall(r'"([A-Z][A-Za-z]+)"', source) for source in sources))
    return (named & known) - _STORE_INIT_ONLY


def test_the_task_role_grants_exactly_the_dynamodb_actions_the_daemon_uses() -> None:
    """Adding a DynamoDB call to the store without its IAM action (or keeping an action no call
    needs) fails here, not in production with AccessDenied."""
    operations = _dynamodb_operations_in_the_code()
    assert {"GetItem", "Query", "TransactWriteItems", "DescribeTable"} <= operations  # the scan works
    needed = (operations - {"TransactWriteItems"}) | _TRANSACTION_ITEMS
    role = _template()["Resources"]["TaskRole"]["Properties"]
    (store,) = [
        s
        for p in role["Policies"]
        if "PolicyName" in p
        for s in p["PolicyDocument"]["Statement"]
        if s.get("Sid") == "Store"
    ]
    assert sorted(store["Action"]) == sorted(f"dynamodb:{op}" for op in needed)


def test_the_template_creates_the_table_store_init_creates() -> None:
    """Same keys, attribute types, indexes (keys and projections), billing and encryption as
    `table_definition`, plus TTL on its journal attribute and point-in-time recovery."""
    table = _template()["Resources"]["StateTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    declared = table["Properties"]
    expected = table_definition("any")

    def attributes(definitions: list[Mapping[str, str]]) -> dict[str, str]:
        return {d["AttributeName"]: d["AttributeType"] for d in definitions}

    def keys(schema: list[Mapping[str, str]]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    def indexes(gsis: list[Mapping[str, Any]]) -> dict[str, tuple[list[tuple[str, str]], Any]]:
        return {g["IndexName"]: (keys(g["KeySchema"]), g["Projection"]) for g in gsis}

    assert attributes(declared["AttributeDefinitions"]) == attributes(expected["AttributeDefinitions"])
    assert keys(declared["KeySchema"]) == keys(expected["KeySchema"])
    assert indexes(declared["GlobalSecondaryIndexes"]) == indexes(expected["GlobalSecondaryIndexes"])
    assert declared["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert declared["SSESpecification"] == {"SSEEnabled": expected["SSESpecification"]["Enabled"]}
    assert declared["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert declared["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_task_definition_runs_the_daemon_as_designed() -> None:
    template = _template()
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["StopTimeout"] == 30
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["SIS_CONSUMER_STORE"] == {"Fn::Sub": "dynamodb://${StateTable}"}
    assert env["SIS_CONSUMER_ACCOUNTS"] == {"Ref": "AllowedAccounts"}
    assert env["SIS_CONSUMER_EXPECT_SUCCESS_EVERY"] == {"Ref": "ExpectSuccessEvery"}
    assert env["SIS_CONSUMER_METRICS_ADDR"] == "0.0.0.0:9464"
    assert env["SIS_CONSUMER_QUEUE_URL"] == {"Ref": "LiveEventsQueue"}
    assert [s["Name"] for s in container["Secrets"]] == ["SIS_CONSUMER_CANVAS_TOKEN"]
    assert {m["ContainerPath"] for m in container["MountPoints"]} == {"/tmp"}
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::EFS::")]
    desired = template["Parameters"]["DesiredCount"]
    assert desired["Default"] == 2  # a deploy or a lost task leaves a replica watching
    deployment = template["Resources"]["Service"]["Properties"]["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)
    alarm = template["Resources"]["DeadLetterQueueAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert {"QueueUrl", "QueueArn"} <= set(template["Outputs"])


def test_the_output_to_paste_into_canvas_data_services_is_the_queue_url() -> None:
    """Data Services asks for the queue's URL (Ref of a queue); the ARN output must not say otherwise."""
    outputs = _template()["Outputs"]
    assert outputs["QueueUrl"]["Value"] == {"Ref": "LiveEventsQueue"}
    assert "Data Services" in outputs["QueueUrl"]["Description"]
    assert "Data Services" not in outputs["QueueArn"]["Description"]


# ------------------------------------------------------------------ Dockerfile (static)
def _instructions(path: Path = check.DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            keyword, _, args = pending.partition(" ")
            out.append((keyword.upper(), args.strip()))
            pending = ""
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_a_pinned_slim_base() -> None:
    instructions = _instructions()
    froms = [args for k, args in instructions if k == "FROM"]
    assert len(froms) >= 2
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms)
    builder = [a for k, a in instructions if k == "RUN" and "pip wheel" in a]
    assert builder, "the builder stage builds a wheel"
    final = _final_stage()
    assert any(k == "COPY" and "--from=builder" in a and "/opt/venv" in a for k, a in final)
    final_runs = " ".join(a for k, a in final if k == "RUN")
    for build_tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert build_tool not in final_runs, f"no {build_tool} in the final image"


def test_dockerfile_runs_as_non_root_with_healthcheck_and_exec_form_entrypoint() -> None:
    final = _final_stage()
    users = [a for k, a in final if k == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert users[-1] == "10001:10001"
    (entrypoint,) = [a for k, a in final if k == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["sis-consumer"]  # exec form: the daemon is PID 1
    (cmd,) = [a for k, a in final if k == "CMD"]
    assert json.loads(cmd) == ["run"]
    assert [a for k, a in final if k == "STOPSIGNAL"] == ["SIGTERM"]
    assert [a for k, a in final if k == "HEALTHCHECK"], "HEALTHCHECK missing"
    assert [a for k, a in final if k == "EXPOSE"] == ["9464"]
    assert [a for k, a in final if k == "WORKDIR"] == ["/data"]
    assert [a for k, a in final if k == "VOLUME"] == ['["/data"]']
    env = " ".join(a for k, a in final if k == "ENV")
    for setting in (
        "SIS_CONSUMER_STORE=sqlite:////data/state.db",
        "SIS_CONSUMER_METRICS_ADDR=0.0.0.0:9464",
        "PYTHONDONTWRITEBYTECODE=1",
    ):
        assert setting in env


class _Livez(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/livez" else 404)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def livez() -> Iterator[tuple[type[_Livez], int]]:
    handler = type("Handler", (_Livez,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _probe(command: list[str], port: int) -> int:
    assert command[0] == "python"
    env = {**os.environ, "SIS_CONSUMER_METRICS_ADDR": f"0.0.0.0:{port}"}
    # The CloudFormation probe has the port fixed (the task sets SIS_CONSUMER_METRICS_ADDR itself).
    command = [c.replace("127.0.0.1:9464", f"127.0.0.1:{port}") for c in command]
    return subprocess.run([sys.executable, *command[1:]], env=env, timeout=30, check=False).returncode


def test_healthcheck_probes_pass_on_200_and_fail_on_503(livez: tuple[type[_Livez], int]) -> None:
    handler, port = livez
    (healthcheck,) = [a for k, a in _final_stage() if k == "HEALTHCHECK"]
    docker_probe = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    (container,) = _template()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    ecs_probe = list(container["HealthCheck"]["Command"])
    assert ecs_probe[0] == "CMD"
    for probe in (docker_probe, ecs_probe[1:]):
        handler.status = 200
        assert _probe(probe, port) == 0
        handler.status = 503
        assert _probe(probe, port) != 0


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules, enough for ours: last match wins, `!` re-includes, parents count."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        variants = {pattern, pattern.removeprefix("**/")}
        if any(fnmatchcase(c, v) for c in candidates for v in variants):
            ignored = not negate
    return ignored


def test_dockerignore_sends_exactly_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in check.DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [a.split() for k, a in _instructions() if k == "COPY" and "--from" not in a]
    sources = [src for args in copies for src in args[:-1]]
    assert sources
    for source in sources:
        assert not _dockerignored(source.rstrip("/"), patterns), f"{source} is excluded by .dockerignore"
    assert not _dockerignored("consumer/core/stuck.py", patterns)
    for excluded in (".venv/bin/python", "tests/unit/test_config.py", "deploy/Dockerfile", ".git/HEAD"):
        assert _dockerignored(excluded, patterns), f"{excluded} should not be in the build context"
    assert _dockerignored("consumer/core/__pycache__/stuck.cpython-311.pyc", patterns)
