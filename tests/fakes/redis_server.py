"""A private, throw-away ``redis-server`` on a free 127.0.0.1 port (tests and bench share it).

    with redis_server() as url:   # "redis://127.0.0.1:<port>/0"
        ...

Nothing is persisted: no RDB snapshots, no AOF, and the working directory is a temporary one.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


class RedisServerError(RuntimeError):
    """redis-server is missing, exited at start, or did not start listening in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(executable: str | None = None, *, start_timeout: float = 10.0) -> Iterator[str]:
    """Run a redis-server for the duration of the block and yield its URL (database 0)."""
    server = executable or shutil.which("redis-server")
    if server is None:
        raise RedisServerError("redis-server is not installed (bash .ci/run installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(  # noqa: S603 - a fixed local binary
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(port, proc, start_timeout)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RedisServerError("redis-server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RedisServerError("redis-server did not start")
