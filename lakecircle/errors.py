"""LakeCircle's own errors, split by what the caller does next.

::

    LakeCircleError
    ├── ConfigError ............... settings are wrong: fatal at start, print and exit 1
    ├── AccountMismatch ........... credentials belong to another account: refuse to run
    │   └── RoleAccountMismatch ... a member account's role answered as another account: skip that account
    ├── DefinitionSourceError ..... the definition prefix cannot be listed: write nothing
    ├── AccountSourceError ........ the managed accounts cannot be read: keep the last list, or stop
    ├── EventQueueError ........... the events queue cannot be read: go on without events, try again
    └── S3Error ................... one S3 call failed (bucket, operation, code, request id)
        ├── PermanentError ........ report the bucket, go on with the others; never retried
        │   ├── AccessDenied
        │   ├── NoSuchBucket
        │   ├── InvalidRequest .... S3 refused what was sent (MalformedXML, InvalidArgument)
        │   │   ├── NotFound ...... what was asked for does not exist (NoSuchKey, NoSuchLifecycleConfiguration)
        │   │   └── NotImplementedByServer  501: the S3-compatible server lacks the feature (transitions)
        │   ├── ArchivedObject .... an object in an archive storage class cannot be read
        │   ├── ConditionFailed ... a conditional write's condition did not hold: an answer, not a failure
        │   ├── MalformedResponse . S3's answer could not be read: nothing is written on it
        │   └── UnsupportedConfiguration  a live rule holds a field LakeCircle does not know: never written
        ├── TransientError ........ retried by one layer only, with jittered backoff
        │   ├── Throttled ......... SlowDown, 503, Throttling, RequestTimeout
        │   ├── ServerError ....... other 5xx
        │   └── ConnectionFailed .. timeouts, resets, unreachable endpoint
        └── RoleError ............. a member account could not be reached through its role (account, role)
            ├── RoleDenied ........ AssumeRole refused: no such role, a trust policy without the hub, a wrong ExternalId
            ├── RoleSessionExpired  the role's session expired and was not renewed (the clock)
            ├── RoleRefused ....... STS refused the request as invalid (the RoleArn, the session's duration)
            ├── RoleThrottled ..... STS throttled AssumeRole: retried
            ├── RoleUnavailable ... STS failed (5xx): retried
            └── RoleUnreachable ... STS could not be reached (network, region, endpoint): retried

Each ``Role*`` class is also the class above that says what the caller does next
(:class:`RoleDenied` is an :class:`AccessDenied`, :class:`RoleThrottled` a :class:`Throttled`,
and so on), so retries, metrics and the engine treat it as they treat that class.

Bad definitions are not exceptions: they are :class:`~lakecircle.core.problems.Problem`
values. Only the S3 adapter raises :class:`S3Error`, always ``from`` botocore's own.
"""

from __future__ import annotations


class LakeCircleError(Exception):
    """Base of every error LakeCircle raises on purpose."""


class ConfigError(LakeCircleError):
    """One or more settings are invalid; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class AccountMismatch(LakeCircleError):
    def __init__(self, expected: str, actual: str, arn: str | None = None) -> None:
        self.expected = expected
        self.actual = actual
        self.arn = arn
        who = f" ({arn})" if arn else ""
        super().__init__(
            f"the credentials belong to account {actual}{who}, but LCC_AWS_ACCOUNT is {expected};"
            " refusing to run: use credentials of the right account or fix LCC_AWS_ACCOUNT"
        )


class RoleAccountMismatch(AccountMismatch):
    """The role assumed for a member account answered as another account: that account is not touched."""

    def __init__(self, expected: str, actual: str, arn: str | None, *, role_arn: str) -> None:
        self.expected = expected
        self.actual = actual
        self.arn = arn
        self.role_arn = role_arn
        who = f" ({arn})" if arn else ""
        LakeCircleError.__init__(
            self,
            f"account {expected}: the role {role_arn} answered as account {actual}{who}; refusing to touch"
            f" account {expected}: its RoleArn must name a role in account {expected}"
            " (the accounts file's RoleArn, or LCC_ROLE_NAME)",
        )


class DefinitionSourceError(LakeCircleError):
    """The definitions could not be listed at all: no bucket may be written this cycle."""


class AccountSourceError(LakeCircleError):
    """The managed accounts (``LCC_ACCOUNTS``) could not be read at all: the accounts file is
    missing or cannot be opened, or the organization's accounts cannot be listed. Which
    accounts are managed is then unknown; nothing about them is to be concluded from it."""


class EventQueueError(LakeCircleError):
    """The events queue (``LCC_EVENTS_QUEUE``) could not be read or written.

    Names the queue, the request and the cause (SQS's code and message, which name no
    secret) and says what to change. Events are optional: the daemon goes on without them
    (the poll and the schedule find every change, later) and tries the queue again.
    ``transient``: it may pass by itself (throttling, 5xx, the network).
    """

    def __init__(
        self, message: str, *, queue: str, operation: str, code: str | None = None, transient: bool = False
    ) -> None:
        self.queue, self.operation, self.code, self.transient = queue, operation, code, transient
        super().__init__(message)


class S3Error(LakeCircleError):
    """An S3 call failed. Carries where and why, and prints one actionable sentence."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        bucket: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.message, self.operation, self.bucket = message, operation, bucket
        self.code, self.request_id, self.status = code, request_id, status
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"bucket {self.bucket}: " if self.bucket else ""
        code = f" [{self.code}]" if self.code else ""
        req = f" (request id {self.request_id})" if self.request_id else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}{self.operation} failed{code}: {self.message}{hint}{req}"


class PermanentError(S3Error):
    """Retrying will not help; the bucket is reported and the others go on."""


class AccessDenied(PermanentError):
    hint = "grant LakeCircle's role this action on the bucket (see deploy/iam-policy.json)"


class NoSuchBucket(PermanentError):
    hint = "the bucket no longer exists"


class InvalidRequest(PermanentError):
    hint = "S3 refused the configuration; run `lakecircle validate` and report it if it passes"


class NotFound(InvalidRequest):
    """The object, the lifecycle configuration or the tag set asked for does not exist.

    The S3 adapter raises it for NoSuchKey (or a bare 404) from GetObject, for
    NoSuchLifecycleConfiguration and for NoSuchTagSet (a bucket without tags), so a reader
    asks "is this not found?" by the class, never by the error code (ARCHITECTURE.md,
    "Errors and retries"). A subclass of :class:`InvalidRequest`, which those answers were
    before the class existed: a caller that does not expect a missing thing handles it,
    and prints it, as before.
    """


class NotImplementedByServer(InvalidRequest):
    """The S3 server answered 501 NotImplemented: it lacks what the request asks for.

    S3-compatible servers implement a subset of S3 (SeaweedFS, for one, has no lifecycle
    transitions). Another try gets the same answer, so it is never retried; the bucket fails
    with a message naming the server and the feature, and the other buckets go on. A subclass
    of :class:`InvalidRequest`: the request, as sent, is one this server refuses. Its message
    says what to do, so it carries no hint of its own.
    """

    hint = ""


class ArchivedObject(PermanentError):
    hint = (
        "the object is in an archive storage class (GLACIER, DEEP_ARCHIVE); upload it again"
        " in STANDARD, and keep lifecycle rules of the endpoint bucket away from LakeCircle's prefix"
    )


class ConditionFailed(PermanentError):
    """A conditional PutObject (``If-None-Match: *``, ``If-Match: <etag>``) was refused on its condition.

    412 PreconditionFailed (an object is already there, or its ETag is no longer the one
    given), 409 ConditionalRequestConflict (a concurrent conditional write to the key won)
    or 404 NoSuchKey (``If-Match`` on a key with no object). Nothing was written: another
    writer got there first. The lease store answers None for it; it is never retried, as
    another try cannot change the answer (the caller reads the object again and decides).
    """

    hint = "another writer changed the object first; read it again before writing"


class MalformedResponse(PermanentError):
    hint = "nothing was written on the strength of it"


class UnsupportedConfiguration(PermanentError):
    """A bucket's live rules hold a field LakeCircle's model does not know (S3 adds fields
    over time): the bucket is ``unsupported``, never written, since a write would drop the
    field; every other bucket goes on. ``fields`` names each (``rule "<ID>": <path>``)."""

    hint = (
        "LakeCircle does not write a bucket whose rules it cannot read whole; upgrade LakeCircle"
        " to a version that knows the field, or remove it from the bucket's rules"
    )

    def __init__(self, fields: list[str], *, bucket: str, request_id: str | None = None) -> None:
        self.fields = tuple(fields)
        super().__init__(
            "; ".join(self.fields), operation="GetBucketLifecycleConfiguration", bucket=bucket, request_id=request_id
        )

    def __str__(self) -> str:
        req = f" (request id {self.request_id})" if self.request_id else ""
        what = "a field" if len(self.fields) == 1 else "fields"
        return (
            f"bucket {self.bucket}: its lifecycle configuration holds {what} LakeCircle does not know"
            f" ({self.message}); {self.hint}{req}"
        )


class TransientError(S3Error):
    """Worth retrying: throttling, server errors, timeouts and dropped connections."""


class Throttled(TransientError):
    hint = "S3 is throttling; LakeCircle slows down and retries"


class ServerError(TransientError):
    pass


class ConnectionFailed(TransientError):
    hint = "check the network and AWS_ENDPOINT_URL"


class RoleError(S3Error):
    """A member account could not be reached through its role: names the account, the role and the cause.

    Raised by the member account's adapter when AssumeRole (the first one, or a renewal of
    the session the SDK makes before it expires) fails, or when the session it gave has
    expired. ``operation`` is the request that failed (``AssumeRole``, or the bucket call
    whose session had expired); the message is STS's or S3's own, which names ARNs and never
    a secret (no ExternalId, no key, no session token).
    """

    def __init__(
        self,
        message: str,
        *,
        account: str,
        role_arn: str,
        operation: str = "AssumeRole",
        bucket: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.account, self.role_arn = account, role_arn
        super().__init__(message, operation=operation, bucket=bucket, code=code, request_id=request_id, status=status)

    def __str__(self) -> str:
        return f"account {self.account} (role {self.role_arn}): {super().__str__()}"


class RoleDenied(RoleError, AccessDenied):
    hint = (
        "the role must exist in the account, its trust policy must allow the service's own role"
        " to assume it (sts:AssumeRole), and an ExternalId in the accounts file must equal the"
        " trust policy's sts:ExternalId condition (deploy/aws/)"
    )


class RoleSessionExpired(RoleError, AccessDenied):
    hint = (
        "the SDK renews a role's session minutes before it expires: check this machine's clock"
        " (NTP), then the role's maximum session duration"
    )


class RoleRefused(RoleError, InvalidRequest):
    hint = "STS refused the request: check the account's RoleArn and the role's maximum session duration"


class RoleThrottled(RoleError, Throttled):
    hint = "STS is throttling AssumeRole; this account's requests slow down and retry"


class RoleUnavailable(RoleError, ServerError):
    hint = "STS failed; this account's requests retry"


class RoleUnreachable(RoleError, ConnectionFailed):
    hint = "STS could not be reached: check the network, LCC_AWS_REGION and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_STS)"
