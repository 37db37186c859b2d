"""The container's HEALTHCHECK: exit 0 when LakeCircle's /healthz answers 200, else 1.

python:3.11-slim has no curl or wget, and the image needs none: this uses the standard
library only. It asks the port of LCC_METRICS_ADDR (the image sets 0.0.0.0:9739) on
loopback, or the host named there when it is a specific address.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

WILDCARDS = {"", "0.0.0.0", "::", "[::]", "*"}  # noqa: S104 -- names of "all interfaces", not a bind


def healthz_url(metrics_addr: str) -> str:
    """The /healthz URL for an LCC_METRICS_ADDR value such as 0.0.0.0:9739 or [::1]:9739."""
    host, _, port = metrics_addr.rpartition(":")
    if host in WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host.strip("[]"):
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    url = healthz_url(os.environ.get("LCC_METRICS_ADDR", "127.0.0.1:9739"))
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 -- a local http URL built above
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"{url}: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
