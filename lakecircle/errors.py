"""LakeCircle's own errors, split by what the caller does next.

::

    LakeCircleError
    ├── ConfigError ............... settings are wrong: fatal at start, print and exit 1
    ├── AccountMismatch ........... credentials belong to another account: refuse to run
    ├── DefinitionSourceError ..... the definition prefix cannot be listed: write nothing
    ├── AccountSourceError ........ the managed accounts cannot be read: keep the last list, or stop
    └── S3Error ................... one S3 call failed (bucket, operation, code, request id)
        ├── PermanentError ........ report the bucket, go on with the others; never retried
        │   ├── AccessDenied
        │   ├── NoSuchBucket
        │   ├── InvalidRequest .... S3 refused what was sent (MalformedXML, InvalidArgument)
        │   │   └── NotFound ...... what was asked for does not exist (NoSuchKey, NoSuchLifecycleConfiguration)
        │   ├── ArchivedObject .... an object in an archive storage class cannot be read
        │   └── MalformedResponse . S3's answer could not be read: nothing is written on it
        └── TransientError ........ retried by one layer only, with jittered backoff
            ├── Throttled ......... SlowDown, 503, Throttling, RequestTimeout
            ├── ServerError ....... other 5xx
            └── ConnectionFailed .. timeouts, resets, unreachable endpoint

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


class DefinitionSourceError(LakeCircleError):
    """The definitions could not be listed at all: no bucket may be written this cycle."""


class AccountSourceError(LakeCircleError):
    """The managed accounts (``LCC_ACCOUNTS``) could not be read at all: the accounts file is
    missing or cannot be opened, or the organization's accounts cannot be listed. Which
    accounts are managed is then unknown; nothing about them is to be concluded from it."""


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


class ArchivedObject(PermanentError):
    hint = (
        "the object is in an archive storage class (GLACIER, DEEP_ARCHIVE); upload it again"
        " in STANDARD, and keep lifecycle rules of the endpoint bucket away from LakeCircle's prefix"
    )


class MalformedResponse(PermanentError):
    hint = "nothing was written on the strength of it"


class TransientError(S3Error):
    """Worth retrying: throttling, server errors, timeouts and dropped connections."""


class Throttled(TransientError):
    hint = "S3 is throttling; LakeCircle slows down and retries"


class ServerError(TransientError):
    pass


class ConnectionFailed(TransientError):
    hint = "check the network and AWS_ENDPOINT_URL"
