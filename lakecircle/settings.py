"""Settings: the ``LCC_*`` environment, validated once at start into one frozen value.

Every problem is reported at once, each naming the variable and the form it expects
(:class:`~lakecircle.errors.ConfigError`), the settings the command requires among them:
one run shows everything to fix. Numeric settings have ranges and a refused value is
shown at most as a short preview, nothing at all of ``LCC_ACTION_PARAMS``
(:mod:`lakecircle.setting_values` says why). Command-line flags override the environment
by being passed as keyword arguments. AWS credentials, profiles and ``AWS_ENDPOINT_URL``
are the SDK's own business and are not read here.
"""

from __future__ import annotations

import difflib
import json
import os
import socket
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lakecircle.core.account_filter import AccountFilter, parse_account_filter
from lakecircle.core.accounts import partition_of, role_name_problem
from lakecircle.core.problems import suggest
from lakecircle.core.queue_url import QueueUrl, parse_queue_url
from lakecircle.errors import ConfigError
from lakecircle.s3_uri import check_endpoint, parse_s3_uri
from lakecircle.setting_values import (
    DEFAULT_ROLE_NAME,
    NEVER_SHOWN,
    RANGES,
    StorageClasses,
    check_account,
    check_accounts,
    check_events_queue,
    check_region,
    check_replica_id,
    number,
    preview,
)

ENV_PREFIX = "LCC_"


class ActionMode(StrEnum):
    SYNC = "SYNC"
    DRYRUN = "DRYRUN"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class AccountsFrom(StrEnum):
    """Where the managed accounts come from (``LCC_ACCOUNTS``); unset: ``LCC_AWS_ACCOUNT``'s one account."""

    ORGANIZATION = "organization"
    """Organizations' ListAccounts (ACTIVE accounts), narrowed by ``LCC_ACCOUNT_FILTER``."""
    S3_FILE = "s3"
    """An accounts file in S3 (``s3://bucket/key.toml``)."""
    LOCAL_FILE = "local"
    """An accounts file on the local disk."""


class LogFormat(StrEnum):
    AUTO = "AUTO"
    TREE = "TREE"
    COLORTREE = "COLORTREE"
    TEXT = "TEXT"
    COLORTEXT = "COLORTEXT"
    JSON = "JSON"


def env_name(field: str) -> str:
    """The variable of a setting: ``poll_interval`` -> ``LCC_POLL_INTERVAL``."""
    return f"{ENV_PREFIX}{field.upper()}"


def _host_name() -> str:
    """``LCC_REPLICA_ID``'s default: the host name, which on Kubernetes is the pod's name."""
    return socket.gethostname()


class Refused(ValueError):
    """A setting's value was refused; ``lines`` are complete problems, each naming its setting."""

    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)
        super().__init__("; ".join(lines))


class Settings(BaseSettings):
    """Every ``LCC_*`` setting. The README's configuration table lists the same."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        case_sensitive=False,
        env_ignore_empty=True,
        validate_default=True,
        allow_inf_nan=False,
    )

    endpoint: Annotated[str | None, AfterValidator(check_endpoint)] = None
    aws_account: Annotated[str | None, AfterValidator(check_account)] = None
    aws_region: Annotated[str | None, AfterValidator(check_region)] = None
    actions: ActionMode = ActionMode.SYNC
    action_params: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    app_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.AUTO
    app_name: str = "LakeCircle"
    concurrency: int = 16
    verify_account: bool = True
    content_md5: bool = False
    storage_classes: StorageClasses = ()
    probe_server: bool = True
    # -- the always-on service -------------------------------------------------------------
    poll_interval: float = 30.0
    resync_interval: float = 600.0
    metrics_addr: str = "127.0.0.1:9739"
    max_requests_per_second: float = 0.0
    shutdown_timeout: float = 30.0
    # -- retries (one layer: a retry loop around each S3 call) -------------------------------
    retry_max_attempts: int = 8
    retry_base_delay: float = 0.2
    retry_max_delay: float = 20.0
    cycle_deadline: float = 1800.0
    # -- safety ----------------------------------------------------------------------------
    max_removals: int = 100
    allow_mass_removal: bool = False
    settle_seconds: float = 300.0
    # -- replicas (leases on S3 conditional writes under LCC_ENDPOINT) --------------------------
    lease_seconds: float = 30.0
    replica_id: Annotated[str, AfterValidator(check_replica_id)] = Field(default_factory=_host_name)
    # -- many accounts (unset: the one account of LCC_AWS_ACCOUNT) ---------------------------
    accounts: Annotated[str | None, AfterValidator(check_accounts)] = None
    account_filter: str | None = None
    role_name: str = DEFAULT_ROLE_NAME
    # -- events (unset: no events; the schedule and the poll alone) ----------------------------
    events_queue: Annotated[str | None, AfterValidator(check_events_queue)] = None

    @field_validator("action_params", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                # exc.msg says what is wrong without quoting the text (str(exc) would not)
                raise ValueError(f'expected a JSON object such as {{"buckets": ["a", "b"]}} ({exc.msg})') from None
        if not isinstance(value, dict):
            # pydantic turns ValueError, not TypeError, into a reported validation error
            raise ValueError('expected a JSON object such as {"buckets": ["a", "b"]}')  # noqa: TRY004
        return value

    @field_validator("action_params")
    @classmethod
    def _known_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = _params_problems(value)
        if problems:
            raise Refused(*problems)
        return value

    @field_validator("actions", "app_level", "log_format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(*RANGES)
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        bounds = RANGES[str(info.field_name)]
        if value not in bounds:
            raise Refused(f"{env_name(str(info.field_name))}: {number(value)} is out of range; expected {bounds}")
        return value

    @field_validator("retry_max_delay")
    @classmethod
    def _cap_above_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("retry_base_delay")
        if base is not None and base > value:
            raise Refused(
                f"{env_name('retry_base_delay')}: {base:g} s is more than {env_name('retry_max_delay')}"
                f" ({value:g} s); the first retry's delay must not exceed the cap"
            )
        return value

    @field_validator("account_filter")
    @classmethod
    def _account_filter(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        _, problems = parse_account_filter(value)
        lines = [f"{env_name('account_filter')}: {problem}" for problem in problems]
        accounts = info.data.get("accounts", "")  # absent: refused itself, said there
        if not lines and accounts not in ("", AccountsFrom.ORGANIZATION):
            now = "is not set" if accounts is None else "names an accounts file, which lists its accounts itself"
            lines.append(
                f"{env_name('account_filter')}: narrows the accounts of an organization and applies only with"
                f" {env_name('accounts')}=organization, and {env_name('accounts')} {now}; remove the filter"
            )
        if lines:
            raise Refused(*lines)
        return value

    @field_validator("role_name")
    @classmethod
    def _role_name(cls, value: str) -> str:
        problem = role_name_problem(value)
        if problem is not None:
            raise Refused(f"{env_name('role_name')}: {problem}")
        return value

    @model_validator(mode="after")
    def _role_name_needs_accounts(self) -> Self:
        if "role_name" in self.model_fields_set and self.accounts is None:
            raise Refused(
                f"{env_name('role_name')}: names the role assumed in each managed account, and applies only with"
                f" {env_name('accounts')} (unset, LakeCircle manages {env_name('aws_account')} with its own"
                " credentials): set LCC_ACCOUNTS, or remove LCC_ROLE_NAME"
            )
        return self

    @field_validator("metrics_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
            raise ValueError(
                "expected HOST:PORT such as 127.0.0.1:9739 (0.0.0.0:9739 for all interfaces, [::1]:9739 for IPv6)"
            )
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            raise ValueError("expected an IPv6 host in brackets, such as [::1]:9739")
        return value

    # -- derived values ---------------------------------------------------------------

    @property
    def metrics_host_port(self) -> tuple[str, int]:
        host, _, port = self.metrics_addr.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def dry_run(self) -> bool:
        return self.actions is ActionMode.DRYRUN

    @property
    def endpoint_bucket(self) -> str:
        return self.endpoint_parts[0]

    @property
    def endpoint_parts(self) -> tuple[str, str]:
        if self.endpoint is None:
            raise ConfigError([f"{ENV_PREFIX}ENDPOINT: not set; expected an S3 URI such as s3://bucket/prefix/"])
        return parse_s3_uri(self.endpoint)

    @property
    def definition_uri(self) -> str:
        return f"{self.endpoint}definition/"

    @property
    def accounts_from(self) -> AccountsFrom | None:
        """Where the managed accounts come from; None in single-account mode (``LCC_ACCOUNTS`` unset)."""
        if self.accounts is None:
            return None
        if self.accounts == AccountsFrom.ORGANIZATION:
            return AccountsFrom.ORGANIZATION
        return AccountsFrom.S3_FILE if self.accounts.startswith("s3://") else AccountsFrom.LOCAL_FILE

    @property
    def parsed_account_filter(self) -> AccountFilter | None:
        """``LCC_ACCOUNT_FILTER`` read (it was checked when the settings loaded); None when unset."""
        return None if self.account_filter is None else parse_account_filter(self.account_filter)[0]

    @property
    def role_partition(self) -> str:
        """The partition of the roles built from ``LCC_ROLE_NAME``: the hub's, by ``LCC_AWS_REGION``."""
        return partition_of(self.aws_region)

    @property
    def events_queue_url(self) -> QueueUrl | None:
        """``LCC_EVENTS_QUEUE`` read (checked when the settings loaded); None: no events."""
        return None if self.events_queue is None else parse_queue_url(self.events_queue)

    @property
    def bucket_filter(self) -> frozenset[str] | None:
        """``LCC_ACTION_PARAMS={"buckets": [...]}`` limits a run to those buckets."""
        names = self.action_params.get("buckets")
        return frozenset(names) if names is not None else None

    def require(self, *names: str) -> None:
        """Raise one ConfigError listing every required setting that is not set."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ConfigError([_missing(n) for n in missing])


_EXPECTED = {
    "endpoint": "an S3 URI such as s3://my-lakecircle-bucket/lifecycle/",
    "aws_account": "the 12-digit account ID the buckets belong to",
    "aws_region": "the AWS region of the endpoint bucket, such as eu-west-1",
}
REQUIRABLE: Final = frozenset(_EXPECTED)
"""The settings a command may require (:func:`load_settings`'s ``required``)."""


def _missing(name: str) -> str:
    return f"{env_name(name)}: required but not set ({_EXPECTED[name]})"


def _params_problems(params: dict[str, Any]) -> list[str]:
    """What is wrong with LCC_ACTION_PARAMS, without a word of its content (keys included)."""
    problems = []
    unknown = [key for key in params if key != "buckets"]
    if unknown:
        near = any(difflib.get_close_matches(str(key).lower(), ["buckets"], n=1, cutoff=0.75) for key in unknown)
        hint = ' (did you mean "buckets"?)' if near and "buckets" not in params else ""
        problems.append(f'{env_name("action_params")}: {len(unknown)} unknown key(s){hint}; the only key is "buckets"')
    buckets = params.get("buckets")
    if buckets is not None and not (isinstance(buckets, list) and all(isinstance(b, str) for b in buckets)):
        problems.append(f'{env_name("action_params")}: "buckets" must be a list of bucket names')
    return problems


def _describe(error: ErrorDetails) -> list[str]:
    """One validation error as problem lines: the setting, what it expects, a preview of the value."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Refused):
        return cause.lines
    field = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    elif field in RANGES:
        kind = "a whole number" if Settings.model_fields[field].annotation is int else "a number"
        message = f"expected {kind}: {RANGES[field]}"
    elif error["type"] == "bool_parsing":
        message = "expected true or false"
    else:
        message = str(error["msg"])
    if field in NEVER_SHOWN:
        return [f"{env_name(field)}: {message}"]
    return [f"{env_name(field)}: {message}, got {preview(error.get('input'))}"]


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A mistyped setting must not be silently ignored (its name is shown, never its value)."""
    known = [env_name(name) for name in Settings.model_fields]
    return [
        f"{name}: not a LakeCircle setting{suggest(name, known)}"
        for name in sorted(environ)
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    ]


def _given(name: str, given: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """A setting's raw value, from an override or (as pydantic-settings reads it) the environment; None if unset."""
    if name in given:
        return given[name]
    variable = env_name(name)
    return next((value for key, value in environ.items() if key.upper() == variable and value != ""), None)


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    required: Iterable[str] = (),
    required_to_write: Iterable[str] = (),
    **overrides: Any,
) -> Settings:
    """Read the environment (overridden by ``overrides`` that are not None), all errors at once.

    ``required`` names the settings the command cannot run without (:data:`REQUIRABLE`), ``required_to_write``
    those it needs unless ``LCC_ACTIONS`` (or its override) is DRYRUN; a missing one is a problem like any.
    """
    environ = os.environ if environ is None else environ
    given = {k: v for k, v in overrides.items() if v is not None}
    problems = _unknown_variables(environ)
    settings: Settings | None = None
    refused: set[str] = set()
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            refused.add(str(error["loc"][0]) if error["loc"] else "")
            problems += _describe(error)
    needed = list(required)
    if str(_given("actions", given, environ) or "").upper() != ActionMode.DRYRUN:
        needed += [n for n in required_to_write if n not in needed]
    problems += [_missing(n) for n in needed if n not in refused and _given(n, given, environ) is None]
    if problems or settings is None:
        raise ConfigError(problems)
    return settings
