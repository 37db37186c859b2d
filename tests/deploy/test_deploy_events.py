"""The events queue's template (deploy/aws/events.yaml): held to what LakeCircle parses and needs, and
checked by cfn-lint (test_deploy_many_accounts.py lints every template too; a broken copy shows this
file's check can fail)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lakecircle.core.events import BUCKET_CALLS, CLOUDTRAIL_DETAIL_TYPE, DEFINITION_CHANGES
from tests.deploy.test_deploy_iam import EVENTS_ACTIONS, adapter_operations
from tests.deploy_common import DEPLOY, load_cloudformation

TEMPLATE = DEPLOY / "aws" / "events.yaml"


@pytest.fixture(scope="module")
def template() -> Any:
    return load_cloudformation(TEMPLATE)


def resources(template: Any, kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run(  # noqa: S603 -- cfn-lint on our own file
        [str(binary), "--include-checks", "I", "--regions", "us-east-1", "eu-west-1", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_rule_matches_exactly_the_calls_lakecircle_acts_on(template: Any) -> None:
    (rule,) = resources(template, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]

    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == [CLOUDTRAIL_DETAIL_TYPE]
    assert pattern["detail"]["eventSource"] == ["s3.amazonaws.com"]
    assert sorted(pattern["detail"]["eventName"]) == sorted(BUCKET_CALLS)
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}


def test_the_queue_is_encrypted_long_polled_and_sends_failures_to_a_dead_letter_queue(template: Any) -> None:
    queue = template["Resources"]["EventsQueue"]["Properties"]
    dead = template["Resources"]["DeadLetterQueue"]["Properties"]

    assert queue["SqsManagedSseEnabled"] is True
    assert dead["SqsManagedSseEnabled"] is True
    assert queue["ReceiveMessageWaitTimeSeconds"] == 20
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_only_the_rule_and_the_definitions_bucket_of_this_account_may_send(template: Any) -> None:
    (policy,) = resources(template, "AWS::SQS::QueuePolicy")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    rule, bucket = statements["TheBucketCallsRuleSends"], statements["TheDefinitionsBucketSends"]

    assert rule["Principal"] == {"Service": "events.amazonaws.com"}
    assert rule["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["BucketCallsRule", "Arn"]}}}
    assert bucket["Principal"] == {"Service": "s3.amazonaws.com"}
    assert bucket["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${DefinitionsBucket}"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    assert {s["Action"] for s in (rule, bucket)} == {"sqs:SendMessage"}


def test_the_service_policy_grants_what_the_sqs_adapter_calls_on_the_queue_alone(template: Any) -> None:
    (policy,) = resources(template, "AWS::IAM::ManagedPolicy")
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    called = adapter_operations() & set(EVENTS_ACTIONS)

    assert called == set(EVENTS_ACTIONS)
    # what the adapter calls, and GetQueueAttributes (the queue's depth, for a person or a readiness check)
    assert sorted(statement["Action"]) == ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert statement["Resource"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}


def test_the_definitions_notification_sends_what_lakecircle_reloads_on(template: Any) -> None:
    text = template["Outputs"]["DefinitionsNotification"]["Value"]["Fn::Sub"]
    filled = text.replace("${EventsQueue.Arn}", "arn:aws:sqs:eu-west-1:123456789012:q").replace(
        "${DefinitionsPrefix}", "lifecycle/definition/"
    )
    (config,) = json.loads(filled)["QueueConfigurations"]

    assert sorted(config["Events"]) == sorted(f"s3:{name}*" for name in DEFINITION_CHANGES)
    assert config["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": "lifecycle/definition/"},
        {"Name": "suffix", "Value": ".toml"},
    ]


def test_cfn_lint_finds_nothing_in_the_events_template() -> None:
    result = cfn_lint(TEMPLATE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_fails_a_copy_whose_rule_targets_nothing(tmp_path: Path) -> None:
    broken = tmp_path / TEMPLATE.name
    broken.write_text(
        TEMPLATE.read_text(encoding="utf-8").replace("!GetAtt EventsQueue.Arn\n", "!GetAtt Nothing.Arn\n", 1)
    )

    result = cfn_lint(broken)

    assert result.returncode & 2, result.stdout
    assert "E1010" in result.stdout
