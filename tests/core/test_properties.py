"""Invariants of the core over generated valid configurations (hypothesis).

The plan must never flap: a configuration planned against itself, against a reordering
of itself, against another spelling of the same meaning or against S3's read-back of it
is a NOOP. Export must round-trip through the parser, and S3's answer must round-trip
through the model and the PUT request.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import tomllib
from typing import Any

import botocore.session
import pytest
import tomli_w
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakecircle.core.definitions import load_definitions
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule, config_from_response, config_to_request
from lakecircle.core.normalize import canonical_config, canonical_key, canonical_rule
from lakecircle.core.parse import parse_file
from lakecircle.core.plan import Action, plan_bucket
from lakecircle.core.render import config_toml, plans_json, render_plan_text, summary_line
from lakecircle.core.toml_reader import TOMLLIB, read_toml
from lakecircle.core.validate.bucket import validate_bucket
from tests.strategies import (
    definition_and_response,
    equivalent_configs,
    lifecycle_configs,
    lifecycle_responses,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_S3 = botocore.session.get_session().get_service_model("s3")
_PUT_INPUT = _S3.operation_model("PutBucketLifecycleConfiguration").input_shape
_GET_OUTPUT = _S3.operation_model("GetBucketLifecycleConfiguration").output_shape


def _botocore_report(params: dict[str, Any], shape: Any) -> str:
    report: str = ParamValidator().validate(params, shape).generate_report()
    return report


def _assert_noop(desired: LifecycleConfig, live: LifecycleConfig) -> None:
    plan = plan_bucket("bucket", desired, live)
    assert plan.action is Action.NOOP, (plan.added, plan.removed, plan.changed, plan.tdmos_change)
    assert (plan.added, plan.removed, plan.changed, plan.tdmos_change) == ((), (), (), None)


def _shuffled(config: LifecycleConfig, rng: random.Random) -> LifecycleConfig:
    """The same configuration with rules, And tags, transitions and noncurrent transitions reordered."""
    rules = []
    for rule in config.rules:
        update: dict[str, Any] = {
            "transitions": tuple(rng.sample(rule.transitions, len(rule.transitions))),
            "noncurrent_version_transitions": tuple(
                rng.sample(rule.noncurrent_version_transitions, len(rule.noncurrent_version_transitions))
            ),
        }
        if rule.filter is not None and rule.filter.and_ is not None:
            op = rule.filter.and_
            shuffled_op = op.model_copy(update={"tags": tuple(rng.sample(op.tags, len(op.tags)))})
            update["filter"] = rule.filter.model_copy(update={"and_": shuffled_op})
        rules.append(rule.model_copy(update=update))
    rng.shuffle(rules)
    return LifecycleConfig(tuple(rules), config.transition_default_minimum_object_size)


@PROPERTY
@given(lifecycle_configs())
def test_generated_configurations_pass_validation_without_any_problem(config: LifecycleConfig) -> None:
    # The strategies promise valid ground; if they drift, every other property here weakens.
    assert validate_bucket(BucketDefinition("bucket", config, ("gen.toml",))) == []


@PROPERTY
@given(lifecycle_configs())
def test_plan_of_a_configuration_against_itself_is_noop(config: LifecycleConfig) -> None:
    _assert_noop(config, config)


@PROPERTY
@given(lifecycle_configs())
def test_canonicalizing_twice_equals_canonicalizing_once(config: LifecycleConfig) -> None:
    for rule in config.rules:
        once = canonical_rule(rule)
        assert canonical_rule(once) == once
    assert canonical_config(canonical_config(config)) == canonical_config(config)


@PROPERTY
@given(equivalent_configs(), lifecycle_configs())
def test_canonical_key_is_equal_exactly_when_canonical_rules_are_equal(
    pair: tuple[LifecycleConfig, LifecycleConfig], other: LifecycleConfig
) -> None:
    # Planning compares keys for speed; they must say what canonical_rule says.
    rules = [*pair[0].rules, *pair[1].rules, *other.rules]
    rules += [r.model_copy(update={"status": "Disabled"}) for r in rules[:2]]
    canonical = [canonical_rule(r) for r in rules]
    keys = [canonical_key(r) for r in rules]
    for i in range(len(rules)):
        for j in range(len(rules)):
            assert (keys[i] == keys[j]) == (canonical[i] == canonical[j]), (rules[i], rules[j])


@PROPERTY
@given(lifecycle_configs(min_rules=1))
def test_canonical_rule_is_valid_v2_wire_data(config: LifecycleConfig) -> None:
    request = {"Bucket": "bucket", "LifecycleConfiguration": {"Rules": []}}
    for rule in config.rules:
        wire = canonical_rule(rule).to_wire()
        assert "Prefix" not in wire
        assert "Filter" in wire
        assert Rule.model_validate(wire) == canonical_rule(rule)
        request["LifecycleConfiguration"]["Rules"].append(wire)  # type: ignore[index]
    assert _botocore_report(request, _PUT_INPUT) == ""


@PROPERTY
@given(lifecycle_configs())
def test_toml_export_parses_back_to_an_equal_configuration(config: LifecycleConfig) -> None:
    text = config_toml("my-bucket", config)
    parsed = parse_file("export.toml", text.encode())
    assert parsed.problems == ()
    assert [b.name for b in parsed.buckets] == ["my-bucket"]
    assert parsed.buckets[0].config == config
    definitions = load_definitions({"export.toml": text.encode()})
    assert definitions.problems == ()
    assert definitions.buckets["my-bucket"].config == config


@PROPERTY
@given(lifecycle_responses())
def test_s3_response_to_model_to_request_to_model_is_the_identity(response: dict[str, Any]) -> None:
    assert _botocore_report({k: v for k, v in response.items() if k != "ResponseMetadata"}, _GET_OUTPUT) == ""
    model = config_from_response(response)
    request = config_to_request(model)
    assert _botocore_report({"Bucket": "bucket", **request}, _PUT_INPUT) == ""
    assert "TransitionDefaultMinimumObjectSize" not in request["LifecycleConfiguration"]
    read_back = {"Rules": request["LifecycleConfiguration"]["Rules"]}
    if "TransitionDefaultMinimumObjectSize" in request:
        read_back["TransitionDefaultMinimumObjectSize"] = request["TransitionDefaultMinimumObjectSize"]
    assert config_from_response(read_back) == model


@PROPERTY
@given(lifecycle_configs(min_rules=1))
def test_put_request_of_a_definition_uses_one_form_and_reads_back_as_noop(config: LifecycleConfig) -> None:
    # S3 wants Filter or Prefix on every rule, and refuses the two forms in one configuration.
    request = config_to_request(config)
    assert _botocore_report({"Bucket": "bucket", **request}, _PUT_INPUT) == ""
    rules = request["LifecycleConfiguration"]["Rules"]
    assert all(("Filter" in r) != ("Prefix" in r) for r in rules)
    assert len({"Filter" in r for r in rules}) == 1
    assert request.get("TransitionDefaultMinimumObjectSize") == config.transition_default_minimum_object_size
    _assert_noop(config, config_from_response({"Rules": rules}))


@PROPERTY
@given(lifecycle_configs(), st.randoms(use_true_random=False))
def test_shuffling_rules_tags_and_transitions_plans_noop(config: LifecycleConfig, rng: random.Random) -> None:
    _assert_noop(config, _shuffled(config, rng))
    _assert_noop(_shuffled(config, rng), config)


@PROPERTY
@given(equivalent_configs())
def test_equivalent_spellings_plan_noop(pair: tuple[LifecycleConfig, LifecycleConfig]) -> None:
    # Filter {} / Filter {Prefix=""} / Prefix "" / no filter; one-predicate And vs bare;
    # ExpiredObjectDeleteMarker=false vs absent; date vs midnight-UTC datetime vs ISO string.
    first, second = pair
    _assert_noop(first, second)
    _assert_noop(second, first)
    assert canonical_config(first) == canonical_config(second)


@PROPERTY
@given(definition_and_response())
def test_definition_against_s3_read_back_of_it_plans_noop(case: tuple[LifecycleConfig, dict[str, Any]]) -> None:
    desired, response = case
    _assert_noop(desired, config_from_response(response))


@PROPERTY
@given(lifecycle_configs(min_rules=1), st.data())
def test_a_changed_status_is_a_put_that_names_the_rule_and_the_field(
    config: LifecycleConfig, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(config.rules) - 1))
    rule = config.rules[index]
    flipped = rule.model_copy(update={"status": "Disabled" if rule.status == "Enabled" else "Enabled"})
    live = LifecycleConfig(
        (*config.rules[:index], flipped, *config.rules[index + 1 :]), config.transition_default_minimum_object_size
    )
    plan = plan_bucket("bucket", config, live)
    assert plan.action is Action.PUT
    assert [c.rule_id for c in plan.changed] == [rule.id]
    assert [(f.field, f.before, f.after) for f in plan.changed[0].fields] == [("Status", flipped.status, rule.status)]
    assert plan.desired.rules == config.rules


@PROPERTY
@given(lifecycle_configs(min_rules=1), lifecycle_configs())
def test_rendered_plans_are_printable_text_and_plain_json(desired: LifecycleConfig, live: LifecycleConfig) -> None:
    # IDs, prefixes and tag values are arbitrary text; none may reach a terminal raw.
    plans = [plan_bucket("bucket", desired, live), plan_bucket("other", LifecycleConfig(), desired)]
    text = render_plan_text(plans)
    assert all(line.isprintable() for line in text.splitlines())
    assert text.splitlines()[-1] == summary_line(plans)
    document = plans_json(plans)
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"Filter": {}}, {}),
        ({"Filter": {"Prefix": ""}}, {"Prefix": ""}),
        ({"Filter": {"And": {"Prefix": "logs/"}}}, {"Prefix": "logs/"}),
        ({"Filter": {"And": {"Tags": [{"Key": "k", "Value": "v"}]}}}, {"Filter": {"Tag": {"Key": "k", "Value": "v"}}}),
        ({"Filter": {"And": {"Prefix": "", "ObjectSizeLessThan": 5}}}, {"Filter": {"ObjectSizeLessThan": 5}}),
        ({"Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": False}}, {}),
        (
            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Expiration": {}},
            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Expiration": None},
        ),
        ({"Expiration": {"Date": "2030-01-01T02:00:00+02:00"}}, {"Expiration": {"Date": "2030-01-01"}}),
    ],
)
def test_canonical_rule_treats_equivalent_filters_alike(a: dict[str, Any], b: dict[str, Any]) -> None:
    base = {"ID": "r", "Status": "Enabled", "Expiration": {"Days": 1}}
    first, second = Rule.model_validate(base | a), Rule.model_validate(base | b)
    assert canonical_rule(first) == canonical_rule(second)
    assert canonical_key(first) == canonical_key(second)
    assert plan_bucket("bucket", LifecycleConfig((first,)), LifecycleConfig((second,))).action is Action.NOOP


# -- any TOML reads as tomllib reads it ------------------------------------------------------

_dotted_text = st.integers(0, 200).map(lambda n: ".".join(["1"] * n))
"""A version-like string of up to 200 dotted parts: a value that looks like a long key."""
_offsets = st.integers(-1439, 1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
_toml_scalars = st.one_of(
    st.text(),
    _dotted_text,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(),
    st.times(),
    st.datetimes(),
    st.datetimes(timezones=_offsets),
)
_toml_keys = st.one_of(st.text(max_size=8), _dotted_text)
_toml_values = st.recursive(
    _toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_toml_keys, inner, max_size=4)),
    max_leaves=12,
)
_deep_tables = st.tuples(st.integers(1, 150), _toml_keys, _toml_values).map(
    lambda t: functools.reduce(lambda table, _: {t[1]: table}, range(t[0]), {"v": t[2]})
)
"""Tables nested up to 150 deep, which tomli_w writes under headers of as many dotted parts."""
toml_documents = st.dictionaries(_toml_keys, st.one_of(_toml_values, _deep_tables), max_size=5)


@PROPERTY
@given(toml_documents)
def test_any_document_tomli_w_writes_reads_as_tomllib_reads_it_with_either_reader(document: dict[str, Any]) -> None:
    text = tomli_w.dumps(document)
    expected = tomllib.loads(text)

    assert read_toml(text) == expected
    assert read_toml(text, TOMLLIB) == expected
    parsed = parse_file("any.toml", text.encode())
    assert parsed.readable, parsed.problems
