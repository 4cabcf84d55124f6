#!/usr/bin/env python3
"""Small independent HTTP/3 test server (aioquic) for testing napi-h3's client.

Usage: h3server.py --port 0 --cert c.pem --key k.pem [--host 127.0.0.1] [--webtransport]
Prints "LISTENING <port>" on stdout once bound, then serves until killed:

  GET  /                 200 "ok"
  GET  /hello            200 "hello from aioquic"
  GET  /bytes?n=N        200, N bytes, byte i = i % 251
  POST /echo             200, echoes the request body; request headers x-* are
                         echoed back as response headers; content-type echoed
  GET  /status/CODE      CODE, body "status CODE" (no body for 1xx/204/304)
  GET  /redirect?to=PATH 302, location: PATH
  GET  /wt/log           200, JSON list of the WebTransport events recorded so far
  anything else          404 "not found"

WebTransport (draft-02) echo mode: add --webtransport (sends SETTINGS
ENABLE_WEBTRANSPORT=1 + H3_DATAGRAM=1, max_datagram_frame_size 65536):

  CONNECT :protocol webtransport
    /wt/echo    200 (+ sec-webtransport-http3-draft: draft02). Datagrams echoed;
                client bidi streams echoed on the same stream (FIN on FIN);
                client uni streams read to FIN, then sent back on a new server uni
                stream + FIN; at accept one server bidi stream gets
                "hello from server" + FIN, and the client's answer on it (to FIN)
                is recorded in /wt/log as {"event": "server_bidi_reply"}.
    /wt/close   200, then at once CLOSE_WEBTRANSPORT_SESSION(7, "server-bye") + FIN
    /wt/reject  403
    other paths 404
  Application protocols (WT-Available-Protocols / WT-Protocol): a 200 answers with
  the first protocol offered, or with ?answer=NAME whatever was offered.
  A client's CLOSE_WEBTRANSPORT_SESSION capsule or FIN on the CONNECT stream is
  recorded ("close_received" / "session_fin") and answered with our FIN.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
from urllib.parse import parse_qs, urlsplit

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.h3.events import (DataReceived, DatagramReceived, H3Event, HeadersReceived,
                               WebTransportStreamDataReceived)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent, StreamReset

MAX_BYTES = 1 << 30

# WebTransport draft-02
CAPSULE_CLOSE_WT_SESSION = 0x2843
WT_ERROR_FIRST = 0x52E4A40FA8DB
WT_LOG: list[dict] = []  # served by GET /wt/log
WT_LOG_MAX = 10000


def wt_log(**event) -> None:
    WT_LOG.append(event)
    del WT_LOG[:-WT_LOG_MAX]
    logging.info("WT %s", json.dumps(event))


def wt_app_code(h3_code: int) -> int | None:
    if not WT_ERROR_FIRST <= h3_code <= WT_ERROR_FIRST + 0xFFFFFFFF + 0xFFFFFFFF // 0x1E:
        return None
    d = h3_code - WT_ERROR_FIRST
    return d - d // 0x1F


def close_session_capsule(code: int, reason: str) -> bytes:
    value = code.to_bytes(4, "big") + reason.encode("utf-8")
    return encode_uint_var(CAPSULE_CLOSE_WT_SESSION) + encode_uint_var(len(value)) + value


class WtSession:
    def __init__(self, conn: int, session_id: int, path: str) -> None:
        self.conn = conn
        self.session_id = session_id
        self.path = path
        self.capsule_buf = b""
        self.closed = False  # we sent our FIN (after a close from either side)
        self.hello_sid: int | None = None
        self.bufs: dict[int, bytearray] = {}  # client uni streams / hello-stream replies


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


def wt_protocol_answer(hdrs: dict[bytes, bytes]) -> bytes | None:
    """WT-Protocol for a session request (draft-ietf-webtrans-http3-15 section 3.4): the first
    String of WT-Available-Protocols (an RFC 9651 List), or the ?answer= query value as is."""
    query = parse_qs(urlsplit((hdrs.get(b":path") or b"/").decode("latin-1")).query)
    forced = query.get("answer")
    if forced:
        return ('"' + forced[0] + '"').encode("latin-1")
    offered = re.findall(rb'"((?:[^"\\]|\\.)*)"', hdrs.get(b"wt-available-protocols", b""))
    return b'"' + offered[0] + b'"' if offered else None


class H3ServerProtocol(QuicConnectionProtocol):
    webtransport = False  # set from --webtransport
    conn_counter = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.h3: H3Connection | None = None
        self.requests: dict[int, Request] = {}
        self.wt_sessions: dict[int, WtSession] = {}
        self.wt_pending: dict[int, list[H3Event]] = {}  # events for sessions not seen yet
        H3ServerProtocol.conn_counter += 1
        self.conn_id = H3ServerProtocol.conn_counter

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self.h3 = H3Connection(self._quic, enable_webtransport=self.webtransport)
        if isinstance(event, StreamReset):
            self.requests.pop(event.stream_id, None)
            if self.webtransport:
                self.wt_stream_reset(event.stream_id, event.error_code)
        if self.h3 is not None:
            for ev in self.h3.handle_event(event):
                self.h3_event(ev)

    def h3_event(self, ev: H3Event) -> None:
        if self.webtransport and self.wt_event(ev):
            return
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

    # -- WebTransport (draft-02) echo mode ---------------------------------

    def wt_event(self, ev: H3Event) -> bool:
        """Handle a WebTransport-related event; False: not ours, use the HTTP path."""
        assert self.h3 is not None
        if isinstance(ev, HeadersReceived):
            hdrs = dict(ev.headers)
            if (ev.stream_id in self.requests or ev.stream_id in self.wt_sessions
                    or hdrs.get(b":method") != b"CONNECT"
                    or hdrs.get(b":protocol") != b"webtransport"):
                return False
            self.wt_connect(ev.stream_id, hdrs)
            return True
        if isinstance(ev, DataReceived) and ev.stream_id in self.wt_sessions:
            self.wt_connect_data(self.wt_sessions[ev.stream_id], ev.data, ev.stream_ended)
            return True
        if isinstance(ev, DatagramReceived):
            sess = self.wt_sessions.get(ev.stream_id)
            if sess is None:
                self.wt_buffer(ev)
            elif sess.path == "/wt/echo" and not sess.closed:
                self.h3.send_datagram(ev.stream_id, ev.data)
                self.transmit()
            return True
        if isinstance(ev, WebTransportStreamDataReceived):
            self.wt_stream_data(ev)
            return True
        return False

    def wt_buffer(self, ev: H3Event) -> None:
        """A stream / datagram for a session not (yet) accepted: keep it until the
        CONNECT is handled (it may arrive first), then replay or drop it."""
        session_id = ev.session_id if isinstance(ev, WebTransportStreamDataReceived) else ev.stream_id
        pending = self.wt_pending.setdefault(session_id, [])
        if len(pending) < 1000:
            pending.append(ev)

    def wt_connect(self, sid: int, hdrs: dict[bytes, bytes]) -> None:
        self.wt_accept(sid, hdrs)
        pending = self.wt_pending.pop(sid, [])
        if pending:
            wt_log(event="buffered_replayed", conn=self.conn_id, session_id=sid,
                   count=len(pending), accepted=sid in self.wt_sessions)
        if sid in self.wt_sessions:
            for ev in pending:
                self.wt_event(ev)

    def wt_accept(self, sid: int, hdrs: dict[bytes, bytes]) -> None:
        assert self.h3 is not None
        path = urlsplit((hdrs.get(b":path") or b"/").decode("latin-1")).path
        wt_log(event="connect", conn=self.conn_id, session_id=sid, path=path,
               draft02=hdrs.get(b"sec-webtransport-http3-draft02", b"").decode("latin-1"),
               origin=hdrs.get(b"origin", b"").decode("latin-1"))
        if path == "/wt/reject":
            self.send(sid, 403, b"rejected")
            return
        if path not in ("/wt/echo", "/wt/close"):
            self.send(sid, 404, b"not found")
            return
        sess = self.wt_sessions[sid] = WtSession(self.conn_id, sid, path)
        answer = wt_protocol_answer(hdrs)
        self.h3.send_headers(sid, [(b":status", b"200"), (b"server", b"aioquic-h3server"),
                                   (b"sec-webtransport-http3-draft", b"draft02")]
                             + ([(b"wt-protocol", answer)] if answer else []),
                             end_stream=False)
        if path == "/wt/echo":
            hello = self.h3.create_webtransport_stream(sid, is_unidirectional=False)
            # aioquic keeps no receive state for a WT bidi stream it opened and
            # would parse the client's answer as HTTP/3 frames: mark it as WT.
            with self.h3._get_or_create_stream(hello) as stream:
                stream.frame_type = FrameType.WEBTRANSPORT_STREAM
                stream.session_id = sid
            self._quic.send_stream_data(hello, b"hello from server", True)
            sess.hello_sid = hello
        else:
            self.h3.send_data(sid, close_session_capsule(7, "server-bye"), end_stream=True)
            sess.closed = True
            wt_log(event="close_sent", conn=self.conn_id, session_id=sid, code=7,
                   reason="server-bye")
        self.transmit()

    def wt_connect_data(self, sess: WtSession, data: bytes, ended: bool) -> None:
        sess.capsule_buf += data
        buf = Buffer(data=sess.capsule_buf)
        used = 0
        while not buf.eof():
            try:
                ctype = buf.pull_uint_var()
                length = buf.pull_uint_var()
                if buf.capacity - buf.tell() < length:
                    break
                value = buf.pull_bytes(length)
            except BufferReadError:
                break
            used = buf.tell()
            if ctype == CAPSULE_CLOSE_WT_SESSION:
                wt_log(event="close_received", conn=self.conn_id, session_id=sess.session_id,
                       code=int.from_bytes(value[:4], "big") if len(value) >= 4 else None,
                       reason=value[4:].decode("utf-8", errors="replace"))
                self.wt_finish(sess)
            else:
                wt_log(event="capsule", conn=self.conn_id, session_id=sess.session_id,
                       type=ctype, length=length)
        sess.capsule_buf = sess.capsule_buf[used:]
        if ended:
            wt_log(event="session_fin", conn=self.conn_id, session_id=sess.session_id,
                   unparsed=len(sess.capsule_buf))
            self.wt_finish(sess)

    def wt_finish(self, sess: WtSession) -> None:
        """The session is over: FIN our side of the CONNECT stream (once)."""
        if sess.closed:
            return
        sess.closed = True
        try:
            self._quic.send_stream_data(sess.session_id, b"", True)
        except Exception as exc:
            logging.info("FIN on session %d failed: %r", sess.session_id, exc)
        self.transmit()

    def wt_stream_data(self, ev: WebTransportStreamDataReceived) -> None:
        assert self.h3 is not None
        sid = ev.stream_id
        sess = self.wt_sessions.get(ev.session_id)
        if sess is None:
            self.wt_buffer(ev)
            return
        if sid % 4 == 0:  # client bidi: echo on the same stream
            try:
                self._quic.send_stream_data(sid, ev.data, ev.stream_ended)
            except Exception as exc:
                logging.info("echo on %d failed: %r", sid, exc)
            if ev.stream_ended:
                wt_log(event="bidi_echoed", conn=self.conn_id, session_id=sess.session_id,
                       stream_id=sid)
        else:
            buf = sess.bufs.setdefault(sid, bytearray())
            buf += ev.data
            if not ev.stream_ended:
                return
            data = bytes(sess.bufs.pop(sid))
            if sid % 4 == 2:  # client uni: send it back on a new server uni stream
                back = self.h3.create_webtransport_stream(sess.session_id, is_unidirectional=True)
                self._quic.send_stream_data(back, data, True)
                wt_log(event="uni_echoed", conn=self.conn_id, session_id=sess.session_id,
                       stream_id=sid, echo_stream_id=back, bytes=len(data))
            elif sid == sess.hello_sid:
                wt_log(event="server_bidi_reply", conn=self.conn_id,
                       session_id=sess.session_id, stream_id=sid,
                       text=data.decode("utf-8", errors="replace"))
        self.transmit()

    def wt_stream_reset(self, sid: int, code: int) -> None:
        sess = self.wt_sessions.get(sid)
        if sess is not None:
            wt_log(event="session_reset", conn=self.conn_id, session_id=sid, code=code)
            sess.closed = True
            return
        # called before aioquic's H3 layer sees the reset, so its stream state is still there
        h3s = self.h3._stream.get(sid) if self.h3 is not None else None
        session_id = getattr(h3s, "session_id", None)
        if session_id is not None:
            wt_log(event="stream_reset", conn=self.conn_id, session_id=session_id,
                   stream_id=sid, code=code, app_code=wt_app_code(code))
            for s in self.wt_sessions.values():
                s.bufs.pop(sid, None)

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
            elif path == "/wt/log" and method in ("GET", "HEAD"):
                self.send(sid, 200, json.dumps(WT_LOG).encode(),
                          [(b"content-type", b"application/json")])
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
    ap.add_argument("--webtransport", action="store_true",
                    help="WebTransport draft-02 echo mode (see above)")
    ap.add_argument("--max-datagram-frame-size", type=int, default=65536,
                    help="max_datagram_frame_size transport parameter with --webtransport")
    ap.add_argument("--max-udp-payload", type=int, default=None,
                    help="aioquic max_datagram_size (default 1200); raise it to echo "
                         "datagrams over ~1150 bytes")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr,
                        level=logging.INFO if args.verbose else logging.WARNING)

    cfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                            max_data=args.max_data, max_stream_data=args.max_stream_data)
    if args.max_udp_payload:
        cfg.max_datagram_size = args.max_udp_payload
    if args.webtransport:
        cfg.max_datagram_frame_size = args.max_datagram_frame_size
        H3ServerProtocol.webtransport = True
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
