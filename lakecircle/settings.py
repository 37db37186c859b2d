"""Settings: the ``LCC_*`` environment, validated once at start into one frozen value.

Every problem is reported at once, each naming the variable and the form it expects
(:class:`~lakecircle.errors.ConfigError`). Command-line flags override the environment
by being passed as keyword arguments. AWS credentials, profiles and ``AWS_ENDPOINT_URL``
are the SDK's own business and are not read here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lakecircle.errors import ConfigError
from lakecircle.problems import suggest

ENV_PREFIX = "LCC_"


class ActionMode(StrEnum):
    SYNC = "SYNC"
    DRYRUN = "DRYRUN"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LogFormat(StrEnum):
    AUTO = "AUTO"
    TREE = "TREE"
    COLORTREE = "COLORTREE"
    TEXT = "TEXT"
    COLORTEXT = "COLORTEXT"
    JSON = "JSON"


_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<prefix>(?:[^/]+/)*)$")


def _check_endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.endswith("/"):
        value += "/"
    if not _S3_URI.match(value):
        raise ValueError("expected an S3 URI such as s3://my-lakecircle-bucket/lifecycle/")
    return value


def _check_account(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{12}", value):
        raise ValueError("expected a 12-digit AWS account ID such as 123456789012")
    return value


def _check_region(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", value):
        raise ValueError("expected an AWS region code such as eu-west-1")
    return value


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

    endpoint: Annotated[str | None, AfterValidator(_check_endpoint)] = None
    aws_account: Annotated[str | None, AfterValidator(_check_account)] = None
    aws_region: Annotated[str | None, AfterValidator(_check_region)] = None
    actions: ActionMode = ActionMode.SYNC
    action_params: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    app_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.AUTO
    app_name: str = "LakeCircle"
    concurrency: int = Field(default=16, ge=1, le=1024)
    verify_account: bool = True
    content_md5: bool = False
    # -- the always-on service -------------------------------------------------------------
    poll_interval: float = Field(default=30.0, gt=0)
    resync_interval: float = Field(default=600.0, gt=0)
    metrics_addr: str = "127.0.0.1:9739"
    max_requests_per_second: float = Field(default=0.0, ge=0)
    shutdown_timeout: float = Field(default=30.0, ge=0)
    # -- retries (one layer: tenacity around each S3 call) ----------------------------------
    retry_max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_delay: float = Field(default=0.2, gt=0)
    retry_max_delay: float = Field(default=20.0, gt=0)
    cycle_deadline: float = Field(default=1800.0, gt=0)
    # -- safety ----------------------------------------------------------------------------
    max_removals: int = Field(default=100, ge=0)
    allow_mass_removal: bool = False
    settle_seconds: float = Field(default=300.0, ge=0)

    @field_validator("action_params", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f'expected a JSON object such as {{"buckets": ["a", "b"]}} ({exc.msg})') from None
        if not isinstance(value, dict):
            # pydantic turns ValueError, not TypeError, into a reported validation error
            raise ValueError('expected a JSON object such as {"buckets": ["a", "b"]}')  # noqa: TRY004
        return value

    @field_validator("actions", "app_level", "log_format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected HOST:PORT such as 127.0.0.1:9739 (0.0.0.0:9739 for all interfaces)")
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
        match = _S3_URI.match(self.endpoint or "")
        if match is None:
            raise ConfigError([f"{ENV_PREFIX}ENDPOINT: not set; expected an S3 URI such as s3://bucket/prefix/"])
        return match["bucket"], match["prefix"]

    @property
    def definition_uri(self) -> str:
        return f"{self.endpoint}definition/"

    @property
    def bucket_filter(self) -> frozenset[str] | None:
        """``LCC_ACTION_PARAMS={"buckets": [...]}`` limits a run to those buckets."""
        names = self.action_params.get("buckets")
        return frozenset(names) if names is not None else None

    def require(self, *names: str) -> None:
        """Raise one ConfigError listing every required setting that is not set."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ConfigError([f"{ENV_PREFIX}{n.upper()}: required but not set ({_EXPECTED[n]})" for n in missing])


_EXPECTED = {
    "endpoint": "an S3 URI such as s3://my-lakecircle-bucket/lifecycle/",
    "aws_account": "the 12-digit account ID the buckets belong to",
    "aws_region": "the AWS region of the endpoint bucket, such as eu-west-1",
}


def _known_params(params: dict[str, Any]) -> list[str]:
    problems = []
    unknown = sorted(set(params) - {"buckets"})
    if unknown:
        problems.append(f"{ENV_PREFIX}ACTION_PARAMS: unknown key(s) {', '.join(unknown)}; known: buckets")
    buckets = params.get("buckets")
    if buckets is not None and not (isinstance(buckets, list) and all(isinstance(b, str) for b in buckets)):
        problems.append(f'{ENV_PREFIX}ACTION_PARAMS: "buckets" must be a list of bucket names')
    return problems


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A mistyped setting must not be silently ignored."""
    known = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]
    return [
        f"{name}: not a LakeCircle setting{suggest(name, known)}"
        for name in sorted(environ)
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    ]


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the environment (overridden by ``overrides`` that are not None), all errors at once."""
    given = {k: v for k, v in overrides.items() if v is not None}
    problems = _unknown_variables(os.environ if environ is None else environ)
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = f"{ENV_PREFIX}{str(error['loc'][0]).upper()}" if error["loc"] else ENV_PREFIX
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}, got {error.get('input')!r}")
        raise ConfigError(problems) from None
    problems += _known_params(settings.action_params)
    if settings.retry_base_delay > settings.retry_max_delay:
        problems.append(
            f"{ENV_PREFIX}RETRY_BASE_DELAY: {settings.retry_base_delay:g} s is more than"
            f" {ENV_PREFIX}RETRY_MAX_DELAY ({settings.retry_max_delay:g} s); the first retry's delay"
            " must not exceed the cap"
        )
    if problems:
        raise ConfigError(problems)
    return settings
