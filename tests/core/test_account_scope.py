"""Definitions across accounts: ``Accounts = [...]`` and ``AccountTags = {...}`` in exact
definitions and selectors, read into an :class:`~lakecircle.core.accounts.AccountScope`,
checked, carried into the values (the digest-only briefs included), agreed across the files
of one bucket, and the pure answer to "does this definition apply in this account"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from lakecircle.core.accounts import EVERY_ACCOUNT, Account, AccountScope
from lakecircle.core.accounts_file import parse_accounts_file
from lakecircle.core.definitions import Definitions, FileBrief, build_definitions, definitions_from_briefs
from lakecircle.core.parse import parse_file
from lakecircle.core.problems import Severity

ONE = "111111111111"
TWO = "222222222222"
RULES = '[[LifecycleConfiguration.Rules]]\nID = "r"\nStatus = "Enabled"\nFilter = {}\nExpiration = { Days = 30 }\n'


def exact(head: str = "", name: str = "my-bucket") -> str:
    return f'BucketName = "{name}"\n{head}\n{RULES}'


def fleet(head: str = "") -> str:
    return f'BucketMatch = ["*-logs"]\n{head}\n{RULES}'


def load(*texts: str) -> Definitions:
    return build_definitions(parse_file(f"defs/{n}.toml", t.encode()) for n, t in enumerate(texts))


def briefed(*texts: str) -> Definitions:
    """The same files as the daemon keeps them between cycles: in brief."""
    return definitions_from_briefs(
        FileBrief.of(parse_file(f"defs/{n}.toml", t.encode()), t.encode()) for n, t in enumerate(texts)
    )


SCOPED = f'Accounts = ["{ONE}", "{TWO}"]\nAccountTags = {{ env = "prod", team = "media" }}'
SCOPE = AccountScope(frozenset({ONE, TWO}), (("env", "prod"), ("team", "media")))


# -- what is read ----------------------------------------------------------------------------------


@pytest.mark.parametrize("load_files", [load, briefed], ids=["parsed once", "kept in brief"])
def test_an_exact_definition_carries_its_accounts_and_account_tags(load_files: object) -> None:
    definitions = load_files(exact(SCOPED))  # type: ignore[operator]

    assert definitions.problems == ()
    assert definitions.buckets["my-bucket"].scope == SCOPE


def test_the_brief_of_a_bucket_knows_its_scope_without_a_model() -> None:
    definitions = briefed(exact(SCOPED), exact(name="other-bucket"))

    assert definitions.desired["my-bucket"].scope == SCOPE
    assert definitions.desired["other-bucket"].scope == EVERY_ACCOUNT


def test_a_selector_carries_its_accounts_and_account_tags() -> None:
    (selector,) = load(fleet(SCOPED)).selectors

    assert selector.scope == SCOPE


def test_a_bucket_table_carries_its_own_scope() -> None:
    text = (
        f'[[Bucket]]\nBucketName = "a-bucket"\nAccounts = ["{ONE}"]\n'
        + RULES.replace("[[Life", "[[Bucket.Life")
        + '[[Bucket]]\nBucketName = "b-bucket"\n'
        + RULES.replace("[[Life", "[[Bucket.Life")
    )

    buckets = load(text).buckets

    assert buckets["a-bucket"].scope == AccountScope(frozenset({ONE}))
    assert buckets["b-bucket"].scope == EVERY_ACCOUNT


def test_a_definition_without_either_key_applies_everywhere_as_before() -> None:
    definitions = load(exact(), fleet())

    assert definitions.buckets["my-bucket"].scope is EVERY_ACCOUNT
    assert definitions.selectors[0].scope is EVERY_ACCOUNT


def test_files_that_define_one_bucket_with_the_same_scope_merge() -> None:
    definitions = load(exact(SCOPED), exact(SCOPED).replace('ID = "r"', 'ID = "s"'))

    assert definitions.problems == ()
    assert definitions.buckets["my-bucket"].scope == SCOPE
    assert [r.id for r in definitions.buckets["my-bucket"].config.rules] == ["r", "s"]


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        pytest.param(f'Accounts = ["{ONE}"]', f'Accounts = ["{TWO}"]', "Accounts", id="two different account lists"),
        pytest.param(f'Accounts = ["{ONE}"]', "", "Accounts", id="one file with Accounts and one without"),
        pytest.param(
            'AccountTags = { env = "prod" }', 'AccountTags = { env = "dev" }', "AccountTags", id="two tag sets"
        ),
    ],
)
def test_files_that_define_one_bucket_for_different_accounts_make_it_invalid(
    first: str, second: str, field: str
) -> None:
    other = exact(second).replace('ID = "r"', 'ID = "s"')
    for definitions in (load(exact(first), other), briefed(exact(first), other)):
        assert "my-bucket" not in definitions.buckets
        (problem,) = definitions.invalid["my-bucket"]
        assert (problem.file, problem.field) == ("defs/1.toml", field)
        assert "defs/0.toml" in problem.message
        assert "same Accounts and AccountTags" in problem.message


# -- problems: one row each --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    head: str
    field: str
    fragment: str
    severity: Severity = Severity.ERROR


CASES = [
    pytest.param(
        Case(f"Accounts = [{ONE}]", "Accounts[0]", f'quote it, "{ONE}"'),
        id="an account ID written as a number is told to be quoted",
    ),
    pytest.param(Case('Accounts = ["1234"]', "Accounts[0]", "12 digits"), id="an ID of four digits"),
    pytest.param(Case("Accounts = []", "Accounts", "apply in no account"), id="an empty list is an error"),
    pytest.param(Case(f'Accounts = "{ONE}"', "Accounts", "must be an array"), id="one ID not in an array"),
    pytest.param(
        Case(f'Accounts = ["{ONE}", "{ONE}"]', "Accounts[1]", "listed twice", Severity.WARNING),
        id="an account listed twice is a warning",
    ),
    pytest.param(Case("AccountTags = {}", "AccountTags", "narrows nothing"), id="empty account tags are an error"),
    pytest.param(Case('AccountTags = "env=prod"', "AccountTags", "must be a table"), id="tags as a string"),
    pytest.param(Case("AccountTags = { cost = 42 }", "AccountTags.cost", "quote it"), id="a number as a tag value"),
    pytest.param(Case('AccountTags = { "aws:x" = "y" }', "AccountTags.'aws:x'", "AWS's own"), id="a tag key AWS keeps"),
    pytest.param(
        Case('AccountTags = { env = "a;b" }', "AccountTags.env", "Organizations refuses"),
        id="a tag value with a character Organizations refuses",
    ),
    pytest.param(
        Case(f'Account = ["{ONE}"]', "Account", "did you mean 'Accounts'?"),
        id="Account suggests Accounts",
    ),
    pytest.param(
        Case('AccountTag = { env = "prod" }', "AccountTag", "did you mean 'AccountTags'?"),
        id="AccountTag suggests AccountTags",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_scope_in_an_exact_definition_names_the_bucket_and_the_field(case: Case) -> None:
    definitions = load(exact(case.head))

    (problem,) = definitions.problems
    assert (problem.file, problem.bucket, problem.field, problem.severity) == (
        "defs/0.toml",
        "my-bucket",
        case.field,
        case.severity,
    )
    assert case.fragment in problem.message
    assert ("my-bucket" in definitions.buckets) is (case.severity is Severity.WARNING)


@pytest.mark.parametrize("case", CASES)
def test_a_bad_scope_in_a_selector_names_its_table_and_the_field(case: Case) -> None:
    text = "[[Bucket]]\n" + fleet(case.head).replace("[[Life", "[[Bucket.Life")
    definitions = load(text)

    (problem,) = definitions.problems
    assert (problem.bucket, problem.field, problem.severity) == (None, f"Bucket[0].{case.field}", case.severity)
    assert case.fragment in problem.message
    assert bool(definitions.selectors) is (case.severity is Severity.WARNING)


# -- where a definition applies -----------------------------------------------------------------------


def account(account_id: str = ONE, **tags: str) -> Account:
    return Account(account_id, f"arn:aws:iam::{account_id}:role/lakecircle", tags=tuple(sorted(tags.items())))


@pytest.mark.parametrize(
    ("scope", "candidate", "applies"),
    [
        pytest.param(EVERY_ACCOUNT, account(), True, id="without either key a definition applies everywhere"),
        pytest.param(AccountScope(frozenset({ONE})), account(ONE), True, id="an account Accounts lists"),
        pytest.param(AccountScope(frozenset({ONE})), account(TWO), False, id="an account Accounts does not list"),
        pytest.param(
            AccountScope(tags=(("env", "prod"),)), account(env="prod", team="x"), True, id="an account with the tag"
        ),
        pytest.param(AccountScope(tags=(("env", "prod"),)), account(env="dev"), False, id="another tag value"),
        pytest.param(AccountScope(tags=(("env", "prod"),)), account(), False, id="an account without tags"),
        pytest.param(
            AccountScope(tags=(("env", "prod"), ("team", "media"))),
            account(env="prod"),
            False,
            id="every AccountTags pair must be carried",
        ),
        pytest.param(
            AccountScope(frozenset({ONE}), (("env", "prod"),)),
            account(TWO, env="prod"),
            False,
            id="with both keys the account must be listed too",
        ),
        pytest.param(
            AccountScope(frozenset({ONE}), (("env", "prod"),)),
            account(ONE, env="prod"),
            True,
            id="with both keys an account that passes both",
        ),
    ],
)
def test_whether_a_definition_applies_in_an_account(scope: AccountScope, candidate: Account, applies: bool) -> None:
    assert scope.admits(candidate) is applies


def test_a_scope_describes_itself_as_a_definition_writes_it() -> None:
    assert SCOPE.describe() == (f"Accounts = [\"{ONE}\", \"{TWO}\"], AccountTags = {{ env = 'prod', team = 'media' }}")
    assert "every account" in EVERY_ACCOUNT.describe()


def test_the_readmes_examples_of_many_accounts_read_without_a_problem() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Many accounts", 1)[1].split("\n## ", 1)[0]
    accounts_file, definition = [block.split("```", 1)[0] for block in section.split("```toml\n")[1:]]

    found = parse_accounts_file("accounts.toml", dedent(accounts_file).encode(), role_name="lakecircle")
    definitions = load(definition + RULES)

    assert (found.ids, found.problems) == ((ONE,), ())
    assert definitions.problems == ()
    assert definitions.selectors[0].scope == AccountScope(frozenset({ONE, TWO}), (("env", "prod"),))
