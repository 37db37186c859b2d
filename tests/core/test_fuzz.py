"""Fuzz the definition reader: malformed input ends in problems, never in an exception.

More than ten thousand inputs, drawn from a seeded PRNG so every run sees the same ones:
random bytes, TOML-ish noise, the bundled examples mutated as text (cut, spliced,
truncated) and as documents (a value of the wrong type, an unknown or misspelt key,
deep nesting, huge and negative numbers, long strings, dropped keys), each fed alone or
beside the intact examples (so merging sees them too). An input that happens to be valid
must come out as valid buckets, and those must plan, render and export without error.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import random
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from lakecircle.core.definitions import Definitions, load_definitions
from lakecircle.core.model import LifecycleConfig, config_to_request
from lakecircle.core.parse import MAX_FILE_BYTES, parse_file
from lakecircle.core.plan import plan_bucket
from lakecircle.core.render import config_toml, plans_json, render_plan_text

SEED = 20240917
INPUTS = 10_500

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "definitions"
EXAMPLES = {path.relative_to(EXAMPLE_DIR).as_posix(): path.read_bytes() for path in sorted(EXAMPLE_DIR.rglob("*.toml"))}
EXAMPLE_TEXTS = [data.decode() for data in EXAMPLES.values()]
EXAMPLE_DOCS = [tomllib.loads(text) for text in EXAMPLE_TEXTS]

KEYS = [
    "BucketName",
    "Bucket",
    "TransitionDefaultMinimumObjectSize",
    "LifecycleConfiguration",
    "Rules",
    "ID",
    "Status",
    "Filter",
    "Prefix",
    "Tag",
    "Tags",
    "Key",
    "Value",
    "And",
    "ObjectSizeGreaterThan",
    "ObjectSizeLessThan",
    "Expiration",
    "Days",
    "Date",
    "ExpiredObjectDeleteMarker",
    "Transitions",
    "StorageClass",
    "NoncurrentVersionExpiration",
    "NoncurrentVersionTransitions",
    "NoncurrentDays",
    "NewerNoncurrentVersions",
    "AbortIncompleteMultipartUpload",
    "DaysAfterInitiation",
]
TOKENS = [*KEYS, "[", "]", "[[", "]]", "{", "}", "=", ",", ".", '"', "'", '"""', "\n", " ", "#", "\\", "\\u"]
TOKENS += ["true", "false", "inf", "nan", "-0", "1e400", "0x7f", "2030-01-01", "2030-01-01T00:00:00Z", "24:00:00"]
TOKENS += ["\x00", "\x1b", "\ufeff", "\u2028", "é", "\U0001f600", "\r\n", "\t"]

Path_ = tuple[str | int, ...]

# --- document surgery -------------------------------------------------------------------


def _paths(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) below the document root, containers included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), value
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index), value
            yield from _paths(value, (*path, index))


def _parent(document: Any, path: Path_) -> Any:
    node = document
    for part in path[:-1]:
        node = node[part]
    return node


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return "date"
    return {int: "int", float: "float", str: "str", list: "list", dict: "dict"}.get(type(value), "other")


def _value_of_kind(rng: random.Random, kind: str) -> Any:
    match kind:
        case "bool":
            return rng.random() < 0.5
        case "int":
            return rng.choice([0, 1, -1, 30, 2**31, 2**63, -(2**63), 10 ** rng.randint(1, 400)])
        case "float":
            return rng.choice([0.0, 30.0, -1.5, math.inf, -math.inf, math.nan, 1e308])
        case "str":
            return rng.choice(["", "x", "Enabled", "GLACIER", "30", "2030-01-01", "é" * 300])
        case "date":
            return rng.choice([dt.date(2030, 1, 1), dt.time(12, 0), dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)])
        case "list":
            return rng.choice([[], [1], ["a", "b"], [{}], [[1]]])
        case _:
            return rng.choice([{}, {"Days": 1}, {"x": 1}, {"Prefix": {"Prefix": "a"}}])


def _wrong_type(rng: random.Random, document: dict[str, Any]) -> bool:
    """Replace one value (leaf or table or array) with a value of another TOML type."""
    path, value = rng.choice(list(_paths(document)))
    kind = _kind(value)
    if path[-1] == "Date":  # a date may also be written as an ISO string
        kind = "date-or-str"
    choices = [k for k in ("bool", "int", "float", "str", "date", "list", "dict") if k not in kind]
    _parent(document, path)[path[-1]] = _value_of_kind(rng, rng.choice(choices))
    return True


def _misspelt_key(rng: random.Random, document: dict[str, Any]) -> bool:
    """Rename one key to a near miss (a letter dropped, doubled or its case changed)."""
    keyed = [(p, v) for p, v in _paths(document) if isinstance(p[-1], str)]
    path, value = rng.choice(keyed)
    key = str(path[-1])
    at = rng.randrange(len(key))
    new = rng.choice([key[:at] + key[at + 1 :], key[:at] + key[at] * 2 + key[at:], key.lower(), key + "s"])
    if new in (key, ""):
        new = key + "x"
    parent = _parent(document, path)
    del parent[key]
    parent[new] = value
    return "BucketTags" not in path  # a tag's key is the user's own word: any spelling is valid


def _dropped_key(rng: random.Random, document: dict[str, Any]) -> bool:
    keyed = [p for p, _ in _paths(document) if isinstance(p[-1], str)]
    path = rng.choice(keyed)
    del _parent(document, path)[path[-1]]
    return False  # dropping Filter.Prefix, say, leaves a valid rule


def _negative(rng: random.Random, document: dict[str, Any]) -> bool:
    ints = [p for p, v in _paths(document) if _kind(v) == "int"]
    if not ints:
        return _wrong_type(rng, document)
    path = rng.choice(ints)
    _parent(document, path)[path[-1]] = -rng.randint(1, 10**30)
    return True  # every count and size in the API is at least 0


def _huge(rng: random.Random, document: dict[str, Any]) -> bool:
    ints = [p for p, v in _paths(document) if _kind(v) == "int"]
    if not ints:
        return _wrong_type(rng, document)
    path = rng.choice(ints)
    _parent(document, path)[path[-1]] = rng.choice([2**31, 2**63, 2**64, 10 ** rng.randint(10, 4200)])
    return False  # 2**31 is a fine ObjectSizeGreaterThan


def _long_string(rng: random.Random, document: dict[str, Any]) -> bool:
    strings = [p for p, v in _paths(document) if _kind(v) == "str"]
    if not strings:
        return _wrong_type(rng, document)
    path = rng.choice(strings)
    alphabet = "aZ/_-.é\x00\x1b\n\"'\\\U0001f600"
    length = rng.choice([256, 1000, 5000])
    _parent(document, path)[path[-1]] = "".join(rng.choice(alphabet) for _ in range(length // 50)) * 50
    return False  # a long Prefix is allowed


def _extra_rules(rng: random.Random, document: dict[str, Any]) -> bool:
    """Many copies of one rule: duplicate IDs, or over S3's 1,000 rules."""
    rules = [v for p, v in _paths(document) if p[-1] == "Rules" and isinstance(v, list) and v]
    if not rules:
        return _wrong_type(rng, document)
    target = rng.choice(rules)
    copies = 1001 if rng.random() < 0.02 else rng.choice([1, 2, 5])
    target.extend(copy.deepcopy(target[0]) for _ in range(copies))
    return True


EDGE_DATES: list[Any] = [
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),  # before year 1 in UTC
    dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))),  # after 9999 in UTC
    "9999-12-31T23:00:00-05:00",
    "2030-02-30",
    "2030-01-01T00:00:00.5Z",
    "2030-01-01T00:00:00+01:00",
    dt.datetime(2030, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    dt.time(0, 0),
    "tomorrow",
]


def _edge_date(rng: random.Random, document: dict[str, Any]) -> bool:
    """A Date out of range, impossible, or not at midnight UTC."""
    dates = [p for p, _ in _paths(document) if p[-1] == "Date"]
    if not dates:
        return _wrong_type(rng, document)
    path = rng.choice(dates)
    _parent(document, path)[path[-1]] = rng.choice(EDGE_DATES)
    return True


DocMutation = Callable[[random.Random, dict[str, Any]], bool]
DOC_MUTATIONS: list[DocMutation] = [
    _wrong_type,
    _misspelt_key,
    _dropped_key,
    _negative,
    _huge,
    _long_string,
    _extra_rules,
    _edge_date,
]

# --- text surgery -----------------------------------------------------------------------


def _mutate_text(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        span = rng.randint(1, 40)
        match rng.randrange(6):
            case 0:
                text = text[:at] + text[at + span :]
            case 1:
                text = text[:at] + rng.choice(TOKENS) + text[at:]
            case 2:
                text = text[:at] + text[at : at + span] * rng.randint(2, 5) + text[at:]
            case 3:
                text = text[:at]
            case 4:
                lines = text.splitlines(keepends=True)
                rng.shuffle(lines)
                text = "".join(lines)
            case _:
                text = text[:at] + chr(rng.randrange(0x20, 0x7F)) + text[at + 1 :]
    return text


def _nested(rng: random.Random) -> str:
    depth = rng.choice([2, 10, 100, 900, 5000])
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return "{ Prefix = " * depth + "1" + " }" * depth


SENTINEL = "@@FUZZ@@"


def _spliced(rng: random.Random, document: dict[str, Any], literal: str, *, ints_only: bool = False) -> str:
    """The document with one value replaced by a TOML literal that tomli_w would not write."""
    paths = [p for p, v in _paths(document) if not ints_only or _kind(v) == "int"]
    path = rng.choice(paths or [p for p, _ in _paths(document)])
    _parent(document, path)[path[-1]] = SENTINEL
    return tomli_w.dumps(document).replace(f'"{SENTINEL}"', literal, 1)


def _deeply_nested(rng: random.Random, document: dict[str, Any]) -> str:
    """A document with one value replaced by arrays or tables nested up to 5,000 deep."""
    return _spliced(rng, document, _nested(rng))


def _huge_literal(rng: random.Random, document: dict[str, Any]) -> str:
    """An integer past Python's 4,300-digit conversion limit (tomli_w cannot even write it)."""
    if rng.random() < 0.3:  # a hex literal this long parses, and must still be reported
        return _spliced(rng, document, "0x7" + "0" * rng.randint(4300, 20_000), ints_only=True)
    digits = rng.choice(["9", "1", "-1"]) + "0" * rng.randint(4300, 20_000)
    return _spliced(rng, document, digits, ints_only=True)


# --- the inputs -------------------------------------------------------------------------


def _inputs(rng: random.Random, count: int) -> Iterator[tuple[str, bytes, bool]]:
    """(category, bytes, must_fail): ``must_fail`` when the input cannot be a valid definition."""
    for index in range(count):
        choice = index % 10
        doc = copy.deepcopy(rng.choice(EXAMPLE_DOCS))
        if choice == 0:
            yield "random-bytes", rng.randbytes(rng.randint(0, 400)), False
        elif choice == 1:
            noise = "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 60)))
            yield "token-noise", noise.encode("utf-8", "surrogatepass"), False
        elif choice in (2, 3):
            yield "broken-text", _mutate_text(rng, rng.choice(EXAMPLE_TEXTS)).encode(), False
        elif choice == 4 and index % 20 == 4:
            yield "deep-nesting", _deeply_nested(rng, doc).encode(), True
        elif choice == 4:
            yield "huge-literal", _huge_literal(rng, doc).encode(), True
        elif choice == 5:
            source = rng.choice(EXAMPLE_TEXTS).encode()
            cut = rng.randrange(len(source))
            yield (
                "bad-utf8",
                source[:cut] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + source[cut:],
                True,
            )
        else:
            mutation = rng.choice(DOC_MUTATIONS)
            must_fail = mutation(rng, doc)
            yield mutation.__name__.strip("_"), tomli_w.dumps(doc).encode(), must_fail


PYTHON_WORDS = re.compile(
    r"datetime\.|[Ii]nput should|[Vv]alue error|set_int_max_str_digits|sys\.|Exceeds the limit|pydantic|<class"
    r"|function-|tuple\[|\(\'|\{\'|Traceback"
)
"""What only Python says: a repr of a date, a tuple or a dict, pydantic's or the interpreter's
wording. A message says what is wrong in TOML's words and the user's values, quoted."""


def _check_consistent(definitions: Definitions) -> None:
    assert not set(definitions.buckets) & set(definitions.invalid)
    if definitions.error_count:
        assert definitions.invalid or definitions.unreadable
    for problem in definitions.problems:
        assert problem.file
        line = str(problem)
        assert line.isprintable(), line
        assert not PYTHON_WORDS.search(problem.message), line
        json.dumps(problem.as_dict())


def _exercise_valid(definitions: Definitions) -> None:
    """A valid definition plans, renders and exports like any other."""
    plans = [plan_bucket(name, b.config, LifecycleConfig()) for name, b in definitions.buckets.items()]
    render_plan_text(plans, color=True)
    json.dumps(plans_json(plans))
    for name, bucket in definitions.buckets.items():
        config_to_request(bucket.config)
        parse_file("export.toml", config_toml(name, bucket.config).encode())


def test_malformed_definitions_end_in_problems_never_in_exceptions() -> None:
    rng = random.Random(SEED)
    ran = 0
    by_category: dict[str, int] = {}
    for category, data, must_fail in _inputs(rng, INPUTS):
        alone = rng.random() < 0.8
        files = {"fuzz.toml": data} if alone else {**EXAMPLES, "zz-fuzz.toml": data}
        try:
            definitions = load_definitions(files)
        except Exception as exc:  # noqa: BLE001 - any exception at all is the finding
            pytest.fail(f"{category} input #{ran} raised {exc!r}; input starts {data[:200]!r}")
        _check_consistent(definitions)
        if alone:
            assert definitions.problems or definitions.buckets or definitions.selectors, (
                f"{category} input #{ran}: neither problems nor buckets nor selectors"
            )
            if must_fail:
                assert definitions.error_count, f"{category} input #{ran} was accepted: {data[:300]!r}"
        if not definitions.problems:
            _exercise_valid(definitions)
        ran += 1
        by_category[category] = by_category.get(category, 0) + 1
    assert ran >= 10_000
    assert min(by_category.values()) >= 100, by_category


def test_oversized_file_is_refused_by_size_as_a_problem() -> None:
    data = b"# " + b"x" * MAX_FILE_BYTES + b"\nBucketName = 'b'\n"
    definitions = load_definitions({"big.toml": data})
    assert definitions.unreadable == ("big.toml",)
    assert "1 MiB" in definitions.problems[0].message


def test_integer_beyond_pythons_digit_limit_is_a_problem() -> None:
    # tomllib raises ValueError, not TOMLDecodeError, past Python's 4,300-digit int limit.
    data = b'BucketName = "b"\n[[LifecycleConfiguration.Rules]]\nID = "r"\nStatus = "Enabled"\n'
    data += b"Expiration = { Days = " + b"9" * 5000 + b" }\n"
    definitions = load_definitions({"huge.toml": data})
    assert definitions.error_count == 1
    assert definitions.unreadable == ("huge.toml",)


@pytest.mark.parametrize(
    "field",
    [
        pytest.param("Status = 0x7{zeros}\nExpiration = {{ Days = 1 }}", id="wrong-type-message"),
        pytest.param('Status = "Enabled"\nExpiration = {{ Days = 0x7{zeros} }}', id="range-message"),
    ],
)
def test_hex_integer_beyond_the_decimal_digit_limit_is_a_problem(field: str) -> None:
    data = f'BucketName = "b"\n[[LifecycleConfiguration.Rules]]\nID = "r"\n{field}\n'.format(zeros="0" * 4400)
    definitions = load_definitions({"hex.toml": data.encode()})
    assert definitions.invalid.keys() == {"b"}
    assert all(len(p.message) < 1000 for p in definitions.problems)


KINDS = [
    '"text"',
    "1",
    "0x" + "f" * 4400,
    "9" * 30,
    "-" + "9" * 30,
    "1.5",
    "-inf",
    "nan",
    "true",
    "2030-01-01",
    "00:00:00",
    "2030-01-01T10:00:00",
    "2030-01-01T00:00:00+02:00",
    "0001-01-01T00:00:00+01:00",
    "[1, 2030-01-01, 'x', 00:01:00]",
    "[]",
    "{}",
    "{ a = 2030-01-01, b = [1, 2] }",
    "[{ a = 1 }, { b = 2 }]",
]
"""A value of every kind TOML has, and the edges of each (huge, before year 1 in UTC)."""
PLACES = [
    "BucketName",
    "TransitionDefaultMinimumObjectSize",
    "Ownership",
    "ID",
    "Status",
    "Filter",
    "Filter.Tag",
    "Filter.Tag.Key",
    "Filter.ObjectSizeLessThan",
    "Filter.And.Tags",
    "Filter.And.Prefix",
    "Prefix",
    "Expiration",
    "Expiration.Days",
    "Expiration.Date",
    "Expiration.ExpiredObjectDeleteMarker",
    "Transitions",
    "NoncurrentVersionExpiration.NewerNoncurrentVersions",
    "NoncurrentVersionTransitions",
    "AbortIncompleteMultipartUpload.DaysAfterInitiation",
    "Unknown",
]
"""Every kind of key: the bucket's, the rule's, nested, arrays of tables, and one that does not exist."""


def _with_value(place: str, value: str) -> bytes:
    header = {"BucketName": '"my-bucket"'}
    rule = {"ID": '"r"', "Status": '"Enabled"', "Expiration": "{ Days = 30 }"}
    head, *rest = place.split(".")
    for part in reversed(rest):
        value = f"{{ {part} = {value} }}"
    (header if head in {"BucketName", "TransitionDefaultMinimumObjectSize", "Ownership"} else rule)[head] = value
    text = "".join(f"{k} = {v}\n" for k, v in header.items()) + "[[LifecycleConfiguration.Rules]]\n"
    return (text + "".join(f"{k} = {v}\n" for k, v in rule.items())).encode()


@pytest.mark.parametrize("place", PLACES)
def test_a_value_of_any_kind_anywhere_gets_a_message_without_python_internals(place: str) -> None:
    for value in KINDS:
        definitions = load_definitions({"any.toml": _with_value(place, value)})
        _check_consistent(definitions)
        assert all(len(str(p)) < 400 for p in definitions.problems), definitions.problems
