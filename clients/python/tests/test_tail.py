"""ringgate-tail: JSON lines on stdout (through jq), status on stderr, cursor-file resume."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import tail_command


def _run_tail(args: list[str], timeout: float = 30.0, through_jq: bool = True) -> subprocess.CompletedProcess:
    cmd = " ".join(shlex.quote(a) for a in tail_command() + args)
    if through_jq:
        cmd = f"set -o pipefail; {cmd} | jq -c ."
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def jq():
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (apt-get install -y jq)")


def test_tail_output_is_json_lines_and_resumes_from_cursor_file(chain, jq, tmp_path):
    cursor_file = tmp_path / "cursor"
    first = _run_tail([chain.url, "--limit", "300", "--cursor-file", str(cursor_file)])
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) >= 300
    objs = [json.loads(line) for line in lines]
    assert all("event_name" in o and "payload" in o and "seqno" in o for o in objs)
    assert "ringgate-tail: connected to" in first.stderr
    saved = cursor_file.read_text().strip()
    epoch, seqno = (int(x) for x in saved.split(":"))
    assert epoch == chain.status()["epoch"] and seqno > 0

    second = _run_tail([chain.url, "--limit", "50", "--cursor-file", str(cursor_file)])
    assert second.returncode == 0, second.stderr
    assert f"resuming from cursor {saved}" in second.stderr
    assert "recovered=True" in second.stderr and "GAP" not in second.stderr
    more = [json.loads(line) for line in second.stdout.splitlines()]
    # The all channel carries every ring event: the second run continues exactly.
    assert more[0]["seqno"] == objs[-1]["seqno"] + 1
    seqs = [o["seqno"] for o in objs + more]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_tail_prints_events_exactly_and_filters(chain, jq):
    epoch = chain.status()["epoch"]
    out = _run_tail([chain.url, "--channel", "blocks", "--events", "BlockStart,TPS", "--from-cursor", f"{epoch}:0",
                     "--limit", "2"], through_jq=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    events = [line for line in lines if '"event_name"' in line]
    meta = [json.loads(line) for line in lines if '"event_name"' not in line]
    assert len(events) >= 2 and all(json.loads(e)["event_name"] == "BlockStart" for e in events)
    # Byte-exact: the server's compact encoding, starting with event_name (docs/events.md order).
    assert all(e.startswith('{"event_name":"BlockStart","block_number":') for e in events)
    assert all(set(m) == {"server_seqno", "TPS"} for m in meta)


def test_tail_gap_goes_to_stderr(chain, jq):
    epoch = chain.status()["epoch"]
    out = _run_tail([chain.url, "--from-cursor", f"{epoch + 1}:5", "--events", "BlockStart", "--limit", "1"])
    assert out.returncode == 0, out.stderr
    assert "GAP reason=resume_failed" in out.stderr and "resume_reason=other_epoch" in out.stderr
    assert all("GAP" not in line for line in out.stdout.splitlines())


def test_tail_fails_clearly_on_a_non_ringgate_server(tmp_path):
    from conftest import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket
        import time

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        out = _run_tail([f"ws://127.0.0.1:{port}"], timeout=20, through_jq=False)
    finally:
        proc.terminate()
        proc.wait(5)
    assert out.returncode == 1
    assert "is this a ringgate gateway" in out.stderr and out.stdout == ""
