"""core.fleet_warnings: a selector that selects no bucket (the warning's words and fields), and an
exact definition the selectors shadow entirely (``validate``), table by table."""

from __future__ import annotations

import pytest

from lakecircle.core import definitions as definitions_module
from lakecircle.core.definitions import FileBrief, definitions_from_briefs, load_definitions
from lakecircle.core.fleet_warnings import SelectorWarning, shadowed, shadowed_definitions
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.parse import ParsedFile, parse_file
from lakecircle.core.problems import Severity
from lakecircle.core.selectors import Matcher, Ownership, Selector
from tests.builders import definition, exact_definition, fleet, rule, selector

BUCKET = "web-logs"
K128 = "all_storage_classes_128K"
VARIES = "varies_by_storage_class"


def exact(*rules: Rule, tdmos: str | None = None, ownership: str | None = None) -> BucketDefinition:
    return exact_definition(*rules, bucket=BUCKET, tdmos=tdmos, ownership=ownership)


def base(*rules: Rule, **keys: object) -> Selector:
    return selector("*", rules=rules, file="base.toml", **keys)  # type: ignore[arg-type]


def logs(*rules: Rule, **keys: object) -> Selector:
    return selector("*-logs", rules=rules, file="logs.toml", **keys)  # type: ignore[arg-type]


def tagged(*rules: Rule, **keys: object) -> Selector:
    return selector("*", rules=rules, file="tagged.toml", tags={"retention": "1y"}, **keys)  # type: ignore[arg-type]


def warned(bucket: BucketDefinition, *selectors: Selector) -> bool:
    return shadowed(bucket, Matcher(selectors).match(BUCKET)) is not None


# --- an exact definition shadowed entirely ---------------------------------------------------

SHADOW_CASES = [
    pytest.param(
        exact(rule("expire", 90)), [logs(rule("expire", 90))], True, id="its one rule is a selector's, same content"
    ),
    pytest.param(
        exact(rule("expire", 90, None), rule("abort", 7)),
        [logs(rule("expire", 90)), base(rule("abort", 7))],
        True,
        id="every rule is some matching selector's, spelled differently (Filter {} and Prefix '')",
    ),
    pytest.param(
        exact(rule("expire", 30)), [logs(rule("expire", 90))], False, id="a rule with other content is an override"
    ),
    pytest.param(
        exact(rule("expire", 90), rule("own", 3)),
        [logs(rule("expire", 90))],
        False,
        id="a definition only some of whose rules are the selectors' is not warned about",
    ),
    pytest.param(
        exact(rule("expire", 90)),
        [logs(rule("expire", 90)), base(rule("expire", 30))],
        False,
        id="a rule another matching selector gives other content settles a conflict",
    ),
    pytest.param(
        exact(rule("keep", 365)), [tagged(rule("keep", 365))], False, id="a tag selector's rule does not count"
    ),
    pytest.param(
        exact(rule("expire", 90)),
        [logs(rule("expire", 90)), tagged(rule("expire", 365))],
        False,
        id="a tag selector giving the ID other content may be overridden when its tags match",
    ),
    pytest.param(exact(rule(None, 90)), [logs(rule(None, 90))], False, id="a rule without an ID overrides nothing"),
    pytest.param(exact(), [logs(rule("expire", 90))], False, id="a definition without rules is not warned about"),
    pytest.param(
        exact(rule("expire", 90)),
        [selector("*-logs", exclude=("web-*",), rules=(rule("expire", 90),))],
        False,
        id="a selector whose BucketExclude leaves the bucket out does not count",
    ),
    pytest.param(
        exact(rule("expire", 90)),
        [selector("data-*", rules=(rule("expire", 90),))],
        False,
        id="a selector whose patterns do not match the name does not count",
    ),
    pytest.param(
        exact(rule("expire", 90), tdmos=K128),
        [logs(rule("expire", 90))],
        False,
        id="a TransitionDefaultMinimumObjectSize the selectors do not set is a change",
    ),
    pytest.param(
        exact(rule("expire", 90), tdmos=K128),
        [logs(rule("expire", 90), tdmos=VARIES)],
        False,
        id="a TransitionDefaultMinimumObjectSize other than the selectors' is a change",
    ),
    pytest.param(
        exact(rule("expire", 90), tdmos=K128),
        [logs(rule("expire", 90), tdmos=K128)],
        True,
        id="the TransitionDefaultMinimumObjectSize the selectors set changes nothing",
    ),
    pytest.param(
        exact(rule("expire", 90), ownership="shared"),
        [logs(rule("expire", 90))],
        True,
        id="a shared definition is warned about too",
    ),
]


@pytest.mark.parametrize(("bucket", "selectors", "expected"), SHADOW_CASES)
def test_an_exact_definition_is_warned_about_when_the_selectors_shadow_it_entirely(
    bucket: BucketDefinition, selectors: list[Selector], expected: bool
) -> None:
    assert warned(bucket, *selectors) is expected


def test_the_warning_names_the_file_the_bucket_each_rule_and_its_selector_and_what_to_do() -> None:
    problem = shadowed(
        exact(rule("expire", 90), rule("abort", 7)),
        Matcher([base(rule("abort", 7)), logs(rule("expire", 90))]).match(BUCKET),
    )
    assert problem is not None
    assert (problem.file, problem.bucket, problem.severity) == ("web-logs.toml", BUCKET, Severity.WARNING)
    assert "'expire' by logs.toml (pattern '*-logs'), 'abort' by base.toml (pattern '*')" in problem.message
    assert "remove the definition, or change the rules it means to override" in problem.message


OWNERSHIP_CASES = [
    pytest.param(
        exact(rule("a")),
        [logs(rule("a"))],
        "also makes the bucket shared (",
        id="a definition authoritative by default: removing it makes the bucket shared",
    ),
    pytest.param(
        exact(rule("a"), ownership="authoritative"),
        [logs(rule("a"))],
        "also makes the bucket shared (",
        id="a definition authoritative as written: removing it makes the bucket shared",
    ),
    pytest.param(
        exact(rule("a"), ownership="shared"),
        [logs(rule("a"))],
        None,
        id="a shared definition: removing it changes no ownership",
    ),
    pytest.param(
        exact(rule("a")),
        [logs(rule("a"), ownership=Ownership.AUTHORITATIVE)],
        None,
        id="an authoritative selector without tags keeps the bucket authoritative",
    ),
    pytest.param(
        exact(rule("a")),
        [logs(rule("a")), tagged(ownership=Ownership.AUTHORITATIVE)],
        'shared unless a tag selector with Ownership = "authoritative" selects it',
        id="an authoritative tag selector may keep the bucket authoritative",
    ),
]


@pytest.mark.parametrize(("bucket", "selectors", "said"), OWNERSHIP_CASES)
def test_the_warning_says_when_removing_the_definition_changes_the_buckets_ownership(
    bucket: BucketDefinition, selectors: list[Selector], said: str | None
) -> None:
    problem = shadowed(bucket, Matcher(selectors).match(BUCKET))
    assert problem is not None
    if said is None:
        assert "shared" not in problem.message
    else:
        assert said in problem.message


def test_a_definition_spread_over_two_files_names_both() -> None:
    bucket = BucketDefinition(
        BUCKET, LifecycleConfig((rule("a"), rule("b"))), ("one.toml", "two.toml"), ("one.toml", "two.toml")
    )
    problem = shadowed(bucket, Matcher([logs(rule("a"), rule("b"))]).match(BUCKET))
    assert problem is not None
    assert problem.file == "one.toml"
    assert "this BucketName definition (in one.toml, two.toml)" in problem.message


FILES = {
    "base.toml": fleet(["*"], rule("abort", 7)),
    "logs.toml": fleet(["*-logs"], rule("expire", 90)),
    "app-logs.toml": definition("app-logs", rule("expire", 90), rule("abort", 7)),
    "web-logs.toml": definition("web-logs", rule("expire", 30)),
    "photos.toml": definition("photos", rule("abort", 7)),
}


def test_validate_warns_about_each_exact_definition_shadowed_entirely_from_parsed_files_and_from_briefs() -> None:
    parsed = shadowed_definitions(load_definitions(FILES))
    briefs = shadowed_definitions(
        definitions_from_briefs(FileBrief.of(parse_file(name, data), data) for name, data in FILES.items())
    )
    assert [(p.file, p.bucket) for p in parsed] == [("app-logs.toml", "app-logs"), ("photos.toml", "photos")]
    assert briefs == parsed


def test_a_file_of_many_buckets_is_parsed_once_to_look_for_shadowed_definitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables = "".join(
        f'[[Bucket]]\nBucketName = "bucket-{i}"\n[[Bucket.LifecycleConfiguration.Rules]]\n'
        'ID = "abort"\nStatus = "Enabled"\nFilter = { Prefix = "" }\nExpiration = { Days = 7 }\n'
        for i in range(50)
    )
    files = {"many.toml": tables.encode(), "base.toml": fleet(["*"], rule("abort", 7))}
    definitions = definitions_from_briefs(FileBrief.of(parse_file(name, data), data) for name, data in files.items())
    parses: list[str] = []
    original = FileBrief.parse

    def parse(self: FileBrief) -> ParsedFile:
        parses.append(self.name)
        return original(self)

    monkeypatch.setattr(definitions_module.FileBrief, "parse", parse)
    assert len(shadowed_definitions(definitions)) == 50
    assert parses == ["many.toml"]


def test_without_selectors_nothing_is_shadowed_and_no_file_is_parsed_again() -> None:
    assert shadowed_definitions(load_definitions({"a.toml": definition("a-bucket", rule("a"))})) == []


# --- a selector that selects no bucket --------------------------------------------------------

MESSAGE_CASES = [
    pytest.param(
        selector("*-logz", file="fleet.toml"),
        'fleet.toml: no bucket in the account matches BucketMatch ["*-logz"]; check the patterns or remove the'
        " selector",
        id="a selector with patterns alone is named by its file",
    ),
    pytest.param(
        selector("*-logs", "logs-*", exclude=("legal-*",), file="fleet.toml", where="Bucket[1]."),
        'fleet.toml Bucket[1]: no bucket in the account matches BucketMatch ["*-logs", "logs-*"] outside'
        ' BucketExclude ["legal-*"]; check the patterns or remove the selector',
        id="a [[Bucket]] table is named by its table, with its exclusions",
    ),
    pytest.param(
        selector("*", tags={"retention": "1y", "team name": "data"}, file="keep.toml"),
        'keep.toml: no bucket in the account both matches BucketMatch ["*"] and carries BucketTags'
        ' { retention = "1y", \'team name\' = "data" }; check the patterns and the tags or remove the selector',
        id="a tag selector is named with its tags",
    ),
]


@pytest.mark.parametrize(("unmatched", "message"), MESSAGE_CASES)
def test_a_selector_that_selects_no_bucket_is_named_with_its_patterns_and_what_to_do(
    unmatched: Selector, message: str
) -> None:
    assert SelectorWarning.unmatched(unmatched).message == message


def test_a_selector_warning_as_json_carries_its_kind_file_selector_patterns_and_tags() -> None:
    found = SelectorWarning.unmatched(selector("*", tags={"a": "b"}, file="f.toml", where="Bucket[0]."))
    assert found.as_dict() == {
        "kind": "selector_matches_no_bucket",
        "file": "f.toml",
        "selector": "f.toml Bucket[0]",
        "patterns": ["*"],
        "exclude": [],
        "tags": {"a": "b"},
        "message": found.message,
    }
