"""permessage-deflate (RFC 7692) against the real ringgate binary over a ring written by
`ringgate write`: the `websockets` library's own negotiation and inflation, and a raw
socket client that reads the bytes on the wire and inflates each message with zlib alone
(no context kept between messages, as the server promises)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import time
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from conftest import Server, Writer

OFFER = "permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def deflate_server(ringgate_bin, workdir):
    """A synthetic chain served with --compression on (and one with it off, same ring)."""
    writer = Writer(ringgate_bin, workdir / "deflate.ring", 2000)
    on = off = None
    try:
        store = ("--resume-frames", "2000000", "--resume-mib", "256")
        on = Server(ringgate_bin, writer.ring, "--compression", "on", *store)
        off = Server(ringgate_bin, writer.ring, *store)
        for s in (on, off):
            s.wait_until(lambda st: st.get("server_seqno", 0) > 0, what="first frame")
        yield on, off
    finally:
        for s in (on, off):
            if s is not None:
                s.stop()
        writer.stop()


class RawClient:
    """A WebSocket client on a plain socket: sends the handshake (with or without an
    offer), keeps the response head and every frame's header bits and payload as sent."""

    def __init__(self, port: int, path: str, offer: str | None, key: str = "dGhlIHNhbXBsZSBub25jZQ=="):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        self.sock.sendall(
            (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head + b"\r\n\r\n"
        self.wire_bytes = 0
        self.plain_bytes = 0

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bool, bytes]:
        """(opcode, rsv1, payload inflated when rsv1 is set)."""
        b0, b1 = self._take(2)
        assert b0 & 0x80, "server frames are final"
        assert b0 & 0x30 == 0, "RSV2/RSV3 are never set"
        assert b1 & 0x80 == 0, "server frames are unmasked"
        n = b1 & 0x7F
        hl = 2
        if n == 126:
            (n,) = struct.unpack(">H", self._take(2))
            hl += 2
        elif n == 127:
            (n,) = struct.unpack(">Q", self._take(8))
            hl += 8
        payload = self._take(n)
        self.wire_bytes += hl + n
        rsv1 = bool(b0 & 0x40)
        if rsv1:
            # A fresh inflater for every message: the server takes no context over.
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        self.plain_bytes += len(payload) + (2 if len(payload) < 126 else 4 if len(payload) < 65536 else 10)
        return b0 & 0x0F, rsv1, payload

    def send_text(self, payload: bytes, compressed: bool) -> None:
        mask = os.urandom(4)
        b0 = 0x80 | 0x1 | (0x40 if compressed else 0)
        n = len(payload)
        head = bytes([b0, 0x80 | n]) if n < 126 else bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def close(self) -> None:
        self.sock.close()


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def data_items(frames: list[dict]) -> list:
    """The stream's data in order: each event of an Events frame, each meta frame whole."""
    out = []
    for f in frames:
        if "Events" in f:
            out.extend(f["Events"])
        elif not ({"Hello", "Resume", "Subscribed", "Heartbeat", "Error", "Warning"} & f.keys()):
            out.append(f)
    return out


def read_until(client: RawClient, seqno: int) -> tuple[list[dict], list[bool]]:
    frames, rsv1s = [], []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        op, rsv1, payload = client.frame()
        if op != 0x1:
            continue
        f = json.loads(payload)
        frames.append(f)
        rsv1s.append(rsv1)
        if f["server_seqno"] >= seqno and data_items([f]):
            return frames, rsv1s
    raise TimeoutError(f"never reached server_seqno {seqno}")


def test_compressed_stream_decodes_to_the_uncompressed_stream_and_is_smaller(deflate_server):
    on, _ = deflate_server
    st = on.status()
    start, epoch = st["server_seqno"], st["epoch"]
    on.wait_until(lambda s: s["server_seqno"] >= start + 3000, what="3000 more frames")
    path = f"/v1/ws?extended=1&epoch={epoch}&resume_from={start}"
    z = RawClient(on.port, path, OFFER)
    p = RawClient(on.port, path, None)
    try:
        assert b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; " \
               b"client_no_context_takeover\r\n" in z.head, z.head
        assert b"Sec-WebSocket-Extensions" not in p.head, p.head
        zf, zr = read_until(z, start + 2500)
        pf, pr = read_until(p, start + 2500)
    finally:
        z.close()
        p.close()
    assert all(zr), "every message to the deflate client is compressed"
    assert not any(pr), "no message to the plain client is"
    zi, pi = data_items(zf), data_items(pf)
    n = min(len(zi), len(pi))
    assert n >= 1000, (len(zi), len(pi))
    assert zi[:n] == pi[:n]
    ratio = z.plain_bytes / z.wire_bytes
    print(f"deflate wire ratio on the synthetic chain: {ratio:.2f} "
          f"({z.plain_bytes} B as text frames, {z.wire_bytes} B on the wire)")
    assert ratio > 2.0, ratio


def test_a_client_without_an_offer_gets_the_same_handshake_as_with_compression_off(deflate_server):
    on, off = deflate_server
    a = RawClient(on.port, "/v1/ws?extended=1", None)
    b = RawClient(off.port, "/v1/ws?extended=1", None)
    try:
        assert a.head == b.head
        for c in (a, b):
            op, rsv1, payload = c.frame()
            assert (op, rsv1) == (0x1, False)
            assert "Hello" in json.loads(payload)
    finally:
        a.close()
        b.close()


def test_compression_off_declines_the_offer(deflate_server):
    _, off = deflate_server
    c = RawClient(off.port, "/v1/ws", OFFER)
    try:
        assert b"Sec-WebSocket-Extensions" not in c.head
        assert c.frame()[1] is False
    finally:
        c.close()


def test_json_rpc_declines_the_offer_even_with_compression_on(deflate_server):
    on, _ = deflate_server
    c = RawClient(on.port, "/rpc", OFFER)
    try:
        assert c.head.startswith(b"HTTP/1.1 101"), c.head
        assert b"Sec-WebSocket-Extensions" not in c.head
    finally:
        c.close()


def test_websockets_library_negotiates_and_reads_the_stream(deflate_server):
    on, _ = deflate_server

    async def main():
        async with websockets.connect(f"{on.url}/v1/ws?extended=1") as ws:
            (ext,) = ws.protocol.extensions
            assert ext.name == "permessage-deflate"
            # Server to client and client to server: no context takeover, as answered.
            assert ext.remote_no_context_takeover and ext.local_no_context_takeover
            hello = json.loads(await ws.recv())
            assert "Hello" in hello
            # The library compresses what it sends: the server must inflate the subscribe.
            await ws.send(json.dumps({"subscribe": {"events": ["BlockStart", "TxnLog"]}}))
            seen = set()
            acked = False
            while not (acked and {"BlockStart", "TxnLog"} <= seen):
                f = json.loads(await asyncio.wait_for(ws.recv(), 10))
                acked |= "Subscribed" in f
                if acked:
                    seen |= {e["event_name"] for e in f.get("Events", [])}
            assert seen <= {"BlockStart", "TxnLog"}, seen

    asyncio.run(asyncio.wait_for(main(), 30))


def test_an_offer_with_a_small_server_window_is_declined_and_the_connection_works(deflate_server):
    on, _ = deflate_server

    async def main():
        factory = ClientPerMessageDeflateFactory(server_max_window_bits=10)
        async with websockets.connect(f"{on.url}/v1/ws", extensions=[factory], compression=None) as ws:
            assert ws.protocol.extensions == []
            assert "Hello" in json.loads(await ws.recv())

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_decompression_bomb_closes_1009_and_a_neighbour_keeps_streaming(deflate_server):
    on, _ = deflate_server
    neighbour = RawClient(on.port, "/v1/ws?extended=1", OFFER)
    bomber = RawClient(on.port, "/v1/ws?extended=1", OFFER)
    try:
        bomb = deflate(b" " * (4 << 20))
        assert len(bomb) < 60 * 1024, len(bomb)
        bomber.send_text(bomb, compressed=True)
        deadline = time.monotonic() + 10
        while True:
            op, _, payload = bomber.frame()
            if op == 0x8:
                assert struct.unpack(">H", payload[:2])[0] == 1009, payload
                break
            assert time.monotonic() < deadline
        # A compressed subscribe from the neighbour is still read and answered.
        neighbour.send_text(deflate(json.dumps({"subscribe": {"events": ["BlockStart"]}}).encode()), True)
        deadline = time.monotonic() + 10
        while True:
            op, rsv1, payload = neighbour.frame()
            if op == 0x1 and "Subscribed" in json.loads(payload):
                assert rsv1
                break
            assert time.monotonic() < deadline
    finally:
        neighbour.close()
        bomber.close()
