"""The drop folder's part of deploy/: an optional CloudFormation block, a dashboard row, a runbook
section. (The rest of deploy/ is checked by test_deploy.py, cfn-lint and promtool included.)"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from consumer.core.drop_folder_rules import load_rules
from tests.support import dashboard as check

INTAKE_RESOURCES = {
    "IntakeDeadLetterQueue",
    "IntakeQueue",
    "IntakeQueuePolicy",
    "IntakeBucket",
    "IntakeBucketPolicy",
    "IntakeTaskPolicy",
    "IntakeDeadLetterQueueAlarm",
}


def _template() -> Mapping[str, Any]:
    decode = importlib.import_module("cfnlint.decode").decode  # cfn-lint ships no type information
    template, matches = decode(str(check.CLOUDFORMATION))
    assert not matches, matches
    return dict(template)


def test_the_drop_folder_exists_only_when_a_bucket_name_is_given() -> None:
    template = _template()
    assert template["Parameters"]["IntakeBucketName"]["Default"] == ""
    rules, problems = load_rules(template["Parameters"]["IntakeRules"]["Default"])
    assert (problems, [r.prefix for r in rules]) == ([], [template["Parameters"]["IntakePrefix"]["Default"]])
    assert template["Conditions"]["HasIntake"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "IntakeBucketName"}, ""]}]
    }
    conditional = {name for name, r in template["Resources"].items() if r.get("Condition") == "HasIntake"}
    assert conditional == INTAKE_RESOURCES
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    # Empty is unset for the daemon: without the bucket there is no drop folder.
    assert env["SIS_CONSUMER_INTAKE_QUEUE_URL"] == {"Fn::If": ["HasIntake", {"Ref": "IntakeQueue"}, ""]}
    assert env["SIS_CONSUMER_INTAKE_RULES"] == {"Fn::If": ["HasIntake", {"Ref": "IntakeRules"}, ""]}


def test_the_bucket_is_encrypted_versioned_private_expires_old_versions_and_notifies_its_prefix() -> None:
    resources = _template()["Resources"]
    bucket = resources["IntakeBucket"]
    props = bucket["Properties"]
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "IntakeNoncurrentVersionDays"}}
    assert "AbortIncompleteMultipartUpload" in rule
    (notify,) = props["NotificationConfiguration"]["QueueConfigurations"]
    assert notify["Event"] == "s3:ObjectCreated:*"
    assert notify["Queue"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    assert notify["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "IntakePrefix"}}]
    assert bucket["DependsOn"] == "IntakeQueuePolicy"  # S3 tests the destination when saving it
    assert bucket["DeletionPolicy"] == "Retain"


def test_only_the_bucket_may_send_to_the_intake_queue_and_its_failures_reach_a_dlq() -> None:
    resources = _template()["Resources"]
    (statement,) = resources["IntakeQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"] == {
        "aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${IntakeBucketName}"}
    }
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    queue = resources["IntakeQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IntakeDeadLetterQueue", "Arn"]}
    assert queue["SqsManagedSseEnabled"] is True


def test_the_task_may_read_and_tag_the_prefix_only() -> None:
    policy = _template()["Resources"]["IntakeTaskPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "TaskRole"}]
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert sorted(by_sid["ReadAndTagUploads"]["Action"]) == [
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:GetObjectVersion",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    ]
    assert by_sid["ReadAndTagUploads"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${IntakeBucketName}/${IntakePrefix}*"
    }
    assert by_sid["ConsumeIntake"]["Resource"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    assert "*" not in json.dumps([s["Action"] for s in by_sid.values()])


def test_the_dashboard_has_a_drop_folder_row_on_the_intake_metrics() -> None:
    dashboard = check.load_dashboard()
    rows = [p["title"] for p in check.dashboard_panels(dashboard) if p["type"] == "row"]
    assert "Drop folder (S3 intake)" in rows
    used = set().union(*(check.metric_names(e.expr) for e in check.dashboard_exprs(dashboard)))
    assert {"sis_consumer_intake_total", "sis_consumer_s3_requests_total"} <= used


def test_the_runbook_section_the_intake_alarm_names_exists() -> None:
    alarm = _template()["Resources"]["IntakeDeadLetterQueueAlarm"]["Properties"]["AlarmDescription"]
    anchor = alarm["Fn::Sub"].split("${RunbookUrl}#")[1]
    assert anchor in check.runbook_anchors()
