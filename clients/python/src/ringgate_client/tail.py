"""``ringgate-tail``: print a ringgate stream as JSON lines.

Output contract:

* stdout: every event as one line, exactly the event object the server sent (``event_name``,
  ``payload``, ``seqno``, ...). With ``--meta`` (or when ``--events`` names a meta item)
  meta frames are printed too, as the server's whole frame (``{"server_seqno":N,"TPS":n}``),
  so they are told apart by having no ``event_name``.
* stderr: status (connected, resumed, reconnecting, backpressure) and every gap, one line
  each, prefixed ``ringgate-tail:``.
* ``--cursor-file F``: the cursor ``EPOCH:SEQNO`` is written to F (atomically) after every
  frame; on start the stream resumes from it, so a restarted tail prints no event twice and
  skips none without a gap line. (A crash in the middle of a frame can repeat that frame's
  printed events: the cursor names whole frames.)
* Exit status: 0 on --limit / --duration / Ctrl-C / closed stdout, 1 on a fatal error
  (refused token, not a ringgate server, rejected subscription), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from . import __version__
from .client import CHANNELS, STAGES, connect
from .cursor import Cursor
from .errors import RinggateError
from .filters import META_ITEMS, normalize_events
from .types import (
    Connected,
    ContentionData,
    Event,
    Gap,
    Lifecycle,
    Reconnecting,
    Resumed,
    Shed,
    TopAccesses,
    Tps,
    Warning,
)

_META_KEY = {Tps: "TPS", ContentionData: "ContentionData", TopAccesses: "TopAccesses", Lifecycle: "Lifecycle"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ringgate-tail",
        description="Stream events from a ringgate gateway as JSON lines (stdout); status and gaps go to stderr.",
    )
    p.add_argument("url", nargs="?", default=os.environ.get("RINGGATE_URL", "ws://127.0.0.1:8443"),
                   help="gateway base URL (ws://host:port) or a full /v1/ws path [env RINGGATE_URL, default %(default)s]")
    p.add_argument("--channel", choices=CHANNELS, default=None, help="channel (/v1/ws/<channel>); default all")
    p.add_argument("--events", default=None,
                   help="comma-separated event names and meta items (TxnLog,BlockStart,TPS,...)")
    p.add_argument("--min-stage", choices=STAGES, default=None, help="deliver events once their block reached this stage")
    p.add_argument("--filter", action="append", default=[], metavar="JSON",
                   help='a filter spec, e.g. \'{"event_name":"TxnLog","field_filters":[{"field":"address",'
                        '"filter":{"values":["0x..."]}}]}\' (repeatable)')
    p.add_argument("--token", default=os.environ.get("RINGGATE_TOKEN"),
                   help="access token, sent as 'Authorization: Bearer TOKEN' [env RINGGATE_TOKEN]")
    p.add_argument("--cursor-file", type=Path, default=None,
                   help="persist the cursor here after every frame and resume from it on start")
    p.add_argument("--from-cursor", default=None, metavar="EPOCH:SEQNO", help="resume from this cursor")
    p.add_argument("--meta", action="store_true", help="also print meta frames (TPS, ContentionData, ...) on stdout")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="exit after N events (at the end of the frame in progress, so the cursor stays exact)")
    p.add_argument("--duration", type=float, default=None, metavar="SECS", help="exit after SECS seconds")
    p.add_argument("--no-reconnect", action="store_true", help="exit on the first disconnect instead of resuming")
    p.add_argument("-q", "--quiet", action="store_true", help="only gaps and errors on stderr")
    p.add_argument("--version", action="version", version=f"ringgate-tail {__version__}")
    return p


def _status(msg: str) -> None:
    sys.stderr.write(f"ringgate-tail: {msg}\n")
    sys.stderr.flush()


def _write_cursor(path: Path, cursor: Cursor) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{cursor}\n")
    os.replace(tmp, path)


def _gap_text(g: Gap) -> str:
    parts = [f"GAP reason={g.reason}"]
    for k in ("from_seqno", "to_seqno", "ring_from_seqno", "ring_to_seqno", "block_number", "block_id"):
        v = getattr(g, k)
        if v is not None:
            parts.append(f"{k}={v}")
    if g.synthetic:
        parts.append(f"resume_reason={g.resume_reason} previous_cursor={g.previous_cursor}")
    parts.append(f"cursor={g.epoch}:{g.server_seqno}")
    return " ".join(parts)


async def _run(args: argparse.Namespace) -> int:
    events = normalize_events(args.events)
    show_meta = args.meta or bool(events and any(e in META_ITEMS for e in events))
    filters = []
    for f in args.filter:
        try:
            spec = json.loads(f)
        except ValueError as e:
            _status(f"--filter is not JSON: {e}")
            return 2
        filters.extend(spec if isinstance(spec, list) else [spec])

    start = None
    if args.from_cursor:
        start = Cursor.parse(args.from_cursor)
    elif args.cursor_file is not None and args.cursor_file.exists():
        text = args.cursor_file.read_text().strip()
        if text:
            start = Cursor.parse(text)
    if start is not None and not args.quiet:
        _status(f"resuming from cursor {start}")

    out = sys.stdout
    written = 0
    last_saved = None
    deadline = None if args.duration is None else time.monotonic() + args.duration
    client = connect(
        args.url, channel=args.channel, events=events, filters=filters or None,
        min_stage=args.min_stage, token=args.token, from_cursor=start,
        reconnect=not args.no_reconnect,
    )

    async def consume() -> None:
        nonlocal written, last_saved
        async with client:
            async for item in client:
                if isinstance(item, Event):
                    out.write(item.raw_json)
                    out.write("\n")
                    written += 1
                    if not item.last_in_frame:
                        continue
                    out.flush()
                    if args.limit is not None and written >= args.limit:
                        if args.cursor_file is not None and client.cursor is not None:
                            _write_cursor(args.cursor_file, client.cursor)
                        return
                elif isinstance(item, Gap):
                    _status(_gap_text(item))
                elif isinstance(item, tuple(_META_KEY)):
                    if show_meta:
                        out.write(json.dumps({"server_seqno": item.server_seqno, _META_KEY[type(item)]: item.raw},
                                             separators=(",", ":")))
                        out.write("\n")
                        out.flush()
                elif isinstance(item, Connected):
                    if not args.quiet:
                        _status(f"connected to {item.url} (server {item.server_version}, epoch {item.epoch}, "
                                f"channel {item.channel}, cursor {item.epoch}:{item.server_seqno})")
                elif isinstance(item, Resumed):
                    if not args.quiet or not item.recovered:
                        _status(f"resume mode={item.mode} reason={item.reason} recovered={item.recovered} "
                                f"from={item.from_seqno} to={item.to_seqno}")
                elif isinstance(item, Reconnecting):
                    if not args.quiet:
                        _status(f"reconnecting (attempt {item.attempt}) in {item.delay:.2f}s: {item.reason}")
                elif isinstance(item, Warning):
                    _status(f"BACKPRESSURE dropped={item.dropped} total_dropped={item.total_dropped} "
                            f"range={item.dropped_from_seqno}..{item.dropped_to_seqno}"
                            + (" (resuming to recover them)" if item.recovering else ""))
                elif isinstance(item, Shed):
                    _status(f"SHED lane={item.lane} dropped={item.dropped} total_shed={item.total_shed} "
                            f"range={item.from_seqno}..{item.to_seqno}"
                            + (" (resuming to recover them)" if item.recovering else ""))
                cur = client.cursor
                if args.cursor_file is not None and cur is not None and cur != last_saved:
                    _write_cursor(args.cursor_file, cur)
                    last_saved = cur

    try:
        if deadline is None:
            await consume()
        else:
            try:
                await asyncio.wait_for(consume(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        return 0
    except RinggateError as e:
        _status(f"error: {e}")
        return 1
    finally:
        try:
            out.flush()
        except (BrokenPipeError, ValueError):
            pass
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.limit is not None and args.limit <= 0:
        _status("--limit must be positive")
        return 2
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `ringgate-tail | head` exits quietly
    except (AttributeError, ValueError):  # pragma: no cover - not on this platform
        pass
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
