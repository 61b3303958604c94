"""Fixtures: a real ringgate binary serving a synthetic ring written by `ringgate write`.

RINGGATE_BIN (default /work/bin/ringgate) names the binary. Without it every test that needs
a server is skipped with that reason (and the reason is printed in the report header).
Every process started here is stopped by its own fixture, by pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

DEFAULT_BIN = "/work/bin/ringgate"
RINGGATE_BIN = os.environ.get("RINGGATE_BIN", DEFAULT_BIN)
#: Events/s of the shared synthetic chain. With seed 1 and this rate the chain's 5th proposal
#: ends in BLOCK_REJECT, so every kind the generator makes shows up within ~3 s.
CHAIN_RATE = 1000

_started: list[subprocess.Popen] = []


def _bin_problem() -> str | None:
    if not os.path.isfile(RINGGATE_BIN):
        return f"ringgate binary not found at RINGGATE_BIN={RINGGATE_BIN!r}"
    if not os.access(RINGGATE_BIN, os.X_OK):
        return f"ringgate binary {RINGGATE_BIN!r} is not executable"
    return None


def pytest_report_header(config):
    problem = _bin_problem()
    if problem:
        return [f"ringgate: *** SKIPPING server tests: {problem} (set RINGGATE_BIN) ***"]
    return [f"ringgate: using {RINGGATE_BIN}"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    problem = _bin_problem()
    if problem:
        terminalreporter.write_line(
            f"ringgate: server tests were SKIPPED: {problem}. Set RINGGATE_BIN to the binary.",
            red=True, bold=True)


@pytest.fixture(scope="session")
def ringgate_bin() -> str:
    problem = _bin_problem()
    if problem:
        pytest.skip(f"{problem}; set RINGGATE_BIN to a ringgate binary to run the server tests")
    return RINGGATE_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """Stop one process we started: SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
    except ProcessLookupError:
        pass


class Writer:
    def __init__(self, binary: str, ring: Path, rate: int):
        self.ring = ring
        self.log = ring.with_suffix(".writer.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "write", "--ring", str(ring), "--rate", str(rate)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        _started.append(self.proc)
        deadline = time.monotonic() + 10
        while not ring.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ringgate write did not create {ring}: {self.log.read_text()}")
            time.sleep(0.02)
        self.started = time.monotonic()

    def stop(self) -> None:
        stop(self.proc)


class Server:
    """`ringgate serve` on 127.0.0.1:0; the port is read from its startup line."""

    def __init__(self, binary: str, ring: Path, *extra: str, shards: int = 2):
        self.proc = subprocess.Popen(
            [binary, "serve", "--ring", str(ring), "--listen", "127.0.0.1:0", "--shards", str(shards),
             "--no-pin", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        _started.append(self.proc)
        self.lines: list[str] = []
        deadline = time.monotonic() + 15
        port = None
        os.set_blocking(self.proc.stdout.fileno(), False)
        buf = b""
        while port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ringgate serve exited: {buf.decode(errors='replace')}")
            if time.monotonic() > deadline:
                stop(self.proc)
                raise RuntimeError(f"ringgate serve printed no port: {buf.decode(errors='replace')}")
            chunk = self.proc.stdout.read() or b""
            buf += chunk
            m = re.search(rb"ws://127\.0\.0\.1:(\d+)", buf)
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.02)
        self.port = port
        self.url = f"ws://127.0.0.1:{port}"
        self.http = f"http://127.0.0.1:{port}"
        # Drain the server's output in the background so it never blocks on a full pipe.
        import threading

        def drain():
            try:
                os.set_blocking(self.proc.stdout.fileno(), True)
                for line in self.proc.stdout:
                    if len(self.lines) < 10000:
                        self.lines.append(line.decode(errors="replace"))
            except (ValueError, OSError):
                pass

        threading.Thread(target=drain, daemon=True).start()

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.http}/v1/status", timeout=5) as r:
            return json.loads(r.read())

    def wait_until(self, pred, timeout: float = 15.0, what: str = "condition") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"server never reached {what}: {st}")
            time.sleep(0.05)

    def stop(self) -> None:
        stop(self.proc)
        try:
            self.proc.stdout.close()
        except (OSError, ValueError):
            pass


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="ringgate-pytest-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def chain(ringgate_bin, workdir):
    """A synthetic chain written at CHAIN_RATE, served with a store that keeps all of it."""
    writer = Writer(ringgate_bin, workdir / "chain.ring", CHAIN_RATE)
    server = None
    try:
        server = Server(ringgate_bin, writer.ring, "--resume-frames", "2000000", "--resume-mib", "256")
        server.wait_until(lambda s: s.get("server_seqno", 0) > 0, what="first frame")
        yield server
    finally:
        if server is not None:
            server.stop()
        writer.stop()


@pytest.fixture(scope="session")
def small_store(ringgate_bin, chain, workdir):
    """A second server on the same ring whose resume store keeps only 500 frames per shard
    and no shared history behind it (so a cursor from the start is too old)."""
    server = Server(ringgate_bin, workdir / "chain.ring", "--resume-frames", "500", "--history-mib", "0")
    try:
        server.wait_until(lambda s: s.get("oldest_resumable_seqno", 0) > 5, what="store eviction")
        yield server
    finally:
        server.stop()


#: Hard wall-clock bound for any single test (its own bounds are much tighter).
TEST_HARD_LIMIT_S = 90


@pytest.fixture(autouse=True)
def _hard_time_limit():
    """Fail (not hang) a test that exceeds TEST_HARD_LIMIT_S, whatever it is blocked on."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"test exceeded the hard limit of {TEST_HARD_LIMIT_S}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_HARD_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(coro, timeout: float):
    """Run a coroutine with a hard time bound."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def pytest_sessionfinish(session, exitstatus):
    for p in _started:
        stop(p)


def tail_command() -> list[str]:
    exe = shutil.which("ringgate-tail", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "ringgate_client.tail"]
