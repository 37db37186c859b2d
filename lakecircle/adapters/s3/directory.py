"""The account's directory buckets (S3 Express One Zone), listed by ListDirectoryBuckets.

ListBuckets lists general purpose buckets only: without this, a defined directory bucket
was reported "missing". ListDirectoryBuckets is a regional call (botocore sends it to
``s3express-control.<region>.amazonaws.com``, its endpoint rules choosing that from the
operation) made in the adapter's region (``LCC_AWS_REGION``; the API reference does not say
whether it lists other regions' directory buckets), page by page. It names no
region (BucketRegion is not part of its answer): each bucket's comes from its zone ID
(:func:`lakecircle.core.directory.directory_region`), else it is the adapter's region.

Only AWS has directory buckets, so only AWS is asked (:func:`lists_directories`: a client
whose endpoint is AWS's own); other servers would answer NotImplemented, or as if to
ListBuckets (moto does), which costs a listing of every bucket again. A server that is
asked all the same (the adapter's ``directory_buckets`` set to True, as for the tests' endpoint)
and answers NotImplemented or MethodNotAllowed (mapped to :class:`~lakecircle.errors.NotFound`)
has none; from any answer only names of the directory form are taken. A role refused the
call (AccessDenied: a policy from before directory buckets) lists none, with one warning, and
its general purpose buckets are managed as before rather than the whole listing failing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from lakecircle import errors
from lakecircle.adapters.s3.errors import followed_token
from lakecircle.core.directory import directory_region, is_directory_bucket
from lakecircle.core.model import LifecycleConfig
from lakecircle.ports import BucketRef

if TYPE_CHECKING:
    from lakecircle.adapters.s3.adapter import S3Adapter

log = structlog.get_logger("lakecircle.adapters.s3.directory")

_DENIED_HINT = (
    "grant s3express:ListAllMyDirectoryBuckets (deploy/iam-policy.json) to manage directory buckets;"
    " until then a defined directory bucket is reported missing"
)

MAX_PAGE = 1_000
"""ListDirectoryBuckets' largest page (MaxDirectoryBuckets)."""


async def directory_buckets(adapter: S3Adapter, *, prefix: str | None = None) -> AsyncIterator[list[BucketRef]]:
    """The directory buckets ``adapter`` lists in its region (those whose names start with
    ``prefix``), one page at a time; none unless its ``directory_buckets`` says to ask, or
    (None) its endpoint is AWS's own."""
    if adapter.directory_buckets is None:
        adapter.directory_buckets = lists_directories(await adapter.client())
    if not adapter.directory_buckets:
        return
    call, region = adapter.call, adapter.region
    token: str | None = None
    used: set[str] = set()
    while True:
        params: dict[str, Any] = {"MaxDirectoryBuckets": MAX_PAGE}
        if token:
            params["ContinuationToken"] = token
        try:
            response = await call("ListDirectoryBuckets", region=region, **params)
        except errors.NotFound:
            return  # the server has no directory buckets
        except errors.AccessDenied as exc:
            # A role granted before directory buckets (no s3express:ListAllMyDirectoryBuckets): its
            # general purpose buckets are listed and managed all the same, said once, never asked again.
            adapter.directory_buckets = False
            log.warning("directory_buckets_not_listed", region=region, error=str(exc), hint=_DENIED_HINT)
            return
        names = (entry.get("Name") for entry in response.get("Buckets") or ())
        page = [
            BucketRef(name, directory_region(name) or region)
            for name in names
            if isinstance(name, str) and is_directory_bucket(name) and name.startswith(prefix or "")
        ]
        if page:
            yield page
        if token is not None and response.get("ContinuationToken") == token:
            return  # the end: the API says a token sent with the request may come back with the answer
        token = followed_token(response, token, used, operation="ListDirectoryBuckets")
        if token is None:
            return


AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
"""How the hosts of AWS's own endpoints end (its FIPS, dual-stack and VPC endpoints included)."""


def lists_directories(client: Any) -> bool:
    """Whether ``client`` talks to AWS (by its endpoint URL), the one server with directory buckets."""
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    host = urlsplit(endpoint).hostname if isinstance(endpoint, str) else None
    return bool(host) and f".{host}".endswith(AWS_HOSTS)


def directory_config(name: str, config: LifecycleConfig) -> LifecycleConfig:
    """``config`` as the directory bucket ``name`` takes it: without TransitionDefaultMinimumObjectSize,
    which S3 does not support for them (a value read back would be echoed on the next write, and an
    export would hold what validation refuses); a general purpose bucket's as it is."""
    if not is_directory_bucket(name) or config.transition_default_minimum_object_size is None:
        return config
    return LifecycleConfig(config.rules, None)


def owner_of(name: str, account: str) -> dict[str, str]:
    """``ExpectedBucketOwner`` for a call on the bucket ``name``: none for a directory bucket,
    whose lifecycle calls do not take it (S3 refuses or ignores it there), else ``account``."""
    return {} if is_directory_bucket(name) or not account else {"ExpectedBucketOwner": account}
