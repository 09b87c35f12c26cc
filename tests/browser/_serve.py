"""Serving things for browser tests: a directory over HTTP, or a server process waited for.

with serve_directory(site) as url:            # http://127.0.0.1:<port>/
    page.goto(url)

port = free_port()
with running_server(["kedro", "viz", "run", "--port", str(port)], f"http://127.0.0.1:{port}/",
                    cwd=project) as url:
    page.goto(url)

# e.g. the MLflow UI of a test's tracking store (health endpoint: /health)
port = free_port()
with running_server([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                     "--port", str(port)], f"http://127.0.0.1:{port}/health",
                    log=tmp_path / "mlflow.log") as url:
    page.goto(f"http://127.0.0.1:{port}/")
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002, ARG002
        pass


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on a free port of 127.0.0.1 (a thread); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def wait_for_url(
    url: str,
    timeout: float = 60.0,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``url`` until it answers HTTP 200; fail after ``timeout`` seconds or as soon as
    ``proc`` (the server) exits, with the tail of its ``log``."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server exited with code {proc.returncode} before {url} answered{_tail(log)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local test URL)
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TimeoutError(
        f"{url} did not answer within {timeout:.0f} s (last: {last}){_tail(log)}"
    )


def _tail(log: Path | None, n: int = 3000) -> str:
    if log is None or not log.is_file():
        return ""
    return "\n--- server log (tail) ---\n" + log.read_text(errors="replace")[-n:]


@contextlib.contextmanager
def running_server(
    cmd: Sequence[str],
    url: str,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[str]:
    """Start ``cmd`` (its own process group, output to ``log``), wait until ``url`` answers, yield
    ``url``; the process group is terminated (then killed) on exit."""
    log_file = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(  # noqa: S603 (the test's own command)
        list(cmd),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_url(url, timeout=timeout, proc=proc, log=log)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if log is not None:
            log_file.close()
