"""The lifecycle model: one set of frozen values for definitions and for S3's answers.

A rule read from a TOML definition and a rule read from GetBucketLifecycleConfiguration
are the same value type, so planning compares like with like. Field names are snake_case;
the PascalCase names of the S3 API live only in the aliases, which is where the wire is
(TOML keys, boto3 requests and responses).

The models check *shapes* (which keys exist, which types they hold). Whether the values
satisfy S3's constraints is the job of :mod:`lakecircle.core.validate`, which reports every
problem at once instead of stopping at the first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lakecircle.core.accounts import EVERY_ACCOUNT, AccountScope

TDMOS_VALUES = ("all_storage_classes_128K", "varies_by_storage_class")
OWNERSHIP_VALUES = ("authoritative", "shared")
"""The two values S3 accepts for TransitionDefaultMinimumObjectSize."""
RULE_STATUSES = ("Enabled", "Disabled")
"""The two values S3 accepts for a rule's Status."""


def _from_text(value: object) -> object:
    """An ISO 8601 string as the datetime or date it spells; anything else as it is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return value


def _to_utc_datetime(value: object) -> object:
    """Accept a TOML date, a TOML datetime, an ISO 8601 string or boto3's datetime.

    Everything becomes a timezone-aware UTC datetime; a naive value is taken as UTC.
    Anything else is passed on unchanged for pydantic to reject with a type error.
    """
    value = _from_text(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is a valid TOML datetime, but before year 1 in UTC.
            raise ValueError(f"{value.isoformat()} is outside the years 1 to 9999 in UTC") from None
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value


def offset_datetime(value: object) -> dt.datetime | None:
    """The date-time ``value`` spells (a TOML date-time or an ISO string) when it carries a
    UTC offset other than zero, as written; else None. A Date so written reads as another
    instant in UTC, which a message about it must show beside what was written."""
    value = _from_text(value)
    if isinstance(value, dt.datetime) and value.utcoffset():
        return value
    return None


UtcDate = Annotated[dt.datetime, BeforeValidator(_to_utc_datetime)]


Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""An integer S3's API can carry at all (a TOML integer can be any size); the
per-field limits (Days fit in 32 bits, sizes in 64) are checked in validate."""


def _list_to_tuple(value: object) -> object:
    """TOML and boto3 give arrays as lists; the frozen model holds tuples."""
    return tuple(value) if isinstance(value, list) else value


Tags = Annotated[tuple["Tag", ...], BeforeValidator(_list_to_tuple)]
Transitions = Annotated[tuple["Transition", ...], BeforeValidator(_list_to_tuple)]
NoncurrentTransitions = Annotated[tuple["NoncurrentVersionTransition", ...], BeforeValidator(_list_to_tuple)]


class _Wire(BaseModel):
    """Base of every wire-shaped value: frozen, strict, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True,
        strict=True,
        extra="forbid",
        populate_by_name=True,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


class Tag(_Wire):
    key: str = Field(alias="Key")
    value: str = Field(alias="Value")


class AndOperator(_Wire):
    prefix: str | None = Field(default=None, alias="Prefix")
    tags: Tags = Field(default=(), alias="Tags")
    object_size_greater_than: Int64 | None = Field(default=None, alias="ObjectSizeGreaterThan")
    object_size_less_than: Int64 | None = Field(default=None, alias="ObjectSizeLessThan")


class Filter(_Wire):
    prefix: str | None = Field(default=None, alias="Prefix")
    tag: Tag | None = Field(default=None, alias="Tag")
    object_size_greater_than: Int64 | None = Field(default=None, alias="ObjectSizeGreaterThan")
    object_size_less_than: Int64 | None = Field(default=None, alias="ObjectSizeLessThan")
    and_: AndOperator | None = Field(default=None, alias="And")


class Expiration(_Wire):
    days: Int64 | None = Field(default=None, alias="Days")
    date: UtcDate | None = Field(default=None, alias="Date")
    expired_object_delete_marker: bool | None = Field(default=None, alias="ExpiredObjectDeleteMarker")


class Transition(_Wire):
    days: Int64 | None = Field(default=None, alias="Days")
    date: UtcDate | None = Field(default=None, alias="Date")
    storage_class: str = Field(alias="StorageClass")


class NoncurrentVersionExpiration(_Wire):
    noncurrent_days: Int64 | None = Field(default=None, alias="NoncurrentDays")
    newer_noncurrent_versions: Int64 | None = Field(default=None, alias="NewerNoncurrentVersions")


class NoncurrentVersionTransition(_Wire):
    noncurrent_days: Int64 | None = Field(default=None, alias="NoncurrentDays")
    storage_class: str = Field(alias="StorageClass")
    newer_noncurrent_versions: Int64 | None = Field(default=None, alias="NewerNoncurrentVersions")


class AbortIncompleteMultipartUpload(_Wire):
    days_after_initiation: Int64 | None = Field(default=None, alias="DaysAfterInitiation")


class Rule(_Wire):
    """One lifecycle rule, in the shape of the S3 API."""

    id: str | None = Field(default=None, alias="ID")
    status: str = Field(alias="Status")
    filter: Filter | None = Field(default=None, alias="Filter")
    prefix: str | None = Field(default=None, alias="Prefix")
    expiration: Expiration | None = Field(default=None, alias="Expiration")
    transitions: Transitions = Field(default=(), alias="Transitions")
    noncurrent_version_expiration: NoncurrentVersionExpiration | None = Field(
        default=None, alias="NoncurrentVersionExpiration"
    )
    noncurrent_version_transitions: NoncurrentTransitions = Field(default=(), alias="NoncurrentVersionTransitions")
    abort_incomplete_multipart_upload: AbortIncompleteMultipartUpload | None = Field(
        default=None, alias="AbortIncompleteMultipartUpload"
    )

    def to_wire(self) -> dict[str, Any]:
        """The rule as S3's API spells it (dates as datetimes, empty parts left out)."""
        wire: dict[str, Any] = _plain(self.model_dump(by_alias=True, exclude_defaults=True))
        return wire


def _plain(value: Any) -> Any:
    """Turn the tuples of a model dump into lists, as JSON, TOML and botocore expect."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """A bucket's lifecycle configuration: its rules and the default minimum object size.

    ``transition_default_minimum_object_size`` is None when a definition is silent on
    it (LakeCircle then keeps the bucket's live value) or when S3 did not say.
    """

    rules: tuple[Rule, ...] = ()
    transition_default_minimum_object_size: str | None = None


@dataclass(frozen=True, slots=True)
class BucketDefinition:
    """What the definitions say about one bucket, with the files each part came from."""

    name: str
    config: LifecycleConfig
    files: tuple[str, ...]
    rule_files: tuple[str, ...] = field(default=())
    """The file of each rule, parallel to ``config.rules``."""
    ownership: str | None = None
    """``shared``: only rules LakeCircle applied itself may be removed. None or
    ``authoritative``: the definitions are the whole truth for the bucket."""
    scope: AccountScope = EVERY_ACCOUNT
    """Its ``Accounts`` and ``AccountTags``: the accounts in which it applies (every file
    that defines the bucket gives the same, see :mod:`lakecircle.core.merge`)."""

    @property
    def shared(self) -> bool:
        return self.ownership == "shared"

    def file_of(self, index: int) -> str:
        return self.rule_files[index] if index < len(self.rule_files) else ", ".join(self.files)


def config_from_response(response: dict[str, Any]) -> LifecycleConfig:
    """Read a GetBucketLifecycleConfiguration response as boto3 returns it."""
    rules = tuple(Rule.model_validate(r) for r in response.get("Rules", ()))
    tdmos = response.get("TransitionDefaultMinimumObjectSize")
    return LifecycleConfig(rules=rules, transition_default_minimum_object_size=tdmos)


def config_to_request(config: LifecycleConfig) -> dict[str, Any]:
    """The keyword arguments of PutBucketLifecycleConfiguration for ``config``.

    ``TransitionDefaultMinimumObjectSize`` is its own request parameter, not a key of
    ``LifecycleConfiguration``. A rule with neither a filter nor a legacy prefix applies
    to the whole bucket; S3 wants that said, so it gets ``Filter {}``, or ``Prefix ""``
    when the configuration uses the legacy form (the two forms cannot be mixed).
    """
    legacy = any(r.prefix is not None for r in config.rules)
    rules = []
    for rule in config.rules:
        wire = rule.to_wire()
        if rule.filter is None and rule.prefix is None:
            if legacy:
                wire["Prefix"] = ""
            else:
                wire["Filter"] = {}
        rules.append(wire)
    request: dict[str, Any] = {"LifecycleConfiguration": {"Rules": rules}}
    if config.transition_default_minimum_object_size is not None:
        request["TransitionDefaultMinimumObjectSize"] = config.transition_default_minimum_object_size
    return request
