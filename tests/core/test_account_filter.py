"""``LCC_ACCOUNT_FILTER``: tags (``key=value``) and parents (OU and root IDs) read into an
:class:`~lakecircle.core.account_filter.AccountFilter`, every problem named by item, and
which accounts it admits."""

from __future__ import annotations

import pytest

from lakecircle.core.account_filter import AccountFilter, parse_account_filter

OU = "ou-ab12-cd34ef56"
OTHER_OU = "ou-ab12-99aa88bb"
ROOT = "r-ab12"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("env=prod", AccountFilter(tags=(("env", "prod"),)), id="one tag"),
        pytest.param(
            "team=media,env=prod", AccountFilter(tags=(("env", "prod"), ("team", "media"))), id="tags come sorted"
        ),
        pytest.param(f"{OU}", AccountFilter(parents=(OU,)), id="one OU"),
        pytest.param(f"{ROOT}", AccountFilter(parents=(ROOT,)), id="the root"),
        pytest.param(
            f" env = prod , {OU} ,{OTHER_OU}",
            AccountFilter(tags=(("env", "prod"),), parents=(OU, OTHER_OU)),
            id="spaces around items keys and values are ignored",
        ),
        pytest.param(
            "env=", AccountFilter(tags=(("env", ""),)), id="a tag with an empty value asks for the empty value"
        ),
        pytest.param("k=a=b", AccountFilter(tags=(("k", "a=b"),)), id="a value may hold an equals sign"),
        pytest.param(f"{OU},{OU}", AccountFilter(parents=(OU,)), id="an OU given twice counts once"),
        pytest.param("env=prod,env=prod", AccountFilter(tags=(("env", "prod"),)), id="a tag given twice counts once"),
        pytest.param("équipe=médias", AccountFilter(tags=(("équipe", "médias"),)), id="tags may use any letters"),
    ],
)
def test_a_filter_reads_as_its_tags_and_parents(text: str, expected: AccountFilter) -> None:
    assert parse_account_filter(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("env=prod,,team=a", "item 2 is empty", id="two commas in a row leave an empty item"),
        pytest.param("env=prod,", "item 2 is empty", id="a comma at the end leaves an empty item"),
        pytest.param("=prod", "item 1 (a tag): has no key", id="a tag without a key"),
        pytest.param(
            "env=prod,env=dev", "item 2 gives the tag key of item 1 another value", id="one key with two values"
        ),
        pytest.param("aws:team=x", "AWS's own", id="a tag key beginning with aws: is AWS's"),
        pytest.param("env=a;b", "character Organizations refuses", id="a semicolon in a tag value"),
        pytest.param("ou-ab12", "item 1 is not an OU ID; OU IDs look like ou-", id="an OU ID cut short"),
        pytest.param(
            "OU-AB12-CD34EF56", "item 1 is an OU ID in upper case", id="an OU ID in upper case is told to be lower case"
        ),
        pytest.param("r-a", "is not a root ID", id="a root ID cut short"),
        pytest.param("R-AB12", "is a root ID in upper case", id="a root ID in upper case"),
        pytest.param("prod", "neither a tag", id="a bare word is neither a tag nor an OU"),
        pytest.param("111111111111", "neither a tag", id="an account ID is no filter item"),
        pytest.param(
            f"env=prod;{OU}", "character Organizations refuses", id="a semicolon as a separator is a tag character"
        ),
    ],
)
def test_a_bad_item_is_a_problem_naming_the_item(text: str, fragment: str) -> None:
    _, problems = parse_account_filter(text)

    assert len(problems) == 1
    assert fragment in problems[0]


def test_every_bad_item_is_said_at_once_and_the_good_ones_are_kept() -> None:
    found, problems = parse_account_filter(f"env=prod,x,{OU},ou-1")

    assert [p.split(" ", 2)[:2] for p in problems] == [["item", "2"], ["item", "4"]]
    assert found == AccountFilter(tags=(("env", "prod"),), parents=(OU,))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("token=" + "s3cr3t;" * 3, id="in a tag value"),
        pytest.param("s3cr3t;" * 3 + "=x", id="in a tag key"),
        pytest.param("s3cr3t" * 3, id="in an item that is no tag"),
        pytest.param("k=a,k=s3cr3t", id="in a tag key given twice"),
        pytest.param("ou-s3cr3t", id="in an item that looks like an OU"),
    ],
)
def test_no_part_of_the_value_shows_in_a_problem(text: str) -> None:
    _, problems = parse_account_filter(text)

    assert problems
    assert all("s3cr3t" not in p for p in problems)


PROD = {"env": "prod", "team": "media"}


@pytest.mark.parametrize(
    ("account_filter", "tags", "ancestors", "admitted"),
    [
        pytest.param(AccountFilter(), {}, (), True, id="an empty filter admits every account"),
        pytest.param(AccountFilter(tags=(("env", "prod"),)), PROD, (), True, id="an account with the tag"),
        pytest.param(
            AccountFilter(tags=(("env", "prod"), ("team", "media"))), PROD, (), True, id="an account with every tag"
        ),
        pytest.param(
            AccountFilter(tags=(("env", "prod"), ("team", "web"))), PROD, (), False, id="one tag of two is not enough"
        ),
        pytest.param(AccountFilter(tags=(("env", "Prod"),)), PROD, (), False, id="tag values compare exactly"),
        pytest.param(AccountFilter(tags=(("env", ""),)), {}, (), False, id="an empty value is not a missing tag"),
        pytest.param(AccountFilter(parents=(OU,)), {}, (OU, ROOT), True, id="an account directly in the OU"),
        pytest.param(
            AccountFilter(parents=(OU,)), {}, (OTHER_OU, OU, ROOT), True, id="an account in an OU below the OU"
        ),
        pytest.param(AccountFilter(parents=(OU,)), {}, (OTHER_OU, ROOT), False, id="an account in another OU"),
        pytest.param(
            AccountFilter(parents=(OU, OTHER_OU)), {}, (OTHER_OU, ROOT), True, id="an account in one of two OUs"
        ),
        pytest.param(AccountFilter(parents=(ROOT,)), {}, (ROOT,), True, id="the root holds every account"),
        pytest.param(
            AccountFilter(tags=(("env", "prod"),), parents=(OU,)),
            PROD,
            (OTHER_OU, ROOT),
            False,
            id="tags and OUs must both match: the tag alone is not enough",
        ),
        pytest.param(
            AccountFilter(tags=(("env", "dev"),), parents=(OU,)),
            PROD,
            (OU, ROOT),
            False,
            id="tags and OUs must both match: the OU alone is not enough",
        ),
    ],
)
def test_which_accounts_a_filter_admits(
    account_filter: AccountFilter, tags: dict[str, str], ancestors: tuple[str, ...], admitted: bool
) -> None:
    assert account_filter.admits(tags, ancestors) is admitted


def test_a_filter_needs_the_accounts_tags_only_when_it_has_tags() -> None:
    assert parse_account_filter("env=prod")[0].needs_tags
    assert not parse_account_filter(OU)[0].needs_tags
