"""The accounts file (``LCC_ACCOUNTS`` = a path or ``s3://...``): ``[[Account]]`` entries read
into :class:`~lakecircle.core.accounts.Account` values, every problem named by file, entry and
field with what to change, and the forms of AWS's values (IDs, role ARNs, ExternalId, tags)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lakecircle.core.accounts import (
    Account,
    AccountList,
    account_id_problem,
    default_role_arn,
    partition_of,
    role_arn_problem,
    role_name_problem,
)
from lakecircle.core.accounts_file import MAX_ACCOUNTS_FILE_BYTES, parse_accounts_file
from lakecircle.core.problems import Severity

FILE = "accounts.toml"
ONE = "111111111111"
TWO = "222222222222"


def read(text: str | bytes, *, role_name: str = "lakecircle", partition: str = "aws") -> AccountList:
    data = text.encode() if isinstance(text, str) else text
    return parse_accounts_file(FILE, data, role_name=role_name, partition=partition)


def entry(account_id: str = ONE, **keys: str) -> str:
    """One ``[[Account]]`` table; ``keys`` are written as they are (TOML values)."""
    lines = [f'Id = "{account_id}"'] if account_id else []
    lines += [f"{key} = {value}" for key, value in keys.items()]
    return "[[Account]]\n" + "\n".join(lines) + "\n"


# -- what is read ----------------------------------------------------------------------------


def test_an_entry_with_every_key_becomes_an_account_with_sorted_tags() -> None:
    text = entry(
        ONE,
        RoleArn=f'"arn:aws:iam::{ONE}:role/ops/lakecircle-member"',
        ExternalId='"a-shared-secret"',
        Tags='{ team = "media", env = "prod" }',
    )

    found = read(text)

    assert found == AccountList(
        (
            Account(
                ONE,
                f"arn:aws:iam::{ONE}:role/ops/lakecircle-member",
                "a-shared-secret",
                (("env", "prod"), ("team", "media")),
            ),
        )
    )


def test_an_entry_without_a_role_gets_the_role_of_lcc_role_name_in_its_own_account() -> None:
    found = read(entry(ONE) + entry(TWO), role_name="automation/lakecircle")

    assert [a.role_arn for a in found.accounts] == [
        f"arn:aws:iam::{ONE}:role/automation/lakecircle",
        f"arn:aws:iam::{TWO}:role/automation/lakecircle",
    ]
    assert found.problems == ()


def test_the_default_role_is_in_the_partition_given() -> None:
    (account,) = read(entry(ONE), partition="aws-cn").accounts

    assert account.role_arn == f"arn:aws-cn:iam::{ONE}:role/lakecircle"


def test_an_account_id_with_a_leading_zero_is_kept_as_written() -> None:
    (account,) = read(entry("012345678901")).accounts

    assert account.id == "012345678901"


def test_an_external_id_never_shows_in_an_accounts_repr() -> None:
    (account,) = read(entry(ONE, ExternalId='"very-secret-value"')).accounts

    assert "very-secret-value" not in repr(account)
    assert account.external_id == "very-secret-value"


def test_a_bad_entry_is_left_out_and_the_good_ones_are_kept() -> None:
    found = read(entry(ONE) + entry("12345") + entry(TWO))

    assert found.ids == (ONE, TWO)
    assert found.readable
    assert [p.field for p in found.problems] == ["Account[1].Id"]


def test_a_byte_order_mark_is_not_part_of_the_file() -> None:
    assert read(b"\xef\xbb\xbf" + entry(ONE).encode()).ids == (ONE,)


# -- problems: one row each --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    text: str
    field: str | None
    fragment: str


CASES = [
    pytest.param(
        Case(entry("", Id=ONE), "Account[0].Id", f'quote it, "{ONE}"'),
        id="an account ID written as a TOML integer is refused with the quoted spelling",
    ),
    pytest.param(
        Case(entry("", Id="12345678901"), "Account[0].Id", "leading zeros included"),
        id="an integer ID of 11 digits is told to keep its leading zeros",
    ),
    pytest.param(
        Case(entry("1234567890123"), "Account[0].Id", "12 digits"),
        id="an ID of 13 digits is not an account ID",
    ),
    pytest.param(
        Case(entry("1111-1111-1111"), "Account[0].Id", "12 digits"),
        id="an ID written with hyphens is not an account ID",
    ),
    pytest.param(
        Case(entry("\u0661" * 12), "Account[0].Id", "12 digits"),
        id="an ID of digits from another script is not an account ID",
    ),
    pytest.param(
        Case(entry("", RoleArn=f'"arn:aws:iam::{ONE}:role/x"'), "Account[0].Id", "missing required key 'Id'"),
        id="an entry without an Id says the key is missing",
    ),
    pytest.param(
        Case(entry(ONE, Id=f'"{TWO}"'), None, "TOML"),
        id="a key written twice in an entry is a TOML error of the whole file",
    ),
    pytest.param(
        Case(entry(ONE, RoleARN='"x"'), "Account[0].RoleARN", "did you mean 'RoleArn'?"),
        id="a key in the wrong case suggests the right spelling",
    ),
    pytest.param(
        Case(entry(ONE, ExternalID='"x"'), "Account[0].ExternalID", "did you mean 'ExternalId'?"),
        id="ExternalID suggests ExternalId",
    ),
    pytest.param(
        Case(entry(ONE, Tag='{ a = "b" }'), "Account[0].Tag", "did you mean 'Tags'?"),
        id="Tag suggests Tags",
    ),
    pytest.param(
        Case(entry(ONE, Region='"eu-west-1"'), "Account[0].Region", "allowed here: ExternalId, Id, RoleArn, Tags"),
        id="an unknown key far from any lists the allowed keys",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn=f'"arn:aws:iam::{TWO}:role/lakecircle"'), "Account[0].RoleArn", f"{TWO}, not"),
        id="a role in another account than the entry's is refused",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn='"lakecircle"'), "Account[0].RoleArn", "not an IAM role ARN"),
        id="a role name where the ARN belongs is not an ARN",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn=f'"arn:aws:iam::{ONE}:user/lakecircle"'), "Account[0].RoleArn", "not an IAM role ARN"),
        id="a user's ARN is not a role's",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn=f'"arn:aws:sts::{ONE}:assumed-role/x/y"'), "Account[0].RoleArn", "not an IAM role"),
        id="an assumed-role session ARN is not a role ARN",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn=f'"arn:aws:iam::{ONE}:role/"'), "Account[0].RoleArn", "role name"),
        id="a role ARN without a name is refused",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn=f'"arn:aws:iam::{ONE}:role/a//b"'), "Account[0].RoleArn", "path has an empty part"),
        id="a role path with an empty part is refused",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn=f'"arn:aws:iam::{ONE}:role/{"x" * 65}"'), "Account[0].RoleArn", "1 to 64"),
        id="a role name over 64 characters is refused",
    ),
    pytest.param(
        Case(entry(ONE, RoleArn="3"), "Account[0].RoleArn", "must be a string"),
        id="a role ARN of the wrong type is refused",
    ),
    pytest.param(
        Case(entry(ONE, ExternalId='"x"'), "Account[0].ExternalId", "2 to 1,224 characters"),
        id="an ExternalId of one character is too short for STS",
    ),
    pytest.param(
        Case(entry(ONE, ExternalId=f'"{"x" * 1225}"'), "Account[0].ExternalId", "2 to 1,224 characters"),
        id="an ExternalId over 1,224 characters is too long for STS",
    ),
    pytest.param(
        Case(entry(ONE, ExternalId='"has space"'), "Account[0].ExternalId", "letters, digits and _+=,.@:/-"),
        id="an ExternalId with a space has a character STS refuses",
    ),
    pytest.param(
        Case(entry(ONE, ExternalId="12345"), "Account[0].ExternalId", "must be a string"),
        id="an ExternalId written as a number is told to be a string",
    ),
    pytest.param(
        Case(entry(ONE, Tags='"env=prod"'), "Account[0].Tags", "must be a table"),
        id="tags written as a string are told to be a table",
    ),
    pytest.param(
        Case(entry(ONE, Tags="{ cost = 42 }"), "Account[0].Tags.cost", "quote it"),
        id="a tag value written as a number is told to be quoted",
    ),
    pytest.param(
        Case(entry(ONE, Tags='{ "aws:team" = "x" }'), "Account[0].Tags.'aws:team'", "AWS's own"),
        id="a tag key beginning with aws: is AWS's own",
    ),
    pytest.param(
        Case(entry(ONE, Tags=f'{{ {"k" * 129} = "x" }}'), f"Account[0].Tags.{'k' * 129}", "1 to 128"),
        id="a tag key over 128 characters is refused",
    ),
    pytest.param(
        Case(entry(ONE, Tags=f'{{ k = "{"v" * 257}" }}'), "Account[0].Tags.k", "at most 256"),
        id="a tag value over 256 characters is refused",
    ),
    pytest.param(
        Case(entry(ONE, Tags='{ k = "a;b" }'), "Account[0].Tags.k", "character Organizations refuses"),
        id="a tag value with a semicolon has a character Organizations refuses",
    ),
    pytest.param(
        Case(entry(ONE, Tags='{ "" = "x" }'), "Account[0].Tags.''", "1 to 128"),
        id="an empty tag key is refused",
    ),
    pytest.param(
        Case(
            entry(ONE, Tags="{ " + ", ".join(f't{n} = "v"' for n in range(51)) + " }"),
            "Account[0].Tags",
            "at most 50",
        ),
        id="more than 50 tags are more than Organizations allows on an account",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_entry_is_a_problem_naming_the_file_the_entry_and_the_field(case: Case) -> None:
    found = read(case.text)

    (problem,) = found.problems
    assert (problem.file, problem.field, problem.severity) == (FILE, case.field, Severity.ERROR)
    assert case.fragment in problem.message
    assert found.accounts == ()


def test_two_entries_with_one_id_are_both_left_out_and_the_problem_names_both() -> None:
    found = read(entry(ONE) + entry(TWO) + entry(ONE, RoleArn=f'"arn:aws:iam::{ONE}:role/other"'))

    assert found.ids == (TWO,)
    (problem,) = found.problems
    assert problem.field == "Account[2].Id"
    assert "Account[0]" in problem.message
    assert ONE in problem.message


def test_an_external_id_never_shows_in_a_problem() -> None:
    found = read(entry(ONE, ExternalId='"s3cr3t value"'))

    (problem,) = found.problems
    assert "s3cr3t" not in str(problem)


def test_every_problem_of_a_file_comes_at_once() -> None:
    found = read(entry("", Id="1") + entry(ONE, RoleArn='"x"', ExternalId='"y"', Tags="{ a = 1 }"))

    assert [p.field for p in found.problems] == [
        "Account[0].Id",
        "Account[1].RoleArn",
        "Account[1].ExternalId",
        "Account[1].Tags.a",
    ]


# -- the file as a whole -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("", "lists no accounts", id="an empty file lists no accounts"),
        pytest.param("Account = []\n", "lists no accounts", id="an empty array of accounts lists none"),
        pytest.param('Account = "111111111111"\n', "array of tables", id="a string for Account is not tables"),
        pytest.param('Account = ["111111111111"]\n', "array of tables", id="an array of IDs is not of tables"),
        pytest.param("[[Account\n", "TOML", id="a file that is not TOML is unreadable with its line"),
    ],
)
def test_a_file_without_readable_accounts_is_unreadable(text: str, fragment: str) -> None:
    found = read(text)

    assert not found.readable
    assert found.accounts == ()
    assert any(fragment in p.message and p.file == FILE for p in found.problems)


def test_a_misspelled_account_array_suggests_its_name_and_says_no_account_is_listed() -> None:
    found = read(entry(ONE).replace("[[Account]]", "[[Accounts]]"))

    assert not found.readable
    messages = [(p.field, p.message) for p in found.problems]
    assert messages[0][0] == "Accounts"
    assert "did you mean 'Account'?" in messages[0][1]
    assert "lists no accounts" in messages[1][1]


def test_a_top_level_key_beside_the_accounts_is_a_problem_but_the_accounts_are_read() -> None:
    found = read("Version = 1\n" + entry(ONE))

    assert found.ids == (ONE,)
    (problem,) = found.problems
    assert problem.field == "Version"


def test_a_file_over_1_mib_is_refused_unread() -> None:
    found = read(entry(ONE).encode() + b"#" * MAX_ACCOUNTS_FILE_BYTES)

    assert not found.readable
    (problem,) = found.problems
    assert "over the 1 MiB limit" in problem.message


def test_a_file_that_is_not_utf8_says_where() -> None:
    found = read(entry(ONE).encode() + b"# \xff\n")

    assert not found.readable
    (problem,) = found.problems
    assert "not UTF-8" in problem.message
    assert "line 3" in problem.message


# -- the forms of the values, one table each ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(ONE, None, id="twelve digits are an account ID"),
        pytest.param("000000000000", None, id="twelve zeros are an account ID"),
        pytest.param(True, "12 digits", id="true is not an account ID"),
        pytest.param(-111111111111, "leading zeros", id="a negative number is not an account ID"),
        pytest.param(1.5, "12 digits", id="a float is not an account ID"),
    ],
)
def test_account_ids(value: object, expected: str | None) -> None:
    found = account_id_problem(value)
    assert found is None if expected is None else expected in (found or "")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("lakecircle", True, id="a plain role name"),
        pytest.param("automation/lakecircle", True, id="a role name after a path"),
        pytest.param("a/b/c+=,.@_-", True, id="every character IAM allows in a name"),
        pytest.param("/lakecircle", False, id="a leading slash makes an empty path part"),
        pytest.param("lakecircle/", False, id="a trailing slash leaves no name"),
        pytest.param("lake circle", False, id="a space is no character of a role name"),
        pytest.param("x" * 64, True, id="64 characters are the longest name"),
        pytest.param("x" * 65, False, id="65 characters are too long"),
        pytest.param("p" * 511 + "/x", False, id="a path over 512 characters is refused"),
    ],
)
def test_role_names(value: str, ok: bool) -> None:
    assert (role_name_problem(value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param(f"arn:aws:iam::{ONE}:role/x", True, id="a role in the aws partition"),
        pytest.param(f"arn:aws-us-gov:iam::{ONE}:role/x", True, id="a role in GovCloud"),
        pytest.param(f"arn:aws-iso-b:iam::{ONE}:role/x", True, id="a role in an isolated partition"),
        pytest.param(f"arn:azure:iam::{ONE}:role/x", False, id="a partition that is not AWS's"),
        pytest.param(f"arn:aws:iam:us-east-1:{ONE}:role/x", False, id="IAM ARNs have no region"),
        pytest.param("arn:aws:iam::1234:role/x", False, id="an account of four digits"),
    ],
)
def test_role_arns(value: str, ok: bool) -> None:
    assert (role_arn_problem(value, None) is None) is ok


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        pytest.param(None, "aws", id="no region is the aws partition"),
        pytest.param("eu-west-1", "aws", id="a commercial region"),
        pytest.param("cn-north-1", "aws-cn", id="a China region"),
        pytest.param("us-gov-west-1", "aws-us-gov", id="a GovCloud region"),
        pytest.param("us-iso-east-1", "aws-iso", id="an ISO region"),
        pytest.param("us-isob-east-1", "aws-iso-b", id="an ISO-B region is not taken for ISO"),
    ],
)
def test_the_partition_of_a_region(region: str | None, partition: str) -> None:
    assert partition_of(region) == partition


def test_the_default_role_arn_names_the_account_and_the_role() -> None:
    assert default_role_arn(ONE, "lakecircle") == f"arn:aws:iam::{ONE}:role/lakecircle"


def test_a_refused_role_name_is_not_shown_in_its_problem() -> None:
    found = role_name_problem("s3cr3t:value")

    assert found is not None
    assert "s3cr3t" not in found
