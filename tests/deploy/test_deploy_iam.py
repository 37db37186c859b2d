"""deploy/iam-policy.json grants exactly the actions of the operations the S3 adapter calls.

The operations are read out of lakecircle/adapters/ itself (every request goes through
``S3Adapter.call`` or ``S3Adapter._retried`` with the operation's API name), so a new
call without its permission, or a permission nobody uses any more, fails here.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import botocore.session
import pytest

from tests.deploy_common import DEPLOY, REPO

ADAPTERS = REPO / "lakecircle" / "adapters"
POLICY = DEPLOY / "iam-policy.json"

ENDPOINT_BUCKET = "my-lakecircle-bucket"
ENDPOINT_PREFIX = "lifecycle/"

ACTIONS: dict[str, str | None] = {
    # API operation -> the IAM action that authorizes it (None: no permission needed).
    "GetCallerIdentity": None,  # STS answers anyone about themselves, even under an explicit deny
    "ListBuckets": "s3:ListAllMyBuckets",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketTagging": "s3:GetBucketTagging",  # only for selectors with BucketTags
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",  # S3 has no action of its own for it
    "ListObjectsV2": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    # The server probe's scratch bucket and object (LCC_PROBE_SERVER): sent to S3-compatible
    # servers only, never to AWS S3 itself (lakecircle/adapters/s3/probe.py), so never granted.
    "CreateBucket": None,
    "DeleteBucket": None,
    "DeleteObject": None,
    "ListDirectoryBuckets": "s3express:ListAllMyDirectoryBuckets",
}

DIRECTORY_ACTIONS: dict[str, str] = {
    # On a directory bucket (S3 Express One Zone), S3 authorizes these operations with an action
    # of its own, granted beside the general purpose bucket's.
    "GetBucketLifecycleConfiguration": "s3express:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3express:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3express:PutLifecycleConfiguration",
}

ORGANIZATIONS_ACTIONS: dict[str, str] = {
    # The hub's Organizations operations (deploy/iam-policy-hub.json; never the member's policy).
    "ListAccounts": "organizations:ListAccounts",
    "ListAccountsForParent": "organizations:ListAccountsForParent",
    "ListOrganizationalUnitsForParent": "organizations:ListOrganizationalUnitsForParent",
    "ListTagsForResource": "organizations:ListTagsForResource",
}

EVENTS_ACTIONS: dict[str, str] = {
    # The events queue's operations (LCC_EVENTS_QUEUE, optional): granted on the queue by the policy
    # deploy/aws/events.yaml makes, never by deploy/iam-policy.json.
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",  # SQS authorises a batch as its single operation
}

SENDERS = {"call", "_retried", "_pages"}
"""The adapters' methods every request goes through; the first argument is the operation."""


def called_operations(source: str) -> set[str]:
    """The operation names passed to ``call``/``_retried``, as literals or local string variables."""
    operations: set[str] = set()
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        local = {
            target.id: node.value.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            # s.call(...), or call(...) through a local name for the sender
            sender = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if sender not in SENDERS or not node.args:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                operations.add(first.value)
            elif isinstance(first, ast.Name) and first.id in local:
                operations.add(local[first.id])
            elif isinstance(first, ast.Name) and first.id == "operation" and function.name in SENDERS:
                continue  # the senders themselves pass their parameter on
            else:
                raise AssertionError(
                    f"line {node.lineno}: {function.name}() sends an operation this test cannot read: "
                    f"{ast.unparse(first)}; pass the API name as a string literal or a local string variable"
                )
    return operations


def _policy() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(POLICY.read_text(encoding="utf-8"))
    return data


def _listify(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def granted() -> dict[str, list[str]]:
    """IAM action -> the resources the policy grants it on."""
    grants: dict[str, list[str]] = {}
    for statement in _policy()["Statement"]:
        for action in _listify(statement["Action"]):
            grants.setdefault(action, []).extend(_listify(statement["Resource"]))
    return grants


def test_operations_are_read_out_of_the_adapter() -> None:
    source = """
class A:
    async def call(self, operation, **params):
        return await self._retried(operation, params)
    async def one(self):
        await self.call("ListBuckets")
    async def two(self):
        op = "GetObject"
        await self._retried(op, {}, None)
    async def three(self):
        call = self.call
        await call("ListDirectoryBuckets")
"""
    assert called_operations(source) == {"ListBuckets", "GetObject", "ListDirectoryBuckets"}
    with pytest.raises(AssertionError, match="cannot read"):
        called_operations("async def f(s, x):\n    await s.call(x.name)\n")


def test_the_adapter_calls_only_operations_with_a_known_permission() -> None:
    operations = adapter_operations()
    assert {"ListBuckets", "GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration"} <= operations
    unknown = operations - set(ACTIONS) - set(ORGANIZATIONS_ACTIONS) - set(EVENTS_ACTIONS)
    assert not unknown, f"add the IAM action of {sorted(unknown)} to ACTIONS and to deploy/iam-policy.json"


def adapter_operations() -> set[str]:
    """Every S3 and STS operation the adapters' source calls."""
    return set().union(*(called_operations(p.read_text(encoding="utf-8")) for p in sorted(ADAPTERS.rglob("*.py"))))


def test_the_mapping_names_real_api_operations() -> None:
    session = botocore.session.get_session()
    real = set(session.get_service_model("s3").operation_names) | set(session.get_service_model("sts").operation_names)
    assert set(ACTIONS) <= real
    assert set(ORGANIZATIONS_ACTIONS) <= set(session.get_service_model("organizations").operation_names)
    assert set(EVENTS_ACTIONS) <= set(session.get_service_model("sqs").operation_names)


def test_the_policy_grants_exactly_the_actions_the_adapter_needs() -> None:
    operations = adapter_operations() - set(ORGANIZATIONS_ACTIONS) - set(EVENTS_ACTIONS)
    needed = {ACTIONS[op] for op in operations} - {None}
    needed |= {DIRECTORY_ACTIONS[op] for op in operations if op in DIRECTORY_ACTIONS}
    assert set(granted()) == needed


def test_the_policy_only_allows_and_names_no_wildcard_actions() -> None:
    policy = _policy()
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        for action in _listify(statement["Action"]):
            assert "*" not in action, action


def test_object_access_stays_under_the_endpoint_prefix() -> None:
    grants = granted()
    base = f"arn:aws:s3:::{ENDPOINT_BUCKET}/{ENDPOINT_PREFIX}"
    for action in ("s3:GetObject", "s3:PutObject"):
        for resource in grants[action]:
            assert resource.startswith(base), f"{action} on {resource}"
            assert resource.endswith("/*"), resource
    assert f"{base}definition/*" in grants["s3:GetObject"]
    # LakeCircle never writes its own input.
    assert not any(r.startswith(f"{base}definition") for r in grants["s3:PutObject"])
    written = {r.removeprefix(base).removesuffix("/*") for r in grants["s3:PutObject"]}
    assert written == {"current", "previous", "history", "log", "data", "lease"}
    # The leases are read and written (conditional writes need nothing but s3:PutObject).
    assert f"{base}lease/*" in grants["s3:GetObject"]


def test_listing_is_limited_to_the_endpoint_bucket_and_prefix() -> None:
    [statement] = [s for s in _policy()["Statement"] if "s3:ListBucket" in _listify(s["Action"])]
    assert _listify(statement["Resource"]) == [f"arn:aws:s3:::{ENDPOINT_BUCKET}"]
    prefixes = _listify(statement["Condition"]["StringLike"]["s3:prefix"])
    assert prefixes == [f"{ENDPOINT_PREFIX}*"]


def test_bucket_level_actions_are_on_buckets_not_objects() -> None:
    grants = granted()
    assert grants["s3:ListAllMyBuckets"] == ["*"]
    for action in ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:GetBucketLocation"):
        assert grants[action] == ["arn:aws:s3:::*"], action


TAG_STATEMENT = "ReadBucketTagsForTagSelectors"


def test_tag_reads_have_a_statement_of_their_own_that_users_without_tag_selectors_delete() -> None:
    [statement] = [s for s in _policy()["Statement"] if "s3:GetBucketTagging" in _listify(s["Action"])]
    assert statement["Sid"] == TAG_STATEMENT
    assert _listify(statement["Action"]) == ["s3:GetBucketTagging"]
    assert _listify(statement["Resource"]) == ["arn:aws:s3:::*"]  # buckets, not objects
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert f"`{TAG_STATEMENT}`" in readme
    assert "`BucketTags`" in readme


def test_the_readme_explains_every_action() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for action in granted():
        assert f"`{action}`" in readme, action
    assert "sts:GetCallerIdentity" in readme
