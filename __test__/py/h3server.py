#!/usr/bin/env python3
"""Small independent HTTP/3 test server (aioquic) for testing napi-h3's client.

Usage: h3server.py --port 0 --cert c.pem --key k.pem [--host 127.0.0.1]
Prints "LISTENING <port>" on stdout once bound, then serves until killed:

  GET  /                 200 "ok"
  GET  /hello            200 "hello from aioquic"
  GET  /bytes?n=N        200, N bytes, byte i = i % 251
  POST /echo             200, echoes the request body; request headers x-* are
                         echoed back as response headers; content-type echoed
  GET  /status/CODE      CODE, body "status CODE" (no body for 1xx/204/304)
  GET  /redirect?to=PATH 302, location: PATH
  anything else          404 "not found"
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from urllib.parse import parse_qs, urlsplit

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent, StreamReset

MAX_BYTES = 1 << 30


def deterministic_bytes(n: int) -> bytes:
    pattern = bytes(range(251))
    reps, rem = divmod(n, 251)
    return pattern * reps + pattern[:rem]


class Request:
    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body = bytearray()

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class H3ServerProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.h3: H3Connection | None = None
        self.requests: dict[int, Request] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self.h3 = H3Connection(self._quic)
        if isinstance(event, StreamReset):
            self.requests.pop(event.stream_id, None)
        if self.h3 is not None:
            for ev in self.h3.handle_event(event):
                self.h3_event(ev)

    def h3_event(self, ev: H3Event) -> None:
        if isinstance(ev, HeadersReceived):
            req = self.requests.get(ev.stream_id)
            if req is None:
                req = self.requests[ev.stream_id] = Request(ev.headers)
            # else: trailers, ignored
            if ev.stream_ended:
                self.respond(ev.stream_id)
        elif isinstance(ev, DataReceived):
            req = self.requests.get(ev.stream_id)
            if req is None:
                return
            req.body += ev.data
            if ev.stream_ended:
                self.respond(ev.stream_id)

    def send(self, sid: int, status: int, body: bytes = b"",
             headers: list[tuple[bytes, bytes]] | None = None) -> None:
        assert self.h3 is not None
        no_body = 100 <= status < 200 or status in (204, 304)
        hdrs = [(b":status", str(status).encode()), (b"server", b"aioquic-h3server")]
        hdrs += headers or []
        if not any(k == b"content-type" for k, _ in hdrs):
            hdrs.append((b"content-type", b"text/plain; charset=utf-8"))
        if no_body:
            body = b""
        else:
            hdrs.append((b"content-length", str(len(body)).encode()))
        try:
            self.h3.send_headers(sid, hdrs, end_stream=not body)
            if body:
                chunk = 65536
                for off in range(0, len(body), chunk):
                    self.h3.send_data(sid, body[off : off + chunk],
                                      end_stream=off + chunk >= len(body))
        except Exception as exc:  # stream stopped by peer etc.
            logging.info("send on %d failed: %r", sid, exc)
        self.transmit()

    def respond(self, sid: int) -> None:
        req = self.requests.pop(sid, None)
        if req is None:
            return
        method = (req.header(b":method") or b"").decode("latin-1")
        target = (req.header(b":path") or b"/").decode("latin-1")
        url = urlsplit(target)
        path, query = url.path, parse_qs(url.query)
        try:
            if path == "/" and method in ("GET", "HEAD"):
                self.send(sid, 200, b"ok")
            elif path == "/hello" and method in ("GET", "HEAD"):
                self.send(sid, 200, b"hello from aioquic")
            elif path == "/bytes" and method in ("GET", "HEAD"):
                n = int(query.get("n", ["0"])[0])
                if n < 0 or n > MAX_BYTES:
                    self.send(sid, 400, b"bad n")
                else:
                    self.send(sid, 200, deterministic_bytes(n),
                              [(b"content-type", b"application/octet-stream")])
            elif path == "/echo":
                extra = [(k, v) for k, v in req.headers if k.startswith(b"x-")]
                ct = req.header(b"content-type")
                if ct is not None:
                    extra.append((b"content-type", ct))
                extra.append((b"x-request-method", method.encode()))
                self.send(sid, 200, bytes(req.body), extra)
            elif path.startswith("/status/"):
                code = int(path[len("/status/"):])
                if not 100 <= code <= 999:
                    raise ValueError(code)
                self.send(sid, code, f"status {code}".encode())
            elif path == "/redirect":
                to = query.get("to", ["/"])[0]
                self.send(sid, 302, b"", [(b"location", to.encode("latin-1"))])
            else:
                self.send(sid, 404, b"not found")
        except ValueError:
            self.send(sid, 400, b"bad request")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--max-data", type=int, default=32 * 1024 * 1024,
                    help="connection flow-control window")
    ap.add_argument("--max-stream-data", type=int, default=16 * 1024 * 1024,
                    help="per-stream flow-control window")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr,
                        level=logging.INFO if args.verbose else logging.WARNING)

    cfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                            max_data=args.max_data, max_stream_data=args.max_stream_data)
    cfg.load_cert_chain(args.cert, args.key)
    server = await serve(args.host, args.port, configuration=cfg,
                         create_protocol=H3ServerProtocol)
    port = server._transport.get_extra_info("sockname")[1]
    print(f"LISTENING {port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:
            pass
    await stop.wait()
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
