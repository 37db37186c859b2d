"""The deployment of multi-account mode: the hub's policy (deploy/iam-policy-hub.json), the member
role (deploy/aws/member-role.yaml), checked against the single-account policy and by cfn-lint,
and the metrics contract the dashboard and alerts are built on (tests/deploy_common.py).

The member role carries exactly the bucket statements of deploy/iam-policy.json (which
test_deploy_iam.py holds to the operations the adapters call); the hub carries the
endpoint statements, moved under ``accounts/`` where multi-account mode keeps each
account's records, plus what it needs to find and enter the accounts. cfn-lint (the test
extra; it ships its specifications, so it runs offline) lints every template under
deploy/aws/, and both JSON policies wrapped in a template, where it checks that each
action exists and that each resource is of a type the action takes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lakecircle.settings import Settings
from tests.deploy.test_deploy_iam import ORGANIZATIONS_ACTIONS, adapter_operations
from tests.deploy_common import (
    ACCOUNT,
    ACCOUNT_LABELLED,
    ACCOUNT_STATES,
    DEPLOY,
    MULTI_ACCOUNT_ONLY,
    declared_contract,
    exposed_metrics,
    hub_exposed_metrics,
    load_cloudformation,
)

SINGLE_POLICY = DEPLOY / "iam-policy.json"
HUB_POLICY = DEPLOY / "iam-policy-hub.json"
TEMPLATES = sorted((DEPLOY / "aws").glob("*.yaml"))
MEMBER_ROLE = DEPLOY / "aws" / "member-role.yaml"

ENDPOINT = "arn:aws:s3:::my-lakecircle-bucket/lifecycle/"
ORGANIZATION = "o-exampleorgid"

ENDPOINT_ACTIONS = frozenset({"s3:ListBucket", "s3:GetObject", "s3:PutObject"})
"""The single-account policy's actions on LCC_ENDPOINT; every other statement of it is about buckets."""

ORGANIZATIONS_STATEMENTS = {
    # Sid -> the Organizations actions it grants; the README says when each is needed.
    "ListTheOrganizationsAccounts": {"organizations:ListAccounts"},
    "ReadAccountTagsForFilterAndAccountTags": {"organizations:ListTagsForResource"},
    "WalkOrganizationalUnitsForFilter": {
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
    },
}
OPTIONAL_STATEMENTS = ("ReadAccountTagsForFilterAndAccountTags", "WalkOrganizationalUnitsForFilter")

Statement = dict[str, Any]


def _statements(path: Path) -> list[Statement]:
    policy = json.loads(path.read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17"
    statements: list[Statement] = policy["Statement"]
    return statements


def _listify(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _granted(statements: list[Statement]) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for statement in statements:
        for action in _listify(statement["Action"]):
            grants.setdefault(action, []).extend(_listify(statement["Resource"]))
    return grants


def _member_role() -> Statement:
    template = load_cloudformation(MEMBER_ROLE)
    [role] = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    properties: Statement = role["Properties"]
    return properties


def _resolve_partition(value: Any) -> Any:
    """``{"Fn::Sub": "arn:${AWS::Partition}:..."}`` as the string it is in the commercial partition."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${AWS::Partition}", "aws")
    if isinstance(value, list):
        return [_resolve_partition(v) for v in value]
    return value


# -- the hub's policy -----------------------------------------------------------------


def test_the_hub_policy_only_allows_and_names_no_wildcard_actions() -> None:
    statements = _statements(HUB_POLICY)
    sids = [s["Sid"] for s in statements]
    assert len(sids) == len(set(sids))
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        for action in _listify(statement["Action"]):
            assert "*" not in action, action


def test_the_hub_assumes_only_the_member_role_and_only_inside_the_organization() -> None:
    grants = _granted(_statements(HUB_POLICY))
    assert [a for a in grants if a.startswith("sts:")] == ["sts:AssumeRole"]
    role_name = load_cloudformation(MEMBER_ROLE)["Parameters"]["RoleName"]["Default"]
    assert grants["sts:AssumeRole"] == [f"arn:aws:iam::*:role/{role_name}"]
    [statement] = [s for s in _statements(HUB_POLICY) if "sts:AssumeRole" in _listify(s["Action"])]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION}}


def test_the_member_roles_default_name_is_lakecircles_default_role_name() -> None:
    default = load_cloudformation(MEMBER_ROLE)["Parameters"]["RoleName"]["Default"]
    assert default == "lakecircle"  # the issue: LCC_ROLE_NAME defaults to "lakecircle"
    field = Settings.model_fields.get("role_name")
    if field is not None:  # the setting lands with issue 16's settings
        assert field.default == default


def test_the_hub_never_touches_a_bucket_itself() -> None:
    """Lifecycle, tags and the bucket listing are the member role's: the hub acts in an account only through it."""
    hub = set(_granted(_statements(HUB_POLICY)))
    member = {a for s in _statements(SINGLE_POLICY) for a in _listify(s["Action"])} - ENDPOINT_ACTIONS
    assert member, "the single-account policy has bucket statements"
    assert not hub & member


def test_the_hubs_endpoint_access_is_the_single_account_policys_with_records_under_accounts() -> None:
    single = {s["Sid"]: s for s in _statements(SINGLE_POLICY) if set(_listify(s["Action"])) <= ENDPOINT_ACTIONS}
    hub = {s["Sid"]: s for s in _statements(HUB_POLICY) if set(_listify(s["Action"])) <= ENDPOINT_ACTIONS}
    assert set(hub) == set(single)
    for sid, statement in single.items():
        assert hub[sid]["Action"] == statement["Action"], sid
        if statement["Action"] == ["s3:ListBucket"]:
            assert hub[sid] == statement, "the same bucket, the same prefix"
            continue
        expected = []
        for resource in _listify(statement["Resource"]):
            kind = resource.removeprefix(ENDPOINT).removesuffix("/*")
            # Definitions, LakeCircle's own state and the leases (lease/<account>.json) are the
            # service's; records are each account's.
            shared = kind in {"definition", "data", "lease"}
            expected.append(resource if shared else f"{ENDPOINT}accounts/*/{kind}/*")
        assert _listify(hub[sid]["Resource"]) == expected, sid
    assert not any("definition" in r for r in _granted(_statements(HUB_POLICY))["s3:PutObject"])


def test_organizations_access_is_the_listing_and_the_filters_each_in_its_own_statement() -> None:
    statements = {s["Sid"]: s for s in _statements(HUB_POLICY)}
    granted = {a for s in statements.values() for a in _listify(s["Action"]) if a.startswith("organizations:")}
    assert granted == set().union(*ORGANIZATIONS_STATEMENTS.values())
    for sid, actions in ORGANIZATIONS_STATEMENTS.items():
        assert set(_listify(statements[sid]["Action"])) == actions, sid
    # ListAccounts takes no resource; the others are held to this organization's accounts, root and OUs.
    assert statements["ListTheOrganizationsAccounts"]["Resource"] == "*"
    for sid in OPTIONAL_STATEMENTS:
        for resource in _listify(statements[sid]["Resource"]):
            assert f"/{ORGANIZATION}/" in resource, resource


def test_the_hub_policy_grants_exactly_the_organizations_actions_the_account_source_calls() -> None:
    called = adapter_operations() & set(ORGANIZATIONS_ACTIONS)
    granted = {a for s in _statements(HUB_POLICY) for a in _listify(s["Action"]) if a.startswith("organizations:")}
    assert granted == {ORGANIZATIONS_ACTIONS[op] for op in called}


def test_the_readme_says_when_each_hub_statement_is_needed() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## Many accounts")[2]
    assert section, "deploy/README.md has a Many accounts section"
    for statement in _statements(HUB_POLICY):
        assert f"`{statement['Sid']}`" in section, statement["Sid"]
        for action in _listify(statement["Action"]):
            assert f"`{action}`" in readme, action
    for name in ("LCC_ACCOUNT_FILTER", "AccountTags", ORGANIZATION, "StackSet"):
        assert name in section, name


# -- the member role ------------------------------------------------------------------


def test_the_member_role_grants_exactly_the_bucket_statements_of_the_single_account_policy() -> None:
    [policy] = _member_role()["Policies"]
    member = [{**s, "Resource": _resolve_partition(s["Resource"])} for s in policy["PolicyDocument"]["Statement"]]
    single = [s for s in _statements(SINGLE_POLICY) if not set(_listify(s["Action"])) & ENDPOINT_ACTIONS]
    assert len(member) == len(single)
    for ours, theirs in zip(member, single, strict=True):
        assert ours["Sid"] == theirs["Sid"]
        assert ours["Effect"] == "Allow"
        assert sorted(_listify(ours["Action"])) == sorted(_listify(theirs["Action"])), ours["Sid"]
        assert _listify(ours["Resource"]) == _listify(theirs["Resource"]), ours["Sid"]
    assert "s3:GetBucketTagging" in {a for s in member for a in _listify(s["Action"])}


def test_the_member_role_trusts_the_hubs_role_alone_with_the_external_id_when_given() -> None:
    template = load_cloudformation(MEMBER_ROLE)
    [trust] = _member_role()["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"AWS": {"Ref": "HubRoleArn"}}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {
        "Fn::If": [
            "HasExternalId",
            {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert template["Conditions"]["HasExternalId"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExternalId"}, ""]}]}
    assert template["Parameters"]["ExternalId"]["Default"] == ""
    assert template["Parameters"]["ExternalId"]["NoEcho"] is True


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("arn:aws:iam::999999999999:role/lakecircle-hub", True),
        ("arn:aws:iam::999999999999:role/platform/lakecircle-hub", True),
        ("arn:aws-cn:iam::999999999999:role/lakecircle-hub", True),
        ("arn:aws:iam::99999999999:role/lakecircle-hub", False),
        ("arn:aws:iam::999999999999:user/someone", False),
        ("arn:aws:iam::999999999999:root", False),
        ("999999999999", False),
    ],
)
def test_the_hub_role_parameter_takes_a_roles_arn_only(value: str, *, allowed: bool) -> None:
    pattern = load_cloudformation(MEMBER_ROLE)["Parameters"]["HubRoleArn"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is allowed


def test_the_member_role_is_named_by_its_parameter() -> None:
    assert _member_role()["RoleName"] == {"Ref": "RoleName"}


def test_the_member_role_template_names_no_account_and_no_partition() -> None:
    """A service-managed StackSet deploys one template to every account: nothing in it may be account-specific."""
    text = MEMBER_ROLE.read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"(?<!\d)\d{12}(?!\d)", body), "an account ID in the template"
    resources = json.dumps(load_cloudformation(MEMBER_ROLE)["Resources"])
    assert "arn:aws:" not in resources, "ARNs use ${AWS::Partition}"


# -- cfn-lint -------------------------------------------------------------------------


def _cfn_lint(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint of the test extra, every rule level included (informational rules check IAM resources)."""
    binary = Path(sys.executable).parent / "cfn-lint"
    assert binary.exists(), "cfn-lint is in the test extra: pip install -e '.[test]'"
    return subprocess.run(  # noqa: S603 -- cfn-lint on our own files
        [str(binary), "--include-checks", "I", "--regions", "us-east-1", "eu-west-1", "--", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _policy_template(policy: dict[str, Any]) -> dict[str, Any]:
    """A template attaching ``policy`` to a role, so that cfn-lint checks its actions and resources."""
    trust = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}},
            },
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyName": "lakecircle", "Roles": [{"Ref": "Role"}], "PolicyDocument": policy},
            },
        },
    }


def test_there_are_templates_to_lint() -> None:
    assert MEMBER_ROLE in TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_finds_nothing_in(template: Path) -> None:
    result = _cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_fails_a_broken_copy_of_the_member_role(tmp_path: Path) -> None:
    text = MEMBER_ROLE.read_text(encoding="utf-8")
    assert "Type: AWS::IAM::Role\n" in text
    broken = tmp_path / MEMBER_ROLE.name
    broken.write_text(text.replace("Type: AWS::IAM::Role\n", "Type: AWS::IAM::Rolle\n"), encoding="utf-8")
    result = _cfn_lint(broken)
    assert result.returncode & 2, result.stdout  # 2: an error
    assert "E3006" in result.stdout


@pytest.mark.parametrize("policy", [SINGLE_POLICY, HUB_POLICY], ids=lambda p: p.name)
def test_cfn_lint_finds_nothing_in_the_policy(policy: Path, tmp_path: Path) -> None:
    template = tmp_path / "policy.json"
    template.write_text(json.dumps(_policy_template(json.loads(policy.read_text(encoding="utf-8")))))
    result = _cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda s: s[1].update(Action=["organizations:ListAcounts"]), "W3037"),  # no such action
        (lambda s: s[2].update(Resource="arn:aws:s3:::my-lakecircle-bucket"), "I3510"),  # not an account
    ],
    ids=["a misspelled action", "a resource the action does not take"],
)
def test_cfn_lint_catches_a_broken_hub_policy(change: Any, rule: str, tmp_path: Path) -> None:
    policy = json.loads(HUB_POLICY.read_text(encoding="utf-8"))
    change(policy["Statement"])
    template = tmp_path / "policy.json"
    template.write_text(json.dumps(_policy_template(policy)))
    result = _cfn_lint(template)
    assert result.returncode != 0
    assert rule in result.stdout


# -- the metrics contract of multi-account mode ---------------------------------------


def test_the_account_labelled_metrics_exist_today_without_an_account_label() -> None:
    """Multi-account mode adds a label to series that single-account mode exposes unchanged."""
    exposed = exposed_metrics()
    for name in ACCOUNT_LABELLED:
        parts = [n for n in exposed if n == name or n.removesuffix("_bucket") == name]
        assert parts, f"{name} is not exposed: the contract names a metric that does not exist"
        for part in parts:
            assert ACCOUNT not in exposed[part], f"{part} has an account label in single-account mode"


def test_the_hub_only_metrics_are_not_exposed_in_single_account_mode() -> None:
    assert not set(MULTI_ACCOUNT_ONLY) & set(exposed_metrics())
    assert ACCOUNT_STATES == ("managed", "failed", "skipped")  # the states of lakecircle_accounts


def test_a_hubs_exporter_exposes_exactly_what_the_contract_declares() -> None:
    """The dashboard and the alerts are checked against both; so the exporter cannot drift from them."""
    assert hub_exposed_metrics() == declared_contract()
