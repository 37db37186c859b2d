"""A member account reached through its role, against moto's S3 and STS over HTTP.

moto's STS answers AssumeRole for any role ARN, and the credentials it gives act in the
account the ARN names: each account has its own buckets. It never refuses an AssumeRole
into another account, not for a role that does not exist nor for a trust policy that does
not name the caller (even with its IAM authorization turned on, it checks trust policies
of the caller's own account only), so a refused AssumeRole is STS's own answer given by
the fault proxy, pinned on that one role. A session near its end is made the same way: the
proxy hands the adapter moto's real credentials for the role with an earlier Expiration,
since STS refuses a DurationSeconds under 900 s and the SDK renews 15 minutes before the
end of any session.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from moto.sts.models import sts_backends

from lakecircle import errors
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.errors import role_error
from lakecircle.adapters.s3.roles import MAX_SESSION_NAME, MemberAdapter, ServiceIdentity, role_session_name
from lakecircle.core.accounts import Account
from lakecircle.ports import BucketRef
from tests.builders import RecordingObserver
from tests.conftest import MOTO_REGION
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import SECRETS, assumed_client, cli_env, leaks

pytestmark = pytest.mark.anyio

SESSION = "lakecircle-replica-0"
MEMBERS = ("111111111111", "222222222222", "333333333333")
EXTERNAL_ID = "lcc-canary-external-Zt7Wq3Ls9Pd1"
"""A fake ExternalId: a secret that no message, log line or output may show."""

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)


def role_of(account: str, name: str = "lakecircle") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def member(account: str, **fields: Any) -> Account:
    return Account(account, fields.pop("role_arn", role_of(account)), **fields)


def identity(endpoint_url: str | None = None) -> ServiceIdentity:
    return ServiceIdentity(region=MOTO_REGION, endpoint_url=endpoint_url, session_name=SESSION)


async def names(adapter: MemberAdapter) -> list[str]:
    return sorted(ref.name for page in [p async for p in adapter.iter_buckets()] for ref in page)


def create_buckets(account: str, *buckets: str) -> None:
    s3 = assumed_client("s3", role_of(account))
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)


def sts_answer(role_arn: str, expires: dt.datetime) -> tuple[bytes, str]:
    """AssumeRole's answer for ``role_arn`` as STS gives it, with moto's real credentials for the
    role but the Expiration given; and the answer's access key ID."""
    sts = boto3.client("sts", region_name=MOTO_REGION)
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION)
    credentials, user = answer["Credentials"], answer["AssumedRoleUser"]
    body = (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>'
        f"<AccessKeyId>{credentials['AccessKeyId']}</AccessKeyId>"
        f"<SecretAccessKey>{credentials['SecretAccessKey']}</SecretAccessKey>"
        f"<SessionToken>{credentials['SessionToken']}</SessionToken>"
        f"<Expiration>{expires:%Y-%m-%dT%H:%M:%SZ}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>{user['AssumedRoleId']}</AssumedRoleId><Arn>{user['Arn']}</Arn>"
        "</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>crafted</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    )
    return body.encode(), credentials["AccessKeyId"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto) as started:
        yield started


# -- the accounts, each through its role ---------------------------------------------------


async def test_each_member_account_lists_only_its_own_buckets_through_its_role(moto: str, s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="hub-records")
    for account in MEMBERS:
        create_buckets(account, f"data-{account}", f"logs-{account}")
    hub = identity()

    listed = {}
    for account in MEMBERS:
        async with MemberAdapter(member=member(account), identity=hub) as adapter:
            listed[account] = await names(adapter)

    assert listed == {account: [f"data-{account}", f"logs-{account}"] for account in MEMBERS}


async def test_every_bucket_call_carries_the_member_account_as_expected_bucket_owner(proxy: FaultProxy) -> None:
    account = MEMBERS[0]
    create_buckets(account, "owned")
    ref = BucketRef("owned", None)  # no region listed: HeadBucket finds it
    operations = ("HeadBucket", "GetBucketLifecycleConfiguration", "DeleteBucketLifecycle", "GetBucketTagging")

    async with MemberAdapter(member=member(account), identity=identity(proxy.url)) as adapter:
        await adapter.get_lifecycle(ref)
        await adapter.delete_lifecycle(ref)
        await adapter.get_bucket_tags(ref)

    assert {e.operation for e in proxy.bucket_events("owned", operations)} == set(operations)
    assert proxy.owner_problems(account, operations) == []


async def test_the_role_session_is_named_for_the_replica_and_carries_the_external_id(moto: str) -> None:
    account = MEMBERS[1]

    async with MemberAdapter(member=member(account, external_id=EXTERNAL_ID), identity=identity()) as adapter:
        caller = await adapter.check_account()

    assert caller == f"arn:aws:sts::{account}:assumed-role/lakecircle/{SESSION}"
    (assumed,) = sts_backends[account]["aws"].assumed_roles
    assert (assumed.role_arn, assumed.session_name, assumed.external_id) == (role_of(account), SESSION, EXTERNAL_ID)
    lasts = (assumed.expiration - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()
    assert 3500 < lasts <= 3600, "DurationSeconds is STS's default: an hour"


async def test_no_external_id_is_sent_when_the_account_has_none(moto: str) -> None:
    async with MemberAdapter(member=member(MEMBERS[2]), identity=identity()) as adapter:
        await adapter.check_account()

    (assumed,) = sts_backends[MEMBERS[2]]["aws"].assumed_roles
    assert assumed.external_id is None


async def test_one_assume_role_serves_every_request_of_an_account(proxy: FaultProxy) -> None:
    account = MEMBERS[0]
    create_buckets(account, "bkt-a1", "bkt-a2")

    async with MemberAdapter(member=member(account), identity=identity(proxy.url)) as adapter:
        await names(adapter)
        for bucket in ("bkt-a1", "bkt-a2"):
            await adapter.get_lifecycle(BucketRef(bucket, MOTO_REGION))

    assert proxy.seen["AssumeRole"] == 1
    signers = {e.signer for e in proxy.events if e.operation != "AssumeRole"}
    assert len(signers) == 1
    assert signers != {"testing"}, "the bucket calls are signed with the role's session, not the service's keys"


# -- the identity check --------------------------------------------------------------------


async def test_the_account_is_verified_before_its_first_bucket_call(proxy: FaultProxy) -> None:
    create_buckets(MEMBERS[0], "first")

    async with MemberAdapter(member=member(MEMBERS[0]), identity=identity(proxy.url)) as adapter:
        assert await names(adapter) == ["first"]  # no check_account() first: the adapter makes it
        await names(adapter)

    assert [e.operation for e in proxy.events] == ["AssumeRole", "GetCallerIdentity", "ListBuckets", "ListBuckets"]


async def test_a_role_that_answers_as_another_account_is_refused_before_any_bucket_call(proxy: FaultProxy) -> None:
    wrong = member(MEMBERS[0], role_arn=role_of(MEMBERS[1]))  # a copy-paste slip in the accounts file

    async with MemberAdapter(member=wrong, identity=identity(proxy.url)) as adapter:
        with pytest.raises(errors.RoleAccountMismatch) as caught:
            await names(adapter)
        with pytest.raises(errors.RoleAccountMismatch):
            await adapter.get_lifecycle(BucketRef("anything", MOTO_REGION))

    message = str(caught.value)
    assert f"account {MEMBERS[0]}: the role {role_of(MEMBERS[1])} answered as account {MEMBERS[1]}" in message
    assert "RoleArn" in message
    assert isinstance(caught.value, errors.AccountMismatch)
    assert "ListBuckets" not in proxy.seen
    assert "GetBucketLifecycleConfiguration" not in proxy.seen


# -- refusals and failures, each naming the account, the role and the cause ----------------


async def test_a_refused_assume_role_fails_that_account_only(proxy: FaultProxy) -> None:
    for account in MEMBERS:
        create_buckets(account, f"b-{account}")
    refused = MEMBERS[1]
    proxy.force("AssumeRole", role_of(refused), Fault.DENIED)
    hub = identity(proxy.url)

    outcomes: dict[str, Any] = {}
    for account in MEMBERS:
        async with MemberAdapter(member=member(account), identity=hub, retry=FAST) as adapter:
            try:
                outcomes[account] = await names(adapter)
            except errors.LakeCircleError as exc:
                outcomes[account] = exc

    denied = outcomes.pop(refused)
    assert outcomes == {account: [f"b-{account}"] for account in MEMBERS if account != refused}
    assert isinstance(denied, errors.RoleDenied)
    assert isinstance(denied, errors.AccessDenied)
    assert (denied.account, denied.role_arn, denied.operation, denied.code) == (
        refused,
        role_of(refused),
        "AssumeRole",
        "AccessDenied",
    )
    message = str(denied)
    assert message.startswith(f"account {refused} (role {role_of(refused)}): AssumeRole failed [AccessDenied]")
    assert "trust policy" in message
    assert "ExternalId" in message
    assert proxy.injected[(Fault.DENIED, "AssumeRole")] == 1, "a refusal is not retried"


async def test_a_throttled_assume_role_is_retried_for_that_account_only(proxy: FaultProxy) -> None:
    throttled, calm = MEMBERS[0], MEMBERS[1]
    proxy.force("AssumeRole", role_of(throttled), Fault.SLOWDOWN, times=2)
    observers = {throttled: RecordingObserver(), calm: RecordingObserver()}
    hub = identity(proxy.url)

    for account in (throttled, calm):
        async with MemberAdapter(
            member=member(account), identity=hub, retry=FAST, observer=observers[account]
        ) as adapter:
            assert await names(adapter) == []

    assert [(op, reason) for op, reason, _ in observers[throttled].retries] == [("GetCallerIdentity", "throttled")] * 2
    assert observers[calm].retries == []
    assert proxy.seen["AssumeRole"] == 4  # 3 for the throttled account, 1 for the calm one


async def instantly(seconds: float) -> None:
    """A sleep that returns at once (backoffs and gate holds take no time)."""


async def test_one_accounts_throttling_slows_that_account_only(moto: str) -> None:
    throttled, calm = MEMBERS[0], MEMBERS[1]
    # One frozen instant: every answer falls in the gate's one-second window, and none recovers.
    patient = RetryPolicy(max_attempts=12, base_delay=0.01, max_delay=0.02)
    options: dict[str, Any] = {"retry": patient, "clock": lambda: 1000.0, "sleep": instantly}

    with FaultProxy(moto, rates={Fault.SLOWDOWN: 0.3}, seed=3) as slow_down:
        async with (
            MemberAdapter(member=member(throttled), identity=identity(slow_down.url), **options) as busy,
            MemberAdapter(member=member(calm), identity=identity(moto), **options) as quiet,
            anyio.create_task_group() as tasks,
        ):
            for adapter in (busy, quiet):
                for _ in range(60):
                    tasks.start_soon(names, adapter)

    assert slow_down.total(Fault.SLOWDOWN) >= 15
    assert busy.gate.level >= 1, "the throttled account's gate slowed it down"
    assert (quiet.gate.level, quiet.gate.rate) == (0, None), "the other account's gate never moved"


async def test_throttling_that_outlasts_the_retries_is_an_error_naming_the_account(proxy: FaultProxy) -> None:
    proxy.force("AssumeRole", role_of(MEMBERS[0]), Fault.SLOWDOWN)

    async with MemberAdapter(member=member(MEMBERS[0]), identity=identity(proxy.url), retry=FAST) as adapter:
        with pytest.raises(errors.RoleThrottled) as caught:
            await adapter.check_account()

    assert isinstance(caught.value, errors.TransientError)
    assert str(caught.value).startswith(f"account {MEMBERS[0]} (role {role_of(MEMBERS[0])}): AssumeRole failed")
    assert "STS is throttling" in str(caught.value)
    assert proxy.seen["AssumeRole"] == FAST.max_attempts


async def test_an_sts_that_cannot_be_reached_is_an_error_naming_the_account(moto: str) -> None:
    nowhere = identity("http://127.0.0.1:9")  # the discard port: nothing listens

    async with MemberAdapter(
        member=member(MEMBERS[0]), identity=nowhere, endpoint_url=moto, retry=RetryPolicy(max_attempts=1)
    ) as adapter:
        with pytest.raises(errors.RoleUnreachable) as caught:
            await adapter.check_account()

    assert caught.value.account == MEMBERS[0]
    assert "AWS_ENDPOINT_URL" in str(caught.value)
    assert "LCC_AWS_REGION" in str(caught.value)


# -- the session: renewed by the SDK, refused when it cannot be --------------------------


async def test_a_session_near_its_end_is_renewed_by_the_sdk_before_the_next_request(proxy: FaultProxy) -> None:
    account = MEMBERS[0]
    create_buckets(account, "renewed")
    role = role_of(account)
    short, short_key = sts_answer(role, now() + dt.timedelta(seconds=120))  # under the SDK's 10 minutes
    proxy.force("AssumeRole", role, short, times=1)

    async with MemberAdapter(member=member(account), identity=identity(proxy.url)) as adapter:
        await adapter.check_account()
        assert await names(adapter) == ["renewed"]
        await names(adapter)

    signers = [(e.operation, e.signer) for e in proxy.events]
    renewed_key = signers[3][1]
    assert signers == [
        ("AssumeRole", "testing"),
        ("GetCallerIdentity", short_key),
        ("AssumeRole", "testing"),
        ("ListBuckets", renewed_key),
        ("ListBuckets", renewed_key),
    ]
    assert renewed_key not in (short_key, "testing")


async def test_a_session_that_cannot_be_renewed_fails_with_the_account_and_the_cause(proxy: FaultProxy) -> None:
    account = MEMBERS[0]
    role = role_of(account)
    short, _ = sts_answer(role, now() + dt.timedelta(seconds=120))
    proxy.force("AssumeRole", role, short, times=1)

    async with MemberAdapter(member=member(account), identity=identity(proxy.url), retry=FAST) as adapter:
        await adapter.check_account()
        proxy.force("AssumeRole", role, Fault.DENIED)  # the role was deleted meanwhile
        with pytest.raises(errors.RoleDenied) as caught:
            await names(adapter)

    assert (caught.value.account, caught.value.role_arn) == (account, role)
    assert "ListBuckets" not in proxy.seen, "no request goes out with a session the SDK would not renew"


async def test_a_session_sts_hands_out_already_ended_is_refused_and_names_the_clock(proxy: FaultProxy) -> None:
    account = MEMBERS[2]
    ended, _ = sts_answer(role_of(account), now() - dt.timedelta(minutes=5))
    proxy.force("AssumeRole", role_of(account), ended)

    async with MemberAdapter(member=member(account), identity=identity(proxy.url), retry=FAST) as adapter:
        with pytest.raises(errors.RoleSessionExpired) as caught:
            await adapter.check_account()

    message = str(caught.value)
    assert message.startswith(f"account {account} (role {role_of(account)}): AssumeRole failed")
    assert "before this machine's time" in message
    assert "clock" in message
    assert "GetCallerIdentity" not in proxy.seen


class ExpiredSessionClient:
    """A stub client of a member account whose session S3 says has expired."""

    async def get_caller_identity(self) -> dict[str, Any]:
        return {"Account": MEMBERS[0], "Arn": f"arn:aws:sts::{MEMBERS[0]}:assumed-role/lakecircle/{SESSION}"}

    async def list_buckets(self, **_: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {"Code": "ExpiredToken", "Message": "The provided token has expired."},
                "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "R1"},
            },
            "ListBuckets",
        )

    async def __aenter__(self) -> ExpiredSessionClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


async def test_a_bucket_call_refused_for_an_expired_session_names_the_account_and_the_role(moto: str) -> None:
    async with MemberAdapter(
        member=member(MEMBERS[0]), identity=identity(), client_factory=lambda service, region: ExpiredSessionClient()
    ) as adapter:
        with pytest.raises(errors.RoleSessionExpired) as caught:
            await names(adapter)

    assert (caught.value.operation, caught.value.code) == ("ListBuckets", "ExpiredToken")
    assert str(caught.value).startswith(f"account {MEMBERS[0]} (role {role_of(MEMBERS[0])}): ListBuckets failed")


def sts_error(code: str, status: int, message: str = "no") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "AssumeRole"
    )


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        pytest.param(sts_error("AccessDenied", 403), errors.RoleDenied, id="a refused AssumeRole is role-denied"),
        pytest.param(
            sts_error("RegionDisabledException", 403, "STS is not activated in this region for account:111111111111"),
            errors.RoleDenied,
            id="STS off in the region is role-denied, with STS's words",
        ),
        pytest.param(sts_error("Throttling", 400), errors.RoleThrottled, id="throttling is retried"),
        pytest.param(sts_error("InternalFailure", 500), errors.RoleUnavailable, id="a failing STS is retried"),
        pytest.param(
            sts_error("ValidationError", 400, "1 validation error detected: roleArn"),
            errors.RoleRefused,
            id="an invalid request is refused",
        ),
        pytest.param(sts_error("ExpiredToken", 400), errors.RoleSessionExpired, id="an expired token is an expiry"),
        pytest.param(
            EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com/"),
            errors.RoleUnreachable,
            id="an unreachable endpoint is retried",
        ),
    ],
)
def test_each_failure_of_assume_role_is_the_role_error_that_says_what_to_do(
    raised: Exception, expected: type[errors.RoleError]
) -> None:
    error = role_error(raised, account="111111111111", role_arn=role_of("111111111111"))

    assert type(error) is expected
    assert isinstance(error, errors.RoleError)
    assert (error.account, error.role_arn) == ("111111111111", role_of("111111111111"))
    assert str(error).startswith(f"account 111111111111 (role {role_of('111111111111')}): AssumeRole failed")


def test_a_service_without_credentials_of_its_own_is_a_configuration_error() -> None:
    error = role_error(NoCredentialsError(), account="111111111111", role_arn=role_of("111111111111"))

    assert isinstance(error, errors.ConfigError)


# -- secrets --------------------------------------------------------------------------------


async def test_no_message_of_a_role_error_shows_the_external_id_or_a_key(proxy: FaultProxy) -> None:
    accounts = {MEMBERS[0]: Fault.DENIED, MEMBERS[1]: Fault.SLOWDOWN}
    for account, fault in accounts.items():
        proxy.force("AssumeRole", role_of(account), fault)
    ended, key = sts_answer(role_of(MEMBERS[2]), now() - dt.timedelta(minutes=1))
    proxy.force("AssumeRole", role_of(MEMBERS[2]), ended)
    hub = identity(proxy.url)

    texts = []
    for account in MEMBERS:
        async with MemberAdapter(member=member(account, external_id=EXTERNAL_ID), identity=hub, retry=FAST) as adapter:
            with pytest.raises(errors.RoleError) as caught:
                await adapter.check_account()
        error: BaseException | None = caught.value
        while error is not None:  # the error and every cause under it
            texts += [str(error), repr(error), *map(str, error.args)]
            error = error.__cause__ or error.__context__

    assert len(texts) > 3 * 3
    assert [text for text in texts if EXTERNAL_ID in text or key in text or "testing" in text] == []


SCRIPT = """
import asyncio, sys
from lakecircle import errors
from lakecircle.adapters.s3.roles import MemberAdapter, ServiceIdentity
from lakecircle.core.accounts import Account

async def main(proxy):
    hub = ServiceIdentity(region="us-east-1", endpoint_url=proxy, session_name="lakecircle-replica-0")
    for account in sys.argv[2:]:
        member = Account(account, f"arn:aws:iam::{account}:role/lakecircle", external_id=sys.argv[1])
        async with MemberAdapter(member=member, identity=hub) as adapter:
            try:
                await adapter.check_account()
            except errors.LakeCircleError as exc:
                print(exc)

asyncio.run(main(sys.argv.pop(1)))
"""


def test_a_failed_assume_role_prints_no_traceback_and_no_secret(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.force("AssumeRole", role_of(MEMBERS[0]), Fault.DENIED)
    ended, key = sts_answer(role_of(MEMBERS[1]), now() - dt.timedelta(minutes=1))
    proxy.force("AssumeRole", role_of(MEMBERS[1]), ended)
    env = cli_env(proxy.url, tmp_path / "home")

    run = subprocess.run(  # noqa: S603 -- this interpreter, a fixed script
        [sys.executable, "-c", SCRIPT, proxy.url, EXTERNAL_ID, MEMBERS[0], MEMBERS[1]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert run.stderr == "", "aiobotocore's warning and its traceback stay off standard error"
    lines = run.stdout.splitlines()
    assert [line.partition("): ")[0] for line in lines] == [
        f"account {MEMBERS[0]} (role {role_of(MEMBERS[0])}",
        f"account {MEMBERS[1]} (role {role_of(MEMBERS[1])}",
    ]
    assert leaks(run.stdout, (*SECRETS, EXTERNAL_ID, key)) == []


# -- the session name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        pytest.param("lakecircle-7d9f-x2", "lakecircle-lakecircle-7d9f-x2", id="a pod name is kept"),
        pytest.param("host.example.com", "lakecircle-host.example.com", id="dots are allowed"),
        pytest.param("rack 4/node:2", "lakecircle-rack-4-node-2", id="characters STS refuses become dashes"),
        pytest.param("nœud", "lakecircle-n-ud", id="letters outside ASCII become dashes"),
        pytest.param("", "lakecircle", id="no label is the bare prefix"),
        pytest.param("x" * 80, "lakecircle-" + "x" * (MAX_SESSION_NAME - 11), id="a long label is cut to 64"),
    ],
)
def test_the_role_session_name_is_lakecircle_and_the_replica_in_stss_alphabet(label: str, expected: str) -> None:
    assert role_session_name(label) == expected


def test_the_role_session_name_defaults_to_the_host_name() -> None:
    assert role_session_name() == role_session_name(socket.gethostname())
    assert role_session_name().startswith("lakecircle-")


def test_a_session_name_sts_would_refuse_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="RoleSessionName"):
        ServiceIdentity(region=MOTO_REGION, session_name="has space")


def test_every_member_session_shares_the_hubs_service_models() -> None:
    hub = identity()
    loader = hub.session.get_component("data_loader")

    sessions = [hub.member_session(member(account)) for account in MEMBERS]

    assert all(session._session.get_component("data_loader") is loader for session in sessions)
