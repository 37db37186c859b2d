"""A live rule with a field LakeCircle does not know: read as ``unsupported``, never as fewer fields.

botocore leaves out of its parsed answer every XML element its model does not name, so
the field S3 adds next would vanish on read. moto never sends such a field: the proxy
rewrites moto's real answer to hold one, as a newer S3 would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.unknown_fields import (
    _REMEMBERED_BYTES,
    UNKNOWN_FIELDS,
    _in_known_places,
    _places,
    _remembered,
    note_unknown_elements,
)
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import FaultProxy, Rewrite

pytestmark = pytest.mark.anyio

OPERATION = botocore.session.get_session().get_service_model("s3").operation_model("GetBucketLifecycleConfiguration")

RULES: list[dict[str, Any]] = [
    {
        "ID": "archive",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/"},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
    },
    {"ID": "plain", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 5}},
]


def inserted(after: bytes, element: bytes, *, occurrence: int = 1) -> Rewrite:
    """A rewrite putting ``element`` right after the ``occurrence``-th ``after`` of the body."""

    def edit(body: bytes) -> bytes:
        matches = list(re.finditer(re.escape(after), body))
        end = matches[occurrence - 1].end()
        return body[:end] + element + body[end:]

    return Rewrite(edit)


@pytest.fixture
def proxy(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    s3_client.create_bucket(Bucket="newer")
    s3_client.put_bucket_lifecycle_configuration(Bucket="newer", LifecycleConfiguration={"Rules": RULES})
    with FaultProxy(moto) as started:
        monkeypatch.setenv("AWS_ENDPOINT_URL", started.url)
        yield started


async def read(bucket: str) -> Any:
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION) as adapter:
        return await adapter.get_lifecycle(await adapter.find_bucket(bucket) or pytest.fail(bucket))


@pytest.mark.parametrize(
    ("rewrite", "field"),
    [
        (
            inserted(b"<Filter>", b"<ObjectSizeEqualTo>10</ObjectSizeEqualTo>"),
            'rule "archive": Filter.ObjectSizeEqualTo',
        ),
        (
            inserted(b"</Status>", b"<FutureAction><Days>3</Days></FutureAction>", occurrence=2),
            'rule "plain": FutureAction',
        ),
        (inserted(b"<Transition>", b"<MinimumAge>1</MinimumAge>"), 'rule "archive": Transitions.MinimumAge'),
    ],
    ids=["in-a-filter", "in-a-rule", "in-a-transition"],
)
async def test_an_element_botocore_does_not_know_makes_the_bucket_unsupported_naming_the_rule_and_field(
    proxy: FaultProxy, rewrite: Rewrite, field: str
) -> None:
    proxy.force("GetBucketLifecycleConfiguration", "newer", rewrite)

    with pytest.raises(errors.UnsupportedConfiguration) as caught:
        await read("newer")

    assert caught.value.fields == (field,)
    assert caught.value.bucket == "newer"
    assert f"bucket newer: its lifecycle configuration holds a field LakeCircle does not know ({field});" in str(
        caught.value
    )
    assert "upgrade LakeCircle" in str(caught.value)


async def test_the_same_answer_without_the_element_reads_whole(proxy: FaultProxy) -> None:
    config = await read("newer")

    assert [r.id for r in config.rules] == ["archive", "plain"]


def noted(body: bytes, status: int = 200) -> dict[str, Any]:
    """What the before-parse hook adds to botocore's parsed answer for ``body``."""
    added: dict[str, Any] = {}
    note_unknown_elements({"status_code": status, "body": body}, added, operation_model=OPERATION)
    return added


def test_an_answer_botocore_knows_whole_notes_nothing() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Rule><ID>a</ID><Status>Enabled</Status><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value>"
        b"</Tag><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></And></Filter>"
        b"<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"
        b"<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays><NewerNoncurrentVersions>2"
        b"</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>"
    )
    assert noted(body) == {}
    assert _in_known_places(body, _places(OPERATION.output_shape)), "such an answer takes the fast path, not the walk"


def test_unknown_elements_are_named_in_each_rule_by_id_or_place_and_outside_rules() -> None:
    body = (
        b"<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter><And><Prefix>p</Prefix><Size>1</Size>"
        b"</And></Filter><Expiration><Days>1</Days></Expiration></Rule>"
        b"<Rule><ID>b</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days><Hours>2</Hours></Expiration>"
        b"</Rule><Owner>x</Owner></LifecycleConfiguration>"
    )
    assert noted(body)[UNKNOWN_FIELDS] == ["rule #1: Filter.And.Size", 'rule "b": Expiration.Hours', "Owner"]


@pytest.mark.parametrize(("status", "body"), [(404, b"<Error><Foo/></Error>"), (200, b"not <xml"), (200, b"")])
def test_an_error_or_a_body_that_is_no_xml_is_left_to_botocore(status: int, body: bytes) -> None:
    assert noted(body, status) == {}


@pytest.mark.parametrize(
    ("inside", "field"),
    [
        (b"<Expiration><Days>1</Days><NewerNoncurrentVersions>2</NewerNoncurrentVersions></Expiration>",
         "Expiration.NewerNoncurrentVersions"),
        (b"<Filter><Days>3</Days></Filter><Expiration><Days>1</Days></Expiration>", "Filter.Days"),
        (b"<Filter/><Expiration><Days>1</Days><Tag><Key>k</Key><Value>v</Value></Tag></Expiration>", "Expiration.Tag"),
    ],
)  # fmt: skip
def test_a_known_name_in_a_place_the_shape_does_not_allow_is_noted(inside: bytes, field: str) -> None:
    """A field S3 adds under a name it already uses elsewhere is as new as a new name."""
    body = (
        b"<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status>"
        + inside
        + b"</Rule></LifecycleConfiguration>"
    )
    assert noted(body)[UNKNOWN_FIELDS] == [f'rule "r": {field}']


def test_a_self_closed_and_a_namespaced_answer_known_whole_note_nothing() -> None:
    body = (
        b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>a</ID>'
        b"<Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
        b"</Expiration></Rule></LifecycleConfiguration>"
    )
    assert noted(body) == {}


def test_answers_a_fleet_shares_are_remembered_and_large_ones_checked_each_time() -> None:
    rule = b"<Rule><ID>%d</ID><Status>Enabled</Status><Filter/>"
    rule += b"<Expiration><Days>1</Days><Hours>2</Hours></Expiration></Rule>"
    small = b"<LifecycleConfiguration>" + rule % 1 + b"</LifecycleConfiguration>"
    large = b"<LifecycleConfiguration>" + b"".join(rule % i for i in range(200)) + b"</LifecycleConfiguration>"
    assert len(small) <= _REMEMBERED_BYTES < len(large)
    _remembered.cache_clear()
    for _ in range(3):
        assert noted(small)[UNKNOWN_FIELDS] == ['rule "1": Expiration.Hours']
        assert len(noted(large)[UNKNOWN_FIELDS]) == 200
    info = _remembered.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 1, 1)
