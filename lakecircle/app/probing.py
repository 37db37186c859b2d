"""The service's one line at start about what its S3 server keeps (``LCC_PROBE_SERVER``).

A user pointing LakeCircle at an S3-compatible server learns at start, in one structured
line, which fields the server drops (a definition using them would be planned again every
cycle) and which features it refuses, instead of finding out bucket by bucket
(:mod:`lakecircle.adapters.s3.probe` does the asking). The probe never stops the service:
what could not be probed is logged with the rest.
"""

from __future__ import annotations

import structlog

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.probe import probe_server
from lakecircle.errors import LakeCircleError
from lakecircle.s3_uri import parse_s3_uri
from lakecircle.settings import Settings

log = structlog.get_logger("lakecircle.app.probing")


async def announce_server(settings: Settings, adapter: S3Adapter) -> None:
    """Probe the server of ``adapter`` once, scratch objects under ``LCC_ENDPOINT``, and log it.

    ``server_probed`` at INFO when the server keeps everything probed, at WARNING when it
    lacks something, something could not be probed or a scratch bucket or object is left
    behind; nothing without ``LCC_ENDPOINT`` (``daemon --definitions`` may run without it) or
    with ``LCC_PROBE_SERVER=false``.
    """
    if not settings.probe_server or settings.endpoint is None:
        return
    bucket, prefix = parse_s3_uri(settings.endpoint)
    try:
        probe = await probe_server(adapter, bucket, prefix)
    except LakeCircleError as exc:
        log.warning("server_probed", endpoint=None, missing=[], not_probed=[f"the server: {exc}"])
        return
    fields = probe.log_fields()
    if probe.missing() or probe.not_probed or probe.left_behind:
        log.warning("server_probed", **fields)
    else:
        log.info("server_probed", **fields)
