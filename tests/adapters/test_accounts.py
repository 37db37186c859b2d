"""The account sources: an accounts file (on disk, in S3) and the organization, against moto's
server over HTTP (Organizations and S3), with faults from the proxy where moto cannot show them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lakecircle import errors
from lakecircle.adapters.accounts import AccountsFile, OrganizationAccounts, account_source
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.core.account_filter import AccountFilter, parse_account_filter
from lakecircle.core.accounts import Account
from lakecircle.core.accounts_file import MAX_ACCOUNTS_FILE_BYTES
from lakecircle.core.problems import Severity
from lakecircle.ports import AccountSource
from lakecircle.settings import load_settings
from tests.builders import RecordingObserver
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import ANY, Fault, FaultProxy

pytestmark = pytest.mark.anyio

ONE = "111111111111"
TWO = "222222222222"
GOOD = f'[[Account]]\nId = "{ONE}"\nTags = {{ env = "prod" }}\n\n[[Account]]\nId = "{TWO}"\nExternalId = "ext-id"\n'
BAD = f'[[Account]]\nId = {ONE}\n\n[[Account]]\nId = "{TWO}"\n'


def test_the_sources_implement_the_account_source_protocol() -> None:
    adapter = S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION)
    sources: list[AccountSource] = [
        AccountsFile.on_disk(Path("accounts.toml"), role_name="lakecircle"),
        AccountsFile.in_s3(adapter, "s3://config/accounts.toml", role_name="lakecircle"),
        OrganizationAccounts(adapter, role_name="lakecircle"),
    ]
    assert [s.location for s in sources] == ["accounts.toml", "s3://config/accounts.toml", "organization"]


# -- an accounts file on disk ---------------------------------------------------------------------


async def test_a_local_accounts_file_is_read_into_accounts(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(GOOD)

    found = await AccountsFile.on_disk(path, role_name="ops/lakecircle", partition="aws-cn").accounts()

    assert found.accounts == (
        Account(ONE, f"arn:aws-cn:iam::{ONE}:role/ops/lakecircle", tags=(("env", "prod"),)),
        Account(TWO, f"arn:aws-cn:iam::{TWO}:role/ops/lakecircle", "ext-id"),
    )
    assert found.problems == ()


async def test_a_bad_local_accounts_file_names_its_path_entry_and_field(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(BAD)

    found = await AccountsFile.on_disk(path, role_name="lakecircle").accounts()

    assert found.ids == (TWO,)
    (problem,) = found.problems
    assert (problem.file, problem.field) == (str(path), "Account[0].Id")
    assert "quote it" in problem.message


async def test_a_local_accounts_file_over_the_limit_is_read_no_further_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_bytes(GOOD.encode() + b"#" * (2 * MAX_ACCOUNTS_FILE_BYTES))

    found = await AccountsFile.on_disk(path, role_name="lakecircle").accounts()

    assert not found.readable
    assert "over the 1 MiB limit" in found.problems[0].message


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        pytest.param(lambda p: None, "no such file", id="a file that does not exist"),
        pytest.param(lambda p: p.mkdir(), "a directory, not a regular file", id="a directory"),
        pytest.param(os.mkfifo, "named pipe", id="a named pipe is refused without blocking"),
    ],
)
async def test_a_local_accounts_file_that_cannot_be_read_raises_naming_it(
    make: Any, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "accounts.toml"
    make(path)

    with pytest.raises(errors.AccountSourceError) as caught:
        await AccountsFile.on_disk(path, role_name="lakecircle").accounts()

    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


# -- an accounts file in S3 -------------------------------------------------------------------------


@pytest.fixture
async def s3(moto: str) -> AsyncIterator[S3Adapter]:
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION) as adapter:
        yield adapter


async def test_an_accounts_file_in_s3_is_read_through_the_adapter(s3: S3Adapter, s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="config")
    s3_client.put_object(Bucket="config", Key="hub/accounts.toml", Body=GOOD.encode())
    uri = "s3://config/hub/accounts.toml"

    found = await AccountsFile.in_s3(s3, uri, role_name="lakecircle").accounts()

    assert found.ids == (ONE, TWO)
    assert found.accounts[0].role_arn == f"arn:aws:iam::{ONE}:role/lakecircle"
    assert s3.calls["GetObject"] == 1


async def test_a_bad_accounts_file_in_s3_names_its_uri_in_every_problem(s3: S3Adapter, s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="config")
    s3_client.put_object(Bucket="config", Key="accounts.toml", Body=b"[[Account]\n")

    found = await AccountsFile.in_s3(s3, "s3://config/accounts.toml", role_name="lakecircle").accounts()

    assert not found.readable
    assert [p.file for p in found.problems] == ["s3://config/accounts.toml"]


async def test_an_accounts_file_missing_from_s3_raises_naming_it(s3: S3Adapter, s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="config")

    with pytest.raises(errors.AccountSourceError, match=r"no accounts file at s3://config/accounts\.toml"):
        await AccountsFile.in_s3(s3, "s3://config/accounts.toml", role_name="lakecircle").accounts()


async def test_an_accounts_file_in_a_missing_bucket_raises_naming_it(s3: S3Adapter) -> None:
    with pytest.raises(errors.AccountSourceError, match=r"cannot read the accounts file at s3://nowhere/a\.toml"):
        await AccountsFile.in_s3(s3, "s3://nowhere/a.toml", role_name="lakecircle").accounts()


# -- the organization --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    """An organization on moto's server: a management account at the root, and OUs

    ``prod`` (with ``web`` below it) and ``dev``; accounts tagged by where they are, and a
    closed one in ``prod``."""

    root: str
    prod: str
    web: str
    dev: str
    in_prod: str
    in_web: str
    in_dev: str
    closed: str

    @property
    def active(self) -> set[str]:
        return {MOTO_ACCOUNT, self.in_prod, self.in_web, self.in_dev}


def organizations_client() -> Any:
    return boto3.client("organizations", region_name=MOTO_REGION)


def new_account(client: Any, name: str, parent: str, root: str, **tags: str) -> str:
    status = client.create_account(
        Email=f"{name}@example.com", AccountName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    account_id: str = status["CreateAccountStatus"]["AccountId"]
    client.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
    return account_id


@pytest.fixture
def org(moto: str) -> Org:
    client = organizations_client()
    client.create_organization(FeatureSet="ALL")
    root = client.list_roots()["Roots"][0]["Id"]

    def unit(parent: str, name: str) -> str:
        created: str = client.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]
        return created

    prod = unit(root, "prod")
    web = unit(prod, "web")
    dev = unit(root, "dev")
    closed = new_account(client, "closed", prod, root, env="prod", team="media")
    client.close_account(AccountId=closed)
    return Org(
        root=root,
        prod=prod,
        web=web,
        dev=dev,
        in_prod=new_account(client, "media", prod, root, env="prod", team="media"),
        in_web=new_account(client, "web", web, root, env="prod", team="web"),
        in_dev=new_account(client, "dev", dev, root, env="dev"),
        closed=closed,
    )


async def listed(
    s3: S3Adapter, account_filter: AccountFilter | None = None, *, with_tags: bool = False
) -> dict[str, Account]:
    source = OrganizationAccounts(s3, role_name="lakecircle", account_filter=account_filter)
    found = await source.accounts(with_tags=with_tags)
    assert found.problems == ()
    return {a.id: a for a in found.accounts}


async def test_every_active_account_is_listed_with_the_default_role_and_no_tag_read(s3: S3Adapter, org: Org) -> None:
    accounts = await listed(s3)

    assert set(accounts) == org.active
    assert org.closed not in accounts
    assert accounts[org.in_prod] == Account(org.in_prod, f"arn:aws:iam::{org.in_prod}:role/lakecircle")
    assert s3.calls["ListAccounts"] == 1
    assert s3.calls["ListTagsForResource"] == 0


async def test_tags_are_read_when_asked_for(s3: S3Adapter, org: Org) -> None:
    accounts = await listed(s3, with_tags=True)

    assert accounts[org.in_web].tags == (("env", "prod"), ("team", "web"))
    assert accounts[MOTO_ACCOUNT].tags == ()
    assert s3.calls["ListTagsForResource"] == len(org.active)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("env=prod", {"in_prod", "in_web"}, id="a tag selects the accounts carrying it"),
        pytest.param("env=prod,team=web", {"in_web"}, id="every tag must be carried"),
        pytest.param("{prod}", {"in_prod", "in_web"}, id="an OU selects its accounts and those below it"),
        pytest.param("{web}", {"in_web"}, id="an OU below another selects its own accounts only"),
        pytest.param("{web},{dev}", {"in_web", "in_dev"}, id="an account in one of two OUs"),
        pytest.param("{prod},{web}", {"in_prod", "in_web"}, id="an OU and one below it list each account once"),
        pytest.param("{prod},team=media", {"in_prod"}, id="an OU and a tag must both hold"),
        pytest.param("{root}", {"management", "in_prod", "in_web", "in_dev"}, id="the root selects every account"),
    ],
)
async def test_the_filter_selects_accounts_by_tag_and_ou(
    text: str, expected: set[str], s3: S3Adapter, org: Org
) -> None:
    account_filter, problems = parse_account_filter(text.format(**vars(org)))
    assert problems == []

    accounts = await listed(s3, account_filter)

    names = {getattr(org, n) if n != "management" else MOTO_ACCOUNT for n in expected}
    assert set(accounts) == names
    assert org.closed not in accounts


async def test_an_ou_filter_walks_the_ous_and_never_lists_the_whole_organization(s3: S3Adapter, org: Org) -> None:
    await listed(s3, AccountFilter(parents=(org.prod,)))

    assert s3.calls["ListAccounts"] == 0
    assert s3.calls["ListAccountsForParent"] == 2  # prod and web
    assert s3.calls["ListTagsForResource"] == 0


async def test_a_tag_filter_reads_tags_of_active_accounts_only(s3: S3Adapter, org: Org) -> None:
    await listed(s3, AccountFilter(tags=(("env", "prod"),)))

    assert s3.calls["ListTagsForResource"] == len(org.active)


async def test_an_ou_the_organization_lacks_is_a_problem_and_the_others_are_walked(s3: S3Adapter, org: Org) -> None:
    missing = "ou-zzzz-zzzzzzzz"
    source = OrganizationAccounts(s3, role_name="lakecircle", account_filter=AccountFilter(parents=(missing, org.dev)))

    found = await source.accounts()

    assert found.ids == (org.in_dev,)
    (problem,) = found.problems
    assert (problem.file, problem.field) == ("LCC_ACCOUNT_FILTER", missing)
    assert "no OU or root of the organization" in problem.message


async def test_many_accounts_under_an_ou_are_followed_across_pages(s3: S3Adapter, org: Org) -> None:
    client = organizations_client()
    many = {new_account(client, f"bulk{n}", org.dev, org.root) for n in range(25)}  # moto pages by 20

    accounts = await listed(s3, AccountFilter(parents=(org.dev,)))

    assert set(accounts) == many | {org.in_dev}
    assert s3.calls["ListAccountsForParent"] == 2


class Canned:
    """An Organizations client with canned answers per method, in turn (the last one kept), for
    what moto cannot show: an error it does not send, fields it always sends, a broken listing."""

    def __init__(self, **answers: list[dict[str, Any] | Exception]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def factory(self, service: str, region: str) -> nullcontext[Canned]:
        return nullcontext(self)

    def __getattr__(self, method: str) -> Any:
        async def call(**params: Any) -> dict[str, Any]:
            self.asked.append((method, params))
            queue = self.answers[method]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def refused(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "x")


async def from_canned(client: Canned) -> Any:
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, client_factory=client.factory) as adapter:
        return await OrganizationAccounts(adapter, role_name="lakecircle").accounts()


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        pytest.param("AWSOrganizationsNotInUseException", "in no organization", id="an account in no organization"),
        pytest.param("AccessDeniedException", "organizations:ListAccounts", id="a role without the permission"),
    ],
)
async def test_an_organization_that_cannot_be_listed_raises_saying_what_to_do(code: str, fragment: str) -> None:
    with pytest.raises(errors.AccountSourceError) as caught:
        await from_canned(Canned(list_accounts=[refused(code)]))

    assert code in str(caught.value)
    assert fragment in str(caught.value)


def entry(account_id: str, **status: str) -> dict[str, Any]:
    return {"Id": account_id, "Arn": f"arn:aws:organizations::{MOTO_ACCOUNT}:account/o-x/{account_id}", **status}


async def test_an_account_is_active_by_its_state_else_by_its_status() -> None:
    page = [
        entry("100000000001", Status="ACTIVE", State="ACTIVE"),
        entry("100000000002", Status="ACTIVE"),
        entry("100000000003", Status="SUSPENDED"),
        entry("100000000004", Status="ACTIVE", State="PENDING_ACTIVATION"),
        entry("100000000005", Status="SUSPENDED", State="CLOSED"),
        entry("100000000006", State="ACTIVE"),
    ]

    found = await from_canned(Canned(list_accounts=[{"Accounts": page}]))

    assert found.ids == ("100000000001", "100000000002", "100000000006")


async def test_the_account_listing_follows_its_next_tokens() -> None:
    client = Canned(
        list_accounts=[
            {"Accounts": [entry(ONE, State="ACTIVE")], "NextToken": "t1"},
            {"Accounts": [entry(TWO, State="ACTIVE")]},
        ]
    )

    found = await from_canned(client)

    assert found.ids == (ONE, TWO)
    assert [params for _, params in client.asked] == [{}, {"NextToken": "t1"}]


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(
            [{"Accounts": [entry(ONE, State="ACTIVE")], "NextToken": "t1"}] * 2,
            id="a next token that comes back again would never end",
        ),
        pytest.param([{"Accounts": [{"Id": "12", "State": "ACTIVE"}]}], id="an account without a 12-digit ID"),
        pytest.param(
            [{"Accounts": [{"Id": "../../../../", "State": "ACTIVE"}]}],
            id="an ID of twelve characters that are not digits would make record keys",
        ),
    ],
)
async def test_a_listing_that_cannot_be_trusted_raises(pages: list[dict[str, Any] | Exception]) -> None:
    with pytest.raises(errors.AccountSourceError, match="cannot list the organization's accounts"):
        await from_canned(Canned(list_accounts=[*pages]))


async def test_a_filter_that_selects_no_account_is_a_warning(s3: S3Adapter, org: Org) -> None:
    source = OrganizationAccounts(s3, role_name="lakecircle", account_filter=AccountFilter(tags=(("env", "qa"),)))

    found = await source.accounts()

    assert found.accounts == ()
    (problem,) = found.problems
    assert (problem.file, problem.severity) == ("LCC_ACCOUNT_FILTER", Severity.WARNING)
    assert f"none of the {len(org.active)} ACTIVE account(s)" in problem.message


async def test_an_organization_without_accounts_is_a_warning(s3: S3Adapter, moto: str) -> None:
    found = await OrganizationAccounts(s3, role_name="lakecircle").accounts()  # moto: no organization, no account

    (problem,) = found.problems
    assert (problem.file, problem.severity) == ("organization", Severity.WARNING)


async def test_a_throttled_listing_is_retried_by_the_one_retry_layer(moto: str, org: Org) -> None:
    observer = RecordingObserver()
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)

    with FaultProxy(moto) as proxy:
        proxy.force("POSTRoot", ANY, Fault.SLOWDOWN, times=2)  # Organizations' JSON requests, to the proxy
        async with S3Adapter(
            account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=policy, observer=observer
        ) as adapter:
            found = await OrganizationAccounts(adapter, role_name="lakecircle").accounts()

    assert set(found.ids) == org.active
    assert [(op, outcome) for op, outcome, _ in observer.requests] == [
        ("ListAccounts", "throttled"),
        ("ListAccounts", "throttled"),
        ("ListAccounts", "success"),
    ]


async def test_a_listing_refused_for_good_raises_naming_the_permissions(moto: str, org: Org) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)

    with FaultProxy(moto) as proxy:
        proxy.force("POSTRoot", ANY, Fault.DENIED)
        async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=policy) as adapter:
            with pytest.raises(errors.AccountSourceError) as caught:
                await OrganizationAccounts(adapter, role_name="lakecircle").accounts()
            assert adapter.calls["ListAccounts"] == 1  # never retried

    assert "organizations:ListAccounts" in str(caught.value)
    assert "deploy/iam-policy.json" not in str(caught.value)  # the S3 hint is not the answer here


# -- from the settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "kind", "location"),
    [
        pytest.param({}, None, None, id="unset: no source, one account as before"),
        pytest.param(
            {"LCC_ACCOUNTS": "organization", "LCC_ACCOUNT_FILTER": "env=prod"},
            OrganizationAccounts,
            "organization",
            id="organization: the organization with its filter",
        ),
        pytest.param(
            {"LCC_ACCOUNTS": "s3://config/accounts.toml"}, AccountsFile, "s3://config/accounts.toml", id="a file in S3"
        ),
        pytest.param(
            {"LCC_ACCOUNTS": "/etc/lc/accounts.toml"}, AccountsFile, "/etc/lc/accounts.toml", id="a local file"
        ),
    ],
)
def test_lcc_accounts_chooses_the_source(
    variables: dict[str, str], kind: type | None, location: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("LCC_")]:
        monkeypatch.delenv(name)
    for name, value in {"LCC_AWS_REGION": "cn-north-1", "LCC_ROLE_NAME": "ops/lc", **variables}.items():
        monkeypatch.setenv(name, value)
    if not variables:
        monkeypatch.delenv("LCC_ROLE_NAME")
    settings = load_settings()

    source = account_source(settings, S3Adapter(account=MOTO_ACCOUNT, region="cn-north-1"))

    if kind is None:
        assert source is None
        return
    assert isinstance(source, AccountsFile | OrganizationAccounts)
    assert isinstance(source, kind)
    assert source.location == location
    assert (source.role_name, source.partition) == ("ops/lc", "aws-cn")
    if isinstance(source, OrganizationAccounts):
        assert source.filter == AccountFilter(tags=(("env", "prod"),))
