"""The settings of many accounts: ``LCC_ACCOUNTS`` (unset, ``organization``, an accounts file in
S3 or on disk), ``LCC_ACCOUNT_FILTER`` (only with ``organization``) and ``LCC_ROLE_NAME`` (only
with ``LCC_ACCOUNTS``); every refusal names its setting and shows at most a preview of the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakecircle.core.account_filter import AccountFilter
from lakecircle.errors import ConfigError
from lakecircle.settings import AccountsFrom, Settings, load_settings
from tests.helpers import only_settings

OU = "ou-ab12-cd34ef56"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return only_settings(monkeypatch, LCC_AWS_REGION="eu-west-1")


def settings_with(env: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name, value in variables.items():
        env.setenv(name, value)
    return load_settings()


def problems_with(env: pytest.MonkeyPatch, **variables: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_with(env, **variables)
    return caught.value.problems


def test_without_lcc_accounts_lakecircle_manages_one_account_as_before(env: pytest.MonkeyPatch) -> None:
    settings = settings_with(env)

    assert settings.accounts is None
    assert settings.accounts_from is None
    assert settings.parsed_account_filter is None
    assert settings.role_name == "lakecircle"


@pytest.mark.parametrize(
    ("value", "source"),
    [
        pytest.param("organization", AccountsFrom.ORGANIZATION, id="organization reads the organization's accounts"),
        pytest.param("s3://lakecircle-config/accounts.toml", AccountsFrom.S3_FILE, id="an S3 URI is a file in S3"),
        pytest.param("s3://lakecircle-config/a/b/accounts.toml", AccountsFrom.S3_FILE, id="a key below a prefix"),
        pytest.param("/etc/lakecircle/accounts.toml", AccountsFrom.LOCAL_FILE, id="an absolute path is a local file"),
        pytest.param("accounts.toml", AccountsFrom.LOCAL_FILE, id="a relative path is a local file"),
    ],
)
def test_lcc_accounts_says_where_the_accounts_come_from(
    value: str, source: AccountsFrom, env: pytest.MonkeyPatch
) -> None:
    settings = settings_with(env, LCC_ACCOUNTS=value)

    assert settings.accounts == value
    assert settings.accounts_from is source


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("Organization", 'expected "organization" exactly', id="organization in capitals"),
        pytest.param("organizations", 'expected "organization" exactly', id="organizations in the plural"),
        pytest.param("organisation", 'expected "organization" exactly', id="organisation spelt with an s"),
        pytest.param("accounts.yaml", "ending in .toml", id="a file that is not TOML by its name"),
        pytest.param("s3://lakecircle-config/", "ending in .toml", id="an S3 prefix rather than a file"),
        pytest.param("s3://lakecircle-config/.toml", "S3 URI such as", id="an S3 key that is only the suffix"),
        pytest.param("s3://Bad_Bucket/accounts.toml", "S3 URI such as", id="a bucket S3 cannot hold"),
        pytest.param("s3:///accounts.toml", "S3 URI such as", id="an S3 URI without a bucket"),
        pytest.param("https://example.com/accounts.toml", "s3:// URI or a local path", id="an HTTP URL"),
    ],
)
def test_a_bad_lcc_accounts_is_refused_naming_it(value: str, fragment: str, env: pytest.MonkeyPatch) -> None:
    (problem,) = problems_with(env, LCC_ACCOUNTS=value)

    assert problem.startswith("LCC_ACCOUNTS: ")
    assert fragment in problem


def test_the_filter_of_an_organization_is_read(env: pytest.MonkeyPatch) -> None:
    settings = settings_with(env, LCC_ACCOUNTS="organization", LCC_ACCOUNT_FILTER=f"env=prod,{OU}")

    assert settings.parsed_account_filter == AccountFilter(tags=(("env", "prod"),), parents=(OU,))


@pytest.mark.parametrize(
    ("accounts", "fragment"),
    [
        pytest.param(None, "LCC_ACCOUNTS is not set", id="a filter without LCC_ACCOUNTS"),
        pytest.param("accounts.toml", "names an accounts file", id="a filter beside an accounts file"),
    ],
)
def test_a_filter_without_an_organization_is_refused(
    accounts: str | None, fragment: str, env: pytest.MonkeyPatch
) -> None:
    variables = {"LCC_ACCOUNT_FILTER": "env=prod"} | ({"LCC_ACCOUNTS": accounts} if accounts else {})

    (problem,) = problems_with(env, **variables)

    assert problem.startswith("LCC_ACCOUNT_FILTER: ")
    assert "applies only with LCC_ACCOUNTS=organization" in problem
    assert fragment in problem


def test_every_bad_item_of_the_filter_is_a_problem_naming_the_setting(env: pytest.MonkeyPatch) -> None:
    problems = problems_with(env, LCC_ACCOUNTS="organization", LCC_ACCOUNT_FILTER="env=prod,,ou-x,aws:k=v")

    assert [p.split(": ", 1)[0] for p in problems] == ["LCC_ACCOUNT_FILTER"] * 3
    assert [p.split(": ", 1)[1].split(" ", 2)[:2] for p in problems] == [["item", "2"], ["item", "3"], ["item", "4"]]


def test_a_bad_lcc_accounts_does_not_also_blame_the_filter(env: pytest.MonkeyPatch) -> None:
    problems = problems_with(env, LCC_ACCOUNTS="organisation", LCC_ACCOUNT_FILTER="env=prod")

    assert [p.split(":", 1)[0] for p in problems] == ["LCC_ACCOUNTS"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("lakecircle-member", id="a role name"),
        pytest.param("automation/lakecircle", id="a role name after its path"),
    ],
)
def test_a_role_name_is_taken_with_lcc_accounts(name: str, env: pytest.MonkeyPatch) -> None:
    assert settings_with(env, LCC_ACCOUNTS="organization", LCC_ROLE_NAME=name).role_name == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param("lake circle", "1 to 64 letters", id="a space in the name"),
        pytest.param("x" * 65, "1 to 64 letters", id="a name over 64 characters"),
        pytest.param("/lakecircle", "empty part", id="a path with a leading slash"),
        pytest.param("arn:aws:iam::111111111111:role/lakecircle", "not its ARN", id="an ARN is not a name"),
    ],
)
def test_a_bad_role_name_is_refused_naming_it(name: str, fragment: str, env: pytest.MonkeyPatch) -> None:
    (problem,) = problems_with(env, LCC_ACCOUNTS="organization", LCC_ROLE_NAME=name)

    assert problem.startswith("LCC_ROLE_NAME: ")
    assert fragment in problem


def test_a_role_name_without_lcc_accounts_is_refused_as_doing_nothing(env: pytest.MonkeyPatch) -> None:
    (problem,) = problems_with(env, LCC_ROLE_NAME="lakecircle-member")

    assert problem.startswith("LCC_ROLE_NAME: ")
    assert "applies only with LCC_ACCOUNTS" in problem


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        pytest.param("eu-west-1", "aws", id="a commercial region's roles are in the aws partition"),
        pytest.param("cn-northwest-1", "aws-cn", id="a China region's roles are in aws-cn"),
        pytest.param("us-gov-west-1", "aws-us-gov", id="a GovCloud region's roles are in aws-us-gov"),
    ],
)
def test_the_roles_partition_follows_the_hubs_region(region: str, partition: str, env: pytest.MonkeyPatch) -> None:
    assert settings_with(env, LCC_AWS_REGION=region).role_partition == partition


def test_the_readme_table_lists_the_account_settings() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `") for line in readme.splitlines() if line.startswith("| `LCC_")}

    assert {"LCC_ACCOUNTS", "LCC_ACCOUNT_FILTER", "LCC_ROLE_NAME"} <= rows
