"""Every exception from below the S3 adapter becomes one of LakeCircle's errors, here and only here.

botocore raises :class:`~botocore.exceptions.ClientError` for an answer S3 refused and its
own exceptions for a request that never got one; aiobotocore lets aiohttp's through while a
body streams; botocore's parsers raise a bare :class:`ValueError` for a value of the wrong
type; an attempt that outlives its time limit raises :class:`TimeoutError`.
:func:`map_error` turns each into the error class that says what the caller does next
(ARCHITECTURE.md, "Errors and retries"), with the operation, bucket, S3 error code and
request id as attributes, and a message on one line without Python reprs. The caller
raises the result ``from`` the original, so the cause stays in the traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError
from pydantic import ValidationError

from lakecircle import errors
from lakecircle.core.model import Rule

BOTO_ERRORS = (ClientError, BotoCoreError, ResponseParserError, aiohttp.ClientError)
"""What botocore and aiobotocore may raise: botocore's errors, and aiohttp's where aiobotocore
lets them through (a body cut short while it is streamed raises ClientPayloadError)."""

FROM_BELOW = (*BOTO_ERRORS, ValueError, TimeoutError)
"""What one attempt may raise from below: :data:`BOTO_ERRORS`, a parser's bare ValueError and
the attempt's own time limit. :func:`map_error` maps each of them."""

_THROTTLED_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
    }
)
_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",  # Organizations' (an HTTP 400), as other JSON services spell it
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
    }
)
_SERVER_ERROR_CODES = frozenset({"InternalError", "ServiceUnavailable"})

_NOT_FOUND_CODES = {
    "GetBucketLifecycleConfiguration": frozenset({"NoSuchLifecycleConfiguration"}),
    "GetBucketTagging": frozenset({"NoSuchTagSet"}),
    "GetObject": frozenset({"NoSuchKey", "404"}),  # "404": an answer without an error document
    # Organizations: an OU or root of LCC_ACCOUNT_FILTER that the organization does not have.
    "ListAccountsForParent": frozenset({"ParentNotFoundException"}),
    "ListOrganizationalUnitsForParent": frozenset({"ParentNotFoundException"}),
}
"""Per operation, the codes that say the thing asked for does not exist (:class:`~lakecircle.errors.NotFound`).

Only these: a bare 404 from another operation (a proxy's page, a wrong endpoint) is not
taken for "no lifecycle configuration", which would read as "no rules" and be written over,
nor for "no tags", which would have a tag selector drop the bucket.
"""

_NOT_SERVED = frozenset({"NotImplemented", "MethodNotAllowed"})
"""What a server answers an operation it does not have (ListDirectoryBuckets, on most S3-compatible servers)."""

_CONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
"""A conditional PutObject's refusals (:class:`~lakecircle.errors.ConditionFailed`): 412 on a
condition that does not hold, 409 when a concurrent conditional write won, and NoSuchKey for
``If-Match`` on a key with no object. A plain PutObject never gets them; NoSuchBucket is not
among them (a missing endpoint bucket is no lost race)."""


def map_error(
    exc: Exception,
    *,
    operation: str,
    bucket: str | None = None,
    attempt_timeout: float | None = None,
    server: Server | None = None,
) -> errors.LakeCircleError:
    """LakeCircle's error for ``exc`` (one of :data:`FROM_BELOW`) raised by ``operation`` on ``bucket``.

    The caller raises the result ``from exc``. Missing credentials are a configuration
    problem (:class:`~lakecircle.errors.ConfigError`), not a bucket's failure. A
    :class:`TimeoutError` is an attempt cut off after ``attempt_timeout`` seconds.
    ``server`` (the endpoint and the request's parameters) names what a server that answers
    NotImplemented lacks, and the bucket when ``bucket`` is None.
    """
    if bucket is None and server is not None:
        bucket = server.params.get("Bucket")
    if isinstance(exc, ClientError):
        return _map_client_error(exc, operation=operation, bucket=bucket, server=server)
    if not isinstance(exc, BOTO_ERRORS):  # aiohttp's timeouts are TimeoutErrors too: mapped below
        if isinstance(exc, ValueError):
            # botocore's parsers raise a bare ValueError for a value of the wrong type
            # (<Days>abc</Days>, a timestamp that is no date): the answer cannot be read.
            return errors.MalformedResponse(
                f"the response could not be parsed: {_one_line(str(exc))}", operation=operation, bucket=bucket
            )
        if isinstance(exc, TimeoutError):
            within = f"within {attempt_timeout:g} s" if attempt_timeout is not None else "in the time allowed"
            return errors.ConnectionFailed(
                f"no complete answer {within}; the request stalled", operation=operation, bucket=bucket
            )
    return _map_transport_error(exc, operation=operation, bucket=bucket)


def _map_transport_error(exc: Exception, *, operation: str, bucket: str | None) -> errors.LakeCircleError:
    """LakeCircle's error for a botocore or aiohttp exception other than ClientError."""
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, connection resets.
        return errors.ConnectionFailed(str(exc), operation=operation, bucket=bucket)
    if isinstance(exc, aiohttp.ClientPayloadError):
        # A streamed body (GetObject) cut short: aiobotocore passes aiohttp's error on, whose
        # text holds the repr of the error inside it: say it in words instead.
        return errors.ConnectionFailed(
            "the connection broke while the answer's body was read (fewer bytes came than it announced)",
            operation=operation,
            bucket=bucket,
        )
    if isinstance(exc, aiohttp.ClientError):
        return errors.ConnectionFailed(
            f"the connection broke while the answer was read: {_without_reprs(str(exc))}",
            operation=operation,
            bucket=bucket,
        )
    if isinstance(exc, FlexibleChecksumError):
        # The body does not match the checksum S3 sent with it: a corrupted transfer, worth another try.
        return errors.ConnectionFailed(
            f"the answer's body does not match its checksum (corrupted in transfer): {_one_line(str(exc))}",
            operation=operation,
            bucket=bucket,
        )
    if isinstance(exc, ResponseParserError):
        return errors.MalformedResponse(
            f"the response could not be parsed: {_one_line(str(exc))}", operation=operation, bucket=bucket
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return errors.ConfigError(
            [
                f"AWS credentials: {exc}; provide them the AWS SDK's way"
                " (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or task role)"
            ]
        )
    if isinstance(exc, ParamValidationError):
        return errors.InvalidRequest(
            f"the request was refused before it was sent: {_one_line(str(exc))}", operation=operation, bucket=bucket
        )
    return errors.PermanentError(str(exc) or type(exc).__name__, operation=operation, bucket=bucket)


def _map_client_error(
    exc: ClientError, *, operation: str, bucket: str | None, server: Server | None = None
) -> errors.S3Error:
    response: Mapping[str, Any] = exc.response or {}
    error: Mapping[str, Any] = response.get("Error") or {}
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    headers: Mapping[str, Any] = meta.get("HTTPHeaders") or {}
    code = str(error.get("Code") or "") or None
    raw_status = meta.get("HTTPStatusCode")
    status = raw_status if isinstance(raw_status, int) else None
    request_id = meta.get("RequestId") or headers.get("x-amz-request-id") or headers.get("x-amzn-requestid") or None
    message = str(error.get("Message") or code or exc)
    if status is not None and status >= 500 and code == str(status):
        # No S3 error document could be read: botocore reports a 200 whose body is not XML
        # (garbled or cut short) as a retryable 500 too. Say so rather than "Internal Server Error".
        message = f"HTTP {status} without a readable S3 error document ({message}); the answer was garbled or cut short"
    cls = _error_class(code, status, operation)
    if cls is errors.NotImplementedByServer:
        message = _unimplemented(operation, server or Server(None, {}), message)
    return cls(message, operation=operation, bucket=bucket, code=code, request_id=request_id, status=status)


def _error_class(code: str | None, status: int | None, operation: str) -> type[errors.S3Error]:
    if code in _THROTTLED_CODES or status in (429, 503):
        return errors.Throttled
    if operation == "ListDirectoryBuckets" and (code in _NOT_SERVED or status in (405, 501)):
        # A server without directory buckets (no S3 Express): it holds none, no retry helps.
        return errors.NotFound
    if code == "InvalidObjectState":  # a 403, but no permission would help
        return errors.ArchivedObject
    if code in _ACCESS_DENIED_CODES or status == 403:
        return errors.AccessDenied
    if code == "NoSuchBucket" or (status == 404 and operation == "HeadBucket"):
        # HEAD responses have no body, so HeadBucket's "no such bucket" is a bare 404.
        return errors.NoSuchBucket
    if code == "NotImplemented" or status == 501:
        return errors.NotImplementedByServer  # a 5xx, but another try gets the same answer
    if code in _SERVER_ERROR_CODES or (status is not None and status >= 500):
        return errors.ServerError  # whatever its code says: a failure is never read as "not found"
    if operation == "PutObject" and (code in _CONDITION_CODES or status == 412):
        return errors.ConditionFailed  # nor as a lost race
    if code in _NOT_FOUND_CODES.get(operation, ()):
        return errors.NotFound
    return errors.InvalidRequest


@dataclass(frozen=True)
class Server:
    """Where a request went (``endpoint``, None when unknown) and its parameters, to name what a
    server answering NotImplemented lacks."""

    endpoint: str | None
    params: Mapping[str, Any]

    @classmethod
    def of(cls, client: Any, params: Mapping[str, Any]) -> Server:
        """Where ``client`` (a botocore client; a test's stub may have no ``meta``) sent ``params``."""
        return cls(getattr(getattr(client, "meta", None), "endpoint_url", None), params)


_TRANSITION_KEYS = {"Transitions": "transitions", "NoncurrentVersionTransitions": "noncurrent version transitions"}


def _unimplemented(operation: str, server: Server, said: str) -> str:
    """The message of a NotImplemented answer: the server, what it does not implement, and what to do."""
    where = f"the S3 server at {server.endpoint}" if server.endpoint else "the S3 server"
    if operation != "PutBucketLifecycleConfiguration":
        return f"{where} does not implement {operation} ({said}); LakeCircle needs it: use a server that implements it"
    config = server.params.get("LifecycleConfiguration")
    rules = config.get("Rules") if isinstance(config, Mapping) else None
    found: dict[str, list[str]] = {}
    for rule in rules if isinstance(rules, list) else ():
        for key, what in _TRANSITION_KEYS.items():
            if isinstance(rule, Mapping) and rule.get(key):
                found.setdefault(what, []).append(repr(str(rule.get("ID") or "(no ID)")))
    if not found:
        return (
            f"{where} does not implement part of this lifecycle configuration ({said}): remove what it"
            " lacks from the bucket's definition, or manage the bucket on a server that implements it"
        )
    kinds = " and ".join(found)
    named = "; ".join(f"{what} in rule(s) {', '.join(ids)}" for what, ids in found.items())
    return (
        f"{where} does not implement lifecycle {kinds} ({named}): remove the {kinds} from the"
        " bucket's definition, or manage the bucket on a server that implements them"
    )


_ROLE_CLASSES: tuple[tuple[type[errors.S3Error], type[errors.RoleError]], ...] = (
    (errors.Throttled, errors.RoleThrottled),
    (errors.ServerError, errors.RoleUnavailable),
    (errors.MalformedResponse, errors.RoleUnavailable),  # STS's answer garbled: ask again
    (errors.ConnectionFailed, errors.RoleUnreachable),
    (errors.AccessDenied, errors.RoleDenied),
)
"""The error of a role's failure, by the class of the error :func:`map_error` gives; else RoleRefused."""

EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
"""The codes STS and S3 answer for a session token past its expiry."""


def role_error(exc: Exception, *, account: str, role_arn: str) -> errors.LakeCircleError:
    """LakeCircle's error for ``exc``, met while ``account`` was reached through its role ``role_arn``.

    ``exc`` is one of :data:`FROM_BELOW` raised by AssumeRole (the SDK asking STS for the
    role's session, at first use or to renew it), or an :class:`~lakecircle.errors.S3Error`
    already mapped (a bucket call refused because the session expired). The result is the
    ``Role*`` class that is also the class :func:`map_error` gives (a denied AssumeRole is a
    :class:`~lakecircle.errors.RoleDenied`, an :class:`~lakecircle.errors.AccessDenied`), with
    STS's message, code and request id; an expired token is a
    :class:`~lakecircle.errors.RoleSessionExpired`. A :class:`~lakecircle.errors.ConfigError`
    (the service itself has no credentials to assume the role with) is the process's problem,
    not the account's, and is returned as it is.
    """
    mapped = exc if isinstance(exc, errors.LakeCircleError) else map_error(exc, operation="AssumeRole")
    if not isinstance(mapped, errors.S3Error) or isinstance(mapped, errors.RoleError):
        return mapped
    if mapped.code in EXPIRED_TOKEN_CODES:
        cls: type[errors.RoleError] = errors.RoleSessionExpired
    else:
        cls = next((role for base, role in _ROLE_CLASSES if isinstance(mapped, base)), errors.RoleRefused)
    return cls(
        mapped.message,
        account=account,
        role_arn=role_arn,
        operation=mapped.operation,
        bucket=mapped.bucket,
        code=mapped.code,
        request_id=mapped.request_id,
        status=mapped.status,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


_REPR = re.compile(r"<[^<>]*>")


def _without_reprs(text: str) -> str:
    """A library's message on one line, without the ``<Class ...>`` reprs some put in it."""
    return _one_line(_REPR.sub("", text)).rstrip(": ") or "no reason given"


def _describe_validation(exc: ValidationError | TypeError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
    return _one_line(str(exc))


def _describe_rule_problem(response: Mapping[str, Any], exc: ValidationError | TypeError | ValueError) -> str:
    """What in a GetBucketLifecycleConfiguration answer the model refused, naming the rule."""
    rules = response.get("Rules")
    for index, raw in enumerate(rules if isinstance(rules, list) else ()):
        try:
            Rule.model_validate(raw)
        except (ValidationError, TypeError, ValueError) as rule_exc:
            rule_id = raw.get("ID") if isinstance(raw, Mapping) else None
            name = f"rule {rule_id!r}" if isinstance(rule_id, str) and rule_id else f"rule #{index + 1}"
            return f"{name}: {_describe_validation(rule_exc)}"
    return _describe_validation(exc)


def unreadable_lifecycle(
    response: Mapping[str, Any], exc: ValidationError | TypeError | ValueError, *, bucket: str
) -> errors.MalformedResponse:
    """The error for a GetBucketLifecycleConfiguration answer the model refused, naming the rule."""
    return errors.MalformedResponse(
        f"the lifecycle configuration could not be read: {_describe_rule_problem(response, exc)}",
        operation="GetBucketLifecycleConfiguration",
        bucket=bucket,
        request_id=request_id_of(response),
    )


def request_id_of(response: Mapping[str, Any]) -> str | None:
    """The request id of a successful answer, for the errors raised on its content."""
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    return meta.get("RequestId") or None


def followed_token(response: Mapping[str, Any], token: str | None, used: set[str], *, operation: str) -> str | None:
    """The ContinuationToken of a listing's page to follow (added to ``used``), None at the end; a
    token already followed is a :class:`~lakecircle.errors.MalformedResponse` (the list would never end)."""
    next_token = response.get("ContinuationToken")
    if not next_token:
        return None
    if next_token in used or next_token == token:
        raise errors.MalformedResponse(
            "a ContinuationToken already followed came back; the bucket list would never end",
            operation=operation,
            request_id=request_id_of(response),
        )
    used.add(next_token)
    return str(next_token)
