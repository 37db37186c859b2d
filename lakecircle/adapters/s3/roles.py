"""A member account reached through its role: the SDK's own assume-role credentials, checked before use.

In multi-account mode the service runs as its own identity, the hub (``LCC_AWS_ACCOUNT``,
where ``LCC_ENDPOINT`` lives), and reaches each member account with credentials from
AssumeRole on the account's role. :class:`ServiceIdentity` is the hub, one per process;
:class:`MemberAdapter` is an :class:`~lakecircle.adapters.s3.adapter.S3Adapter` for one
member account, with its own clients, retries and throttle gate.

The credentials are the SDK's: aiobotocore's ``AioAssumeRoleCredentialFetcher`` calls
AssumeRole with the hub's current credentials (chained: an IRSA or task role renews itself
underneath) and ``AioDeferredRefreshableCredentials`` asks it for a session on first use
and again once fewer than 15 minutes are left (a failure then is tolerated until 10 minutes
are left), one renewal at a time. Those are the two classes aiobotocore's own
``AioAssumeRoleProvider`` builds; the provider itself is not used because it reads the role
and the ExternalId from a profile of the AWS config file (a secret written to a file) and
chains only from a profile or a fixed list of sources, not from whatever gave the hub its
credentials. LakeCircle adds no timing of its own, only what turns a failure into an error
that names the account, the role and the cause (:func:`~lakecircle.adapters.s3.errors.role_error`)
and a refusal of a session that STS hands out already expired by this machine's clock.

DurationSeconds is left to STS (one hour): the SDK renews 15 minutes before the end, so
one AssumeRole serves 45 minutes. The shortest duration STS allows (900 s) would have the
SDK renew the session before every request.

Safety (ARCHITECTURE.md, "Safety", rule 8): before its first call to S3 a member adapter
asks STS who its credentials are (GetCallerIdentity, with the role's session) and refuses
to go on unless the answer is the member account; every bucket call carries that account as
``ExpectedBucketOwner``. Nothing here logs: no ExternalId, key or session token reaches a
message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import aioboto3
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioCredentialResolver,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider
from botocore.exceptions import NoCredentialsError
from botocore.utils import parse_timestamp

from lakecircle import errors
from lakecircle.adapters.retry import RetryOn
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.botocore import botocore_session, client_config
from lakecircle.adapters.s3.errors import EXPIRED_TOKEN_CODES, FROM_BELOW, Server, role_error
from lakecircle.adapters.s3.transport import BUCKETS
from lakecircle.core.accounts import Account

T = TypeVar("T")

SESSION_NAME_PREFIX = "lakecircle-"
MAX_SESSION_NAME = 64
"""STS's limit on RoleSessionName."""

_NOT_IN_SESSION_NAMES = re.compile(r"[^\w+=,.@-]", re.ASCII)
"""What STS does not accept in a RoleSessionName (its alphabet is ``[\\w+=,.@-]``)."""


def role_session_name(label: str | None = None) -> str:
    """``lakecircle-<label>``, the RoleSessionName of every role LakeCircle assumes.

    ``label`` says which replica assumes the role (default: the host name, which is the
    pod's name on Kubernetes), so the member accounts' CloudTrail shows who acted
    (``assumed-role/lakecircle/lakecircle-<pod>``). Characters STS refuses become ``-``;
    the whole is cut to STS's 64 characters.
    """
    label = socket.gethostname() if label is None else label
    cleaned = _NOT_IN_SESSION_NAMES.sub("-", label)
    return (SESSION_NAME_PREFIX + cleaned if cleaned else SESSION_NAME_PREFIX.rstrip("-"))[:MAX_SESSION_NAME]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ServiceIdentity:
    """The service's own identity (the hub), where every member account's AssumeRole starts.

    One per process. Its botocore session resolves the hub's credentials by the SDK's default
    chain (environment, profile, web identity, container or instance role) once; they renew
    themselves when they are temporary. ``region`` and ``endpoint_url`` are STS's and the
    member adapters' defaults (``LCC_AWS_REGION``; None: the SDK's, ``AWS_ENDPOINT_URL``
    included). ``session_name`` is the RoleSessionName (see :func:`role_session_name`).

    Every member account's session shares the hub's botocore data loader, so the service
    models are read and parsed once per process rather than once per account: opening an S3
    client for each of 50 accounts took 6.6 s of CPU (and about 550 MB) with a loader each,
    0.5 s with one.
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        session_name: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        session: AioSession | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.session_name = session_name if session_name is not None else role_session_name()
        if not 2 <= len(self.session_name) <= MAX_SESSION_NAME or _NOT_IN_SESSION_NAMES.search(self.session_name):
            raise ValueError(f"not a RoleSessionName STS accepts: {self.session_name}")
        self.session = session if session is not None else botocore_session()
        self._sts_config = client_config(
            concurrency=1, connect_timeout=connect_timeout, read_timeout=read_timeout, content_md5=False
        )

    async def get_frozen_credentials(self) -> Any:
        """The hub's credentials as they are now (what AssumeRole is signed with)."""
        credentials = await self.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError
        return await credentials.get_frozen_credentials()

    def _sts_client(self, service_name: str, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        """An STS client signed with the credentials the fetcher gives (the hub's)."""
        client: AbstractAsyncContextManager[Any] = self.session.create_client(
            service_name, region_name=self.region, endpoint_url=self.endpoint_url, config=self._sts_config, **kwargs
        )
        return client

    def member_session(self, member: Account) -> aioboto3.Session:
        """An aioboto3 session whose credentials are ``member``'s role, assumed (and renewed) by the SDK.

        Nothing is asked of STS until the first request. ExternalId goes with AssumeRole
        when the account has one.
        """
        extra: dict[str, Any] = {"RoleSessionName": self.session_name}
        if member.external_id is not None:
            extra["ExternalId"] = member.external_id
        fetcher = AioAssumeRoleCredentialFetcher(
            client_creator=self._sts_client, source_credentials=self, role_arn=member.role_arn, extra_args=extra
        )
        credentials = AioDeferredRefreshableCredentials(
            refresh_using=_checked(fetcher.fetch_credentials, member), method=AssumedRole.METHOD, time_fetcher=_now
        )
        session = botocore_session()
        session.register_component("data_loader", self.session.get_component("data_loader"))
        session.register_component("credential_provider", AioCredentialResolver([AssumedRole(credentials)]))
        return aioboto3.Session(botocore_session=session)


def _checked(
    fetch: Callable[[], Awaitable[dict[str, Any]]], member: Account
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``fetch`` (the SDK's AssumeRole), its failures as LakeCircle's errors naming the account and role.

    A session that ends before now by this machine's clock is refused here with what to
    check: the SDK would otherwise raise a bare RuntimeError ("refreshed credentials are
    still expired").
    """

    async def fetch_checked() -> dict[str, Any]:
        try:
            fetched = await fetch()
        except FROM_BELOW as exc:
            raise role_error(exc, account=member.id, role_arn=member.role_arn) from exc
        ends = parse_timestamp(fetched["expiry_time"]).astimezone(dt.UTC)
        now = _now()
        if ends <= now:
            raise errors.RoleSessionExpired(
                f"STS gave a session that ended at {ends:%Y-%m-%dT%H:%M:%SZ}, before this machine's time"
                f" ({now:%Y-%m-%dT%H:%M:%SZ})",
                account=member.id,
                role_arn=member.role_arn,
            )
        return fetched

    return fetch_checked


class AssumedRole(CredentialProvider):  # type: ignore[misc]  # botocore is untyped
    """The one credential provider of a member account's session: its role's refreshable credentials."""

    METHOD = "lakecircle-assume-role"
    CANONICAL_NAME = "LakeCircleAssumeRole"

    def __init__(self, credentials: AioDeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    async def load(self) -> AioDeferredRefreshableCredentials:
        return self._credentials


class MemberAdapter(S3Adapter):
    """A member account's buckets, reached through its role (see the module docstring).

    ``member`` is the account (its ID becomes ``ExpectedBucketOwner``), ``identity`` the
    hub; region and endpoint default to the hub's. Every other option is
    :class:`~lakecircle.adapters.s3.adapter.S3Adapter`'s, ``slots`` included (the
    account's share of the process's requests). The account is always verified (there is no
    ``verify_account`` here: reaching it needs STS anyway), before the adapter's first
    request to S3 (:meth:`check_account`, which the caller may also call first, to fail early).

    Use it for the member account's buckets only: LakeCircle's records under
    ``LCC_ENDPOINT`` belong to the hub and go through the hub's own adapter.
    """

    def __init__(self, *, member: Account, identity: ServiceIdentity, **options: Any) -> None:
        options.setdefault("region", identity.region)
        options.setdefault("endpoint_url", identity.endpoint_url)
        super().__init__(account=member.id, session=identity.member_session(member), **options)
        self.member = member
        self.verified = False
        """STS has said the credentials are the member account's (see :meth:`check_account`)."""
        self.caller: str | None = None
        """The role session's ARN, once verified."""
        self._verifying = asyncio.Lock()

    async def check_account(self) -> str | None:
        """The role session's ARN, after STS has said its credentials are the member account's.

        Asks once: later calls return the first answer. Raises
        :class:`~lakecircle.errors.RoleAccountMismatch` when the credentials are another
        account's, and a :class:`~lakecircle.errors.RoleError` when the role could not be
        assumed (asked again next time).
        """
        async with self._verifying:
            if not self.verified:
                response = await self.call("GetCallerIdentity", service="sts")
                actual = str(response.get("Account") or "")
                arn = str(response.get("Arn") or "") or None
                if actual != self.account:
                    raise errors.RoleAccountMismatch(
                        self.account, actual or "(none)", arn, role_arn=self.member.role_arn
                    )
                self.caller, self.verified = arn, True
        return self.caller

    async def _retried(
        self,
        operation: str,
        params: dict[str, Any],
        consume: Callable[[dict[str, Any]], Awaitable[T]],
        *,
        region: str | None = None,
        service: str = "s3",
        lane: str = BUCKETS,
        retry_on: RetryOn = (errors.TransientError,),
    ) -> T:
        """Every request, once the account is verified (the check itself excepted)."""
        if not self.verified and operation != "GetCallerIdentity":
            await self.check_account()
        return await super()._retried(
            operation, params, consume, region=region, service=service, lane=lane, retry_on=retry_on
        )

    def _map(
        self, exc: Exception, *, operation: str, bucket: str | None, server: Server | None = None
    ) -> errors.LakeCircleError:
        """As the S3 adapter maps, but a refusal for an expired session names the account and the role."""
        error = super()._map(exc, operation=operation, bucket=bucket, server=server)
        if isinstance(error, errors.S3Error) and error.code in EXPIRED_TOKEN_CODES:
            return role_error(error, account=self.account, role_arn=self.member.role_arn)
        return error
