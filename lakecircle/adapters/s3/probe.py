"""What the S3 server keeps and honours, asked once at the service's start.

S3-compatible servers implement subsets of S3 and some drop what they do not keep without
a word: moto returns a rule without its object-size filters or NewerNoncurrentVersions,
SeaweedFS answers NotImplemented to transitions. LakeCircle would then plan the same change
every cycle, or fail a bucket, with nothing at start to say why. :func:`probe_server` finds
out with a handful of requests:

- on a scratch bucket (``lcc-probe-<token>``, created and deleted): a lifecycle
  configuration with object-size filters, NewerNoncurrentVersions and
  TransitionDefaultMinimumObjectSize ``varies_by_storage_class`` (not the default, so an
  echo is no accident) is written and read back; then one with a transition is written;
- on a scratch object under ``LCC_ENDPOINT``: two PutObject with ``If-None-Match: *``; the
  second must be refused (412) when the server honours conditional writes (the leases and
  records rely on them); a server that answers the first with 501 NotImplemented has none.

Against AWS S3 itself (an endpoint in any of botocore's AWS partitions) nothing is sent: AWS
keeps every field and honours conditional writes, as documented, and neither a scratch bucket
nor a scratch object is in LakeCircle's IAM policy; the answer says it comes from the
documentation (``source``). What cannot be probed is said, not raised: the probe never stops
the service. A scratch bucket or object it could not delete (no DeleteBucket or DeleteObject
for its identity, the server gone mid-probe) is named in ``left_behind``, and what was found
before stays found.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

import botocore.loaders

from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.errors import BOTO_ERRORS, map_error
from lakecircle.adapters.s3.transport import OBJECTS

_KEPT_RULES: list[dict[str, Any]] = [
    {
        "ID": "lcc-probe-sizes",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "probe/", "ObjectSizeGreaterThan": 1, "ObjectSizeLessThan": 1048576}},
        "Expiration": {"Days": 1},
    },
    {
        "ID": "lcc-probe-versions",
        "Status": "Enabled",
        "Filter": {"Prefix": "probe/"},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1},
    },
]
_TDMOS = "varies_by_storage_class"
_TRANSITION_RULE = {
    "ID": "lcc-probe-transition",
    "Status": "Enabled",
    "Filter": {"Prefix": "probe/"},
    "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
}
CAPABILITIES = (
    "object_size_filters",
    "newer_noncurrent_versions",
    "transition_default_minimum_object_size",
    "transitions",
    "conditional_writes",
)
"""What the probe asks, in the order of :class:`ServerProbe`'s fields."""


@dataclass(frozen=True)
class ServerProbe:
    """What the server at ``endpoint`` keeps (True), drops or refuses (False), or was not probed for (None).

    ``not_probed`` says why, one entry per part that could not be probed; ``left_behind`` names
    each scratch bucket or object the probe could not delete, for the user to delete.
    """

    endpoint: str
    source: str = "probe"
    """``probe``: asked of the server; ``documentation``: AWS S3, as documented."""
    object_size_filters: bool | None = None
    newer_noncurrent_versions: bool | None = None
    transition_default_minimum_object_size: bool | None = None
    transitions: bool | None = None
    conditional_writes: bool | None = None
    not_probed: tuple[str, ...] = ()
    left_behind: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """The capabilities the server was found to lack."""
        return [f.name for f in fields(self) if getattr(self, f.name) is False]

    def log_fields(self) -> dict[str, Any]:
        """The probe as the fields of one log line."""
        lists = ("not_probed", "left_behind")
        found = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in lists}
        return found | {"missing": self.missing()} | {name: list(getattr(self, name)) for name in lists}


def is_aws(endpoint: str) -> bool:
    """Whether ``endpoint`` is AWS S3's own, in any partition (``*.amazonaws.com``,
    ``*.amazonaws.com.cn``, ``*.amazonaws.eu``, the isolated regions' and the dual-stack hosts)."""
    host = (urlsplit(endpoint).hostname or "").lower()
    return host.endswith(_aws_domains())


@functools.cache
def _aws_domains() -> tuple[str, ...]:
    """The DNS suffixes of every AWS partition's endpoints, from botocore's own partitions data,
    so a partition botocore knows is never sent a scratch bucket."""
    data = botocore.loaders.create_loader().load_data("partitions")
    outputs = [partition.get("outputs") or {} for partition in data.get("partitions") or ()]
    found = {out.get(key) for out in outputs for key in ("dnsSuffix", "dualStackDnsSuffix")}
    return tuple(sorted(f".{suffix}" for suffix in found if isinstance(suffix, str) and suffix))


async def probe_server(adapter: S3Adapter, bucket: str, prefix: str) -> ServerProbe:
    """Probe the adapter's server (see the module's docstring); scratch objects under ``bucket``/``prefix``."""
    try:
        client = await adapter.client()
    except BOTO_ERRORS as exc:
        raise map_error(exc, operation="CreateClient") from exc
    endpoint = str(getattr(client.meta, "endpoint_url", "") or "")
    if is_aws(endpoint):
        documented: dict[str, Any] = dict.fromkeys(CAPABILITIES, True)
        return replace(ServerProbe(endpoint, "documentation"), **documented)
    token = secrets.token_hex(6)
    found: dict[str, Any] = {}
    not_probed: list[str] = []
    left: list[str] = []
    try:
        await _probe_lifecycle(adapter, f"lcc-probe-{token}", found, left)
    except errors.S3Error as exc:
        not_probed.append(f"lifecycle fields: {exc}")
    try:
        await _probe_conditional_write(adapter, bucket, f"{prefix}probe/{token}", found, left)
    except errors.S3Error as exc:
        not_probed.append(f"conditional writes: {exc}")
    return replace(ServerProbe(endpoint, not_probed=tuple(not_probed), left_behind=tuple(left)), **found)


async def _removed(deletion: Awaitable[Any], what: str, left: list[str]) -> None:
    """Await ``deletion`` of the scratch ``what``; a failure is noted in ``left``, never raised, so
    neither what was found before nor the error that stopped the probe is lost to it."""
    try:
        await deletion
    except errors.S3Error as exc:
        left.append(f"{what}: {exc}")


async def _probe_lifecycle(adapter: S3Adapter, scratch: str, found: dict[str, Any], left: list[str]) -> None:
    """Write and read back the probe's configuration on a scratch bucket, then a transition, into
    ``found``; delete the bucket (or say in ``left`` that it is left behind)."""
    where: dict[str, Any] = {}
    if adapter.region and adapter.region != "us-east-1":
        where["CreateBucketConfiguration"] = {"LocationConstraint": adapter.region}
    await adapter.call("CreateBucket", region=adapter.region, Bucket=scratch, **where)
    try:
        await adapter.call(
            "PutBucketLifecycleConfiguration",
            region=adapter.region,
            Bucket=scratch,
            LifecycleConfiguration={"Rules": _KEPT_RULES},
            TransitionDefaultMinimumObjectSize=_TDMOS,
        )
        read = await adapter.call("GetBucketLifecycleConfiguration", region=adapter.region, Bucket=scratch)
        found |= _kept(read)
        try:
            await adapter.call(
                "PutBucketLifecycleConfiguration",
                region=adapter.region,
                Bucket=scratch,
                LifecycleConfiguration={"Rules": [_TRANSITION_RULE]},
            )
            found["transitions"] = True
        except errors.NotImplementedByServer:
            found["transitions"] = False
    finally:
        await _removed(adapter.call("DeleteBucket", region=adapter.region, Bucket=scratch), "the scratch bucket", left)


def _kept(read: dict[str, Any]) -> dict[str, bool]:
    """Which of the probe's fields came back as written."""
    rules = {r.get("ID"): r for r in read.get("Rules") or () if isinstance(r, dict)}
    sizes = ((rules.get("lcc-probe-sizes") or {}).get("Filter") or {}).get("And") or {}
    versions = (rules.get("lcc-probe-versions") or {}).get("NoncurrentVersionExpiration") or {}
    return {
        "object_size_filters": sizes.get("ObjectSizeGreaterThan") == 1 and sizes.get("ObjectSizeLessThan") == 1048576,
        "newer_noncurrent_versions": versions.get("NewerNoncurrentVersions") == 1,
        "transition_default_minimum_object_size": read.get("TransitionDefaultMinimumObjectSize") == _TDMOS,
    }


async def _probe_conditional_write(
    adapter: S3Adapter, bucket: str, key: str, found: dict[str, Any], left: list[str]
) -> None:
    """Whether a second ``If-None-Match: *`` PutObject of ``key`` is refused, into ``found``; the
    object is deleted after (or said in ``left`` to be left behind)."""
    create = {"IfNoneMatch": "*"}
    try:
        await adapter.write_object(bucket, key, b"lakecircle server probe\n", "text/plain", condition=create)
    except errors.NotImplementedByServer:
        found["conditional_writes"] = False  # 501 to If-None-Match itself, as S3 answers a header it lacks
        return
    try:
        await adapter.write_object(bucket, key, b"lakecircle server probe\n", "text/plain", condition=create)
    except errors.ConditionFailed:
        found["conditional_writes"] = True
    else:
        found["conditional_writes"] = False
    finally:
        deletion = adapter.call("DeleteObject", lane=OBJECTS, Bucket=bucket, Key=key)
        await _removed(deletion, f"the scratch object {key}", left)
