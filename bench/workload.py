"""The account a benchmark runs against: definition files and live configurations, seeded.

The definitions are those of the planning benchmark (``plan_bench.make_definitions``):
one TOML file per bucket, every kind of filter and action. The live side is each
definition as S3 would store it (rules in another order, the minimum object size filled
in), rendered to S3's XML by botocore's own serializer, so the endpoint answers exactly
what a PutBucketLifecycleConfiguration of it would have stored.

Two disjoint sets of buckets, each exactly ``drift`` of them, are drifted with
``plan_bench.drift_rules``: the first in the initial state, the second by
:meth:`Workload.second_drift` (another writer changing buckets between two cycles, so
that the second cycle has as much to write as the first, on buckets LakeCircle never
wrote). Only the endpoint's process builds a workload; the clients know bucket names only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from botocore.serialize import create_serializer
from botocore.session import get_session

from bench.plan_bench import TDMOS, drift_rules, make_definitions
from lakecircle.core.model import LifecycleConfig, Rule, config_to_request
from lakecircle.core.parse import parse_file

ACCOUNT = "123456789012"
REGION = "us-east-1"
ENDPOINT_BUCKET = "lakecircle-bench"
ENDPOINT_PREFIX = "lifecycle/"
DEFINITION_PREFIX = f"{ENDPOINT_PREFIX}definition/"
SEED = 7


MEMBER_ACCOUNTS_FROM = 210_000_000_000
"""Member account ``k`` of the many-accounts benchmark is this plus ``k``, 12 digits."""


def member_account(index: int) -> str:
    """The ID of member account ``index`` (the endpoint spreads buckets over them)."""
    return f"{MEMBER_ACCOUNTS_FROM + index:012d}"


def bucket_name(index: int) -> str:
    """The name plan_bench gives bucket ``index``; clients derive names from it too."""
    return f"bench-bucket-{index:05d}"


LiveState = tuple[bytes, str]
"""A bucket's stored lifecycle configuration: the XML body and the minimum object size."""


@dataclass(frozen=True)
class Workload:
    buckets: tuple[str, ...]
    """Every managed bucket, sorted."""
    definitions: dict[str, bytes]
    """Definition files by key (under :data:`DEFINITION_PREFIX`)."""
    live: dict[str, LiveState]
    """The initial state: each bucket's configuration, ``drifted`` ones differing."""
    drifted: frozenset[str]
    second: dict[str, LiveState]
    """The second drift: new states for buckets outside ``drifted``."""
    rules: int

    def second_drift(self) -> dict[str, LiveState]:
        return dict(self.second)


class _XmlRenderer:
    """A lifecycle configuration as the XML body of PutBucketLifecycleConfiguration."""

    def __init__(self) -> None:
        self._operation = get_session().get_service_model("s3").operation_model("PutBucketLifecycleConfiguration")
        self._serializer = create_serializer("rest-xml", include_validation=False)

    def render(self, name: str, rules: list[Rule]) -> bytes:
        wire: dict[str, Any] = config_to_request(LifecycleConfig(tuple(rules)))
        request = self._serializer.serialize_to_request({"Bucket": name, **wire}, self._operation)
        body: bytes = request["body"]
        return body


def build(buckets: int, rules: int = 5, drift: float = 0.1, seed: int = SEED) -> Workload:
    """The seeded account of ``buckets`` buckets of ``rules`` rules, ``drift`` of them drifted."""
    rng = random.Random(seed)
    files = make_definitions(rng, buckets, rules)
    renderer = _XmlRenderer()
    definitions: dict[str, bytes] = {}
    configs: dict[str, LifecycleConfig] = {}
    for key, data in files.items():
        parsed = parse_file(key, data)
        assert not parsed.problems, parsed.problems[:3]
        assert len(parsed.buckets) == 1
        bucket = parsed.buckets[0]
        configs[bucket.name] = bucket.config
        definitions[DEFINITION_PREFIX + key.removeprefix("definition/")] = data
    names = sorted(configs)
    count = round(len(names) * drift)
    first = frozenset(rng.sample(names, count))
    rest = [n for n in names if n not in first]
    second_set = frozenset(rng.sample(rest, min(count, len(rest))))

    live: dict[str, LiveState] = {}
    second: dict[str, LiveState] = {}
    for name in names:
        config = configs[name]
        current = list(config.rules)
        rng.shuffle(current)  # S3 and other servers may answer in their own order
        tdmos = config.transition_default_minimum_object_size or TDMOS[0]
        defined = config.transition_default_minimum_object_size is not None
        state = (current, tdmos)
        if name in first:
            state = drift_rules(rng, current, tdmos, tdmos_defined=defined)
        live[name] = (renderer.render(name, state[0]), state[1])
        if name in second_set:
            changed, changed_tdmos = drift_rules(rng, current, tdmos, tdmos_defined=defined)
            second[name] = (renderer.render(name, changed), changed_tdmos)
    return Workload(tuple(names), definitions, live, first, second, rules)
