#!/usr/bin/env python3
"""Independent HTTP/3 test client (aioquic) for the napi-h3 test suite.

Prints exactly ONE JSON object on stdout.  Exit status:
  0  the scenario ran (whatever the server answered, reset or closed)
  2  usage error or the initial QUIC/TLS handshake failed (JSON has "error")
  3  hard watchdog fired (JSON has "error")
  1  internal error of this script (JSON has "error")

See README.md next to this file for the subcommands and output shapes.

wt: a WebTransport (draft-02, as Chromium speaks it) session; self-test against
`h3server.py --webtransport`.
  h3client.py wt --port P [--path /wt/echo] [--datagrams N --datagram-size 64
      --datagram-interval-ms 0 --datagram-wait 2] [--bidi-bytes B] [--uni-bytes B]
      [--server-bidi] [--close-code C --close-reason R] [--expect-close]
      [--concurrent-sessions K] [--origin O] [--header 'n: v']... [--followup]
  Output: status, session_id, response_headers, connect_fin, capsules[],
  datagrams{sent,received,mismatched,duplicates,...}, bidi{bytes,recv_bytes,
  sent_sha,recv_sha,match,fin,reset}, uni{... echo_stream_id}, server_bidi{text,
  fin,reply,reply_acked}, close{sent,server_fin | received{code,reason},fin},
  errors[], server settings, close keys.  An op not asked for is null; a non-2xx
  answer gives status + body_text and nothing else.  K > 1: sessions[] (each of
  that shape), statuses[], ok_sessions, errors[].  Waits: the CONNECT answer and
  the closes are bounded by --timeout; stream echoes give up after --timeout
  without progress.  Datagrams over ~1150 bytes need --max-udp-payload on both ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import ssl
import sys
import time
import traceback
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, encode_uint_var
from aioquic.h3.connection import H3_ALPN, ErrorCode as H3ErrorCode, H3Connection, Setting
from aioquic.h3.events import (DataReceived, DatagramReceived, HeadersReceived,
                               WebTransportStreamDataReceived)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (ConnectionTerminated, DatagramFrameReceived, StreamReset,
                                 QuicEvent)

try:  # present in aioquic >= 0.9.x
    from aioquic.quic.events import StopSendingReceived
except ImportError:  # pragma: no cover
    StopSendingReceived = None  # type: ignore

try:
    from aioquic.quic.packet import QuicErrorCode
except ImportError:  # pragma: no cover
    QuicErrorCode = None  # type: ignore

H3_REQUEST_CANCELLED = 0x10C


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def error_name(code: int | None, transport: bool = False) -> str | None:
    """Name an error code: HTTP/3 (application) codes unless transport=True."""
    if code is None:
        return None
    enums = (QuicErrorCode, H3ErrorCode) if transport else (H3ErrorCode, QuicErrorCode)
    for enum in enums:
        if enum is None:
            continue
        try:
            return enum(code).name
        except ValueError:
            pass
    if transport and 0x100 <= code <= 0x1FF:
        return f"CRYPTO_ERROR(tls alert {code - 0x100})"
    return None


def deterministic_bytes(n: int) -> bytes:
    pattern = bytes(range(251))
    reps, rem = divmod(n, 251)
    return pattern * reps + pattern[:rem]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b2s(b: bytes) -> str:
    return b.decode("latin-1")


def parse_header_arg(s: str) -> tuple[str, str]:
    """'name: value' -> (name, value). Pseudo headers (':path: /x') allowed."""
    start = 1 if s.startswith(":") else 0
    idx = s.find(":", start)
    if idx < 0:
        raise ValueError(f"bad --header {s!r}, expected 'name: value'")
    name = s[:idx].strip()
    value = s[idx + 1 :]
    if value.startswith(" "):
        value = value[1:]
    return name, value


def qpack_int(value: int, prefix_bits: int, first_byte_flags: int) -> bytes:
    """RFC 7541 5.1 prefixed integer."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def qpack_literal_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    """QPACK field section using only 'literal field line with literal name'
    (no static/dynamic table, no Huffman).  Valid for any decoder and free of
    pylsqpack's 64 KiB value limit."""
    out = bytearray(b"\x00\x00")  # Required Insert Count = 0, Delta Base = 0
    for name, value in headers:
        out += qpack_int(len(name), 3, 0x20)  # 001 N=0 H=0 + 3-bit name length
        out += name
        out += qpack_int(len(value), 7, 0x00)  # H=0 + 7-bit value length
        out += value
    return bytes(out)


def h3_frame(frame_type: int, payload: bytes) -> bytes:
    return encode_uint_var(frame_type) + encode_uint_var(len(payload)) + payload


class ConnectFailed(Exception):
    pass


# --------------------------------------------------------------------------
# per-stream state + protocol
# --------------------------------------------------------------------------


class StreamState:
    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.informational: list[int] = []
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.body = bytearray()
        self.ended = False  # response complete (FIN seen by H3 layer)
        self.reset_code: int | None = None  # server RESET_STREAM
        self.stop_sending_code: int | None = None  # server STOP_SENDING
        self.done = asyncio.Event()  # ended, reset, or connection gone
        self.started = time.monotonic()
        self.finished_at: float | None = None

    @property
    def status(self) -> int | None:
        if self.headers is None:
            return None
        for k, v in self.headers:
            if k == b":status":
                try:
                    return int(v)
                except ValueError:
                    return None
        return None

    def mark_done(self) -> None:
        if self.finished_at is None:
            self.finished_at = time.monotonic()
        self.done.set()


class WtStream:
    """A WebTransport stream as aioquic reports it (0x41 bidi / 0x54 uni prefix stripped)."""

    def __init__(self, stream_id: int, session_id: int) -> None:
        self.stream_id = stream_id
        self.session_id = session_id
        self.data = bytearray()
        self.ended = False  # FIN seen


class DatagramH3Connection(H3Connection):
    """H3Connection that can advertise SETTINGS_H3_DATAGRAM=1 (RFC 9297) on its own.

    aioquic only sends H3_DATAGRAM together with ENABLE_WEBTRANSPORT
    (enable_webtransport=True); this subclass adds the datagram setting alone.
    aioquic parses incoming DATAGRAM frames as HTTP/3 datagrams whatever was
    negotiated."""

    def __init__(self, quic: Any, h3_datagram: bool = False,
                 enable_webtransport: bool = False, safari: bool = False,
                 draft15: bool = False) -> None:
        self._h3_datagram_setting = h3_datagram  # read by _get_local_settings()
        self._safari = safari
        self._draft15 = draft15
        super().__init__(quic, enable_webtransport=enable_webtransport)

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        if self._h3_datagram_setting:
            settings[Setting.H3_DATAGRAM] = 1
        if self._safari:
            # Safari speaks the newer drafts only: no draft-02 ENABLE_WEBTRANSPORT, no
            # ENABLE_CONNECT_PROTOCOL (a server setting), its own max-sessions and limits.
            settings.pop(Setting.ENABLE_WEBTRANSPORT, None)
            settings.pop(Setting.ENABLE_CONNECT_PROTOCOL, None)
            settings.update(SAFARI_CLIENT_SETTINGS)
        if self._draft15:
            # draft-ietf-webtrans-http3-15 §3.1 / §7.1: a draft client sends SETTINGS_WT_ENABLED
            # and, to turn flow control on (§5.1), non-zero initial limits.
            settings.pop(Setting.ENABLE_WEBTRANSPORT, None)
            settings.pop(Setting.ENABLE_CONNECT_PROTOCOL, None)
            settings.update(DRAFT15_CLIENT_SETTINGS)
            if self._draft15 is not True:
                settings[WT_INITIAL_MAX_DATA] = self._draft15
        return settings


# What we take Safari 26.4+ to send and need (README "Safari"; from public reports, not seen
# here): the newer drafts' settings, :protocol = webtransport, no draft-02 header.
WT_MAX_SESSIONS_DRAFT07 = 0xC671706A  # draft-ietf-webtrans-http3-07..12
WT_MAX_SESSIONS = 0x14E9CD29  # draft-13/14
WT_INITIAL_MAX_DATA = 0x2B61
WT_INITIAL_MAX_STREAMS_UNI = 0x2B64
WT_INITIAL_MAX_STREAMS_BIDI = 0x2B65
SAFARI_CLIENT_SETTINGS = {
    WT_MAX_SESSIONS: 1,
    WT_INITIAL_MAX_DATA: 1 << 20,
    WT_INITIAL_MAX_STREAMS_UNI: 100,
    WT_INITIAL_MAX_STREAMS_BIDI: 100,
}


# draft-ietf-webtrans-http3-15/16 §9.2, written from the draft text (not an independent
# implementation): SETTINGS_WT_ENABLED and the initial flow-control limits.
WT_ENABLED = 0x2C7CF000
DRAFT15_CLIENT_SETTINGS = {
    WT_ENABLED: 1,
    WT_INITIAL_MAX_DATA: 1 << 20,
    WT_INITIAL_MAX_STREAMS_UNI: 100,
    WT_INITIAL_MAX_STREAMS_BIDI: 100,
}
# draft-15 §9.5: the session flow-control error.
WT_FLOW_CONTROL_ERROR = 0x045D4487


def safari_would_refuse(settings: dict[int, int]) -> str | None:
    """Why Safari would abandon a session given the server's SETTINGS (None: it would not):
    a max-sessions setting (either codepoint) must be >= 1, and above 1 the three initial
    flow-control limits must be there too (quic-go/webtransport-go #261, #355)."""
    max_sessions = settings.get(WT_MAX_SESSIONS, settings.get(WT_MAX_SESSIONS_DRAFT07))
    if not max_sessions:
        return "no SETTINGS_WT_MAX_SESSIONS >= 1 (0x14e9cd29 or 0xc671706a)"
    if max_sessions > 1:
        missing = [hex(k) for k in (WT_INITIAL_MAX_DATA, WT_INITIAL_MAX_STREAMS_UNI,
                                    WT_INITIAL_MAX_STREAMS_BIDI) if not settings.get(k)]
        if missing:
            return f"WT_MAX_SESSIONS {max_sessions} > 1 without {', '.join(missing)}"
    return None


class H3ClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, h3_datagram: bool = False, webtransport: bool = False,
                 raw_datagrams: bool = False, safari: bool = False, draft15: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = DatagramH3Connection(self._quic, h3_datagram=h3_datagram,
                                       enable_webtransport=webtransport, safari=safari,
                                       draft15=draft15)
        # raw_datagrams: QUIC DATAGRAM frames are recorded as they are and not
        # given to the HTTP/3 layer (which would parse a quarter stream id).
        self.raw_datagrams = raw_datagrams
        self.quic_datagrams: list[bytes] = []  # every DatagramFrameReceived payload
        self.h3_datagrams: list[tuple[int, bytes]] = []  # H3 DatagramReceived (stream_id, data)
        self.streams: dict[int, StreamState] = {}
        self.wt_streams: dict[int, WtStream] = {}  # WebTransport streams (both directions)
        self.terminated: dict[str, Any] | None = None
        self.closed_evt = asyncio.Event()
        self.activity = asyncio.Event()
        self.local_close: dict[str, Any] | None = None
        # Record closes initiated on our side (H3 layer protocol errors, QUIC
        # layer errors, our own close()) to tell them from the peer's.
        quic = self._quic
        orig_close = quic.close

        def close_wrapper(error_code: int = 0, frame_type: int | None = None,
                          reason_phrase: str = "") -> None:
            if self.local_close is None and getattr(quic, "_close_event", None) is None:
                self.local_close = {"error_code": int(error_code),
                                    "frame_type": frame_type,
                                    "reason": reason_phrase}
            orig_close(error_code=error_code, frame_type=frame_type,
                       reason_phrase=reason_phrase)

        quic.close = close_wrapper  # type: ignore[method-assign]

    # -- state
    def state(self, stream_id: int) -> StreamState:
        st = self.streams.get(stream_id)
        if st is None:
            st = self.streams[stream_id] = StreamState(stream_id)
        return st

    @property
    def is_closed(self) -> bool:
        return self.terminated is not None or self.local_close is not None

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)
        self.activity.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamReset):
            st = self.state(event.stream_id)
            st.reset_code = event.error_code
            st.mark_done()
        elif StopSendingReceived is not None and isinstance(event, StopSendingReceived):
            st = self.state(event.stream_id)
            st.stop_sending_code = event.error_code
        elif isinstance(event, ConnectionTerminated):
            if event.reason_phrase == "Idle timeout" and self.local_close is None:
                initiator = "idle_timeout"
            elif self.local_close is not None:
                initiator = "local"
            else:
                initiator = "peer"
            self.terminated = {
                "error_code": event.error_code,
                "error_name": error_name(event.error_code,
                                         transport=event.frame_type is not None),
                "frame_type": event.frame_type,
                "reason": event.reason_phrase,
                "initiator": initiator,
            }
            for st in self.streams.values():
                st.mark_done()
            self.closed_evt.set()
        elif isinstance(event, DatagramFrameReceived):
            self.quic_datagrams.append(bytes(event.data))
            if self.raw_datagrams:
                self.activity.set()
                return

        for ev in self.h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                if ev.push_id is not None:
                    continue
                st = self.state(ev.stream_id)
                status = None
                for k, v in ev.headers:
                    if k == b":status":
                        try:
                            status = int(v)
                        except ValueError:
                            status = None
                if st.headers is None:
                    if status is not None and 100 <= status < 200:
                        st.informational.append(status)
                    else:
                        st.headers = list(ev.headers)
                else:
                    st.trailers = list(ev.headers)
                if ev.stream_ended:
                    st.ended = True
                    st.mark_done()
            elif isinstance(ev, DataReceived):
                if ev.push_id is not None:
                    continue
                st = self.state(ev.stream_id)
                st.body += ev.data
                if ev.stream_ended:
                    st.ended = True
                    st.mark_done()
            elif isinstance(ev, DatagramReceived):
                self.h3_datagrams.append((ev.stream_id, bytes(ev.data)))
            elif isinstance(ev, WebTransportStreamDataReceived):
                ws = self.wt_streams.get(ev.stream_id)
                if ws is None:
                    ws = self.wt_streams[ev.stream_id] = WtStream(ev.stream_id, ev.session_id)
                ws.data += ev.data
                if ev.stream_ended:
                    ws.ended = True
        # an H3-layer protocol error makes h3 close the connection locally
        self.activity.set()

    # -- info helpers
    def server_settings(self) -> dict[str, int] | None:
        s = self.h3.received_settings
        if s is None:
            return None
        out = {}
        for k, v in s.items():
            try:
                from aioquic.h3.connection import Setting

                name = Setting(k).name
            except Exception:
                name = hex(k)
            out[name] = v
        return out

    def peer_max_datagram_frame_size(self) -> int | None:
        """The peer's max_datagram_frame_size transport parameter (None: not sent)."""
        v = getattr(self._quic, "_remote_max_datagram_frame_size", None)
        return int(v) if v is not None else None

    def datagrams_unsent(self) -> int:
        """DATAGRAM frames still queued in aioquic (e.g. too large for a packet)."""
        try:
            return len(self._quic._datagrams_pending)
        except Exception:
            return 0

    def stream_bytes_sent(self, stream_id: int, written: int | None = None) -> int | None:
        """Highest stream offset transmitted (what flow control let through).
        If aioquic already discarded the finished stream, everything written
        went out, so return `written`."""
        stream = self._quic._streams.get(stream_id)
        if stream is not None:
            return int(stream.sender.highest_offset)
        try:
            if self._quic._stream_is_discarded(stream_id):
                return written
        except Exception:
            pass
        return None

    def stream_blocked(self, stream_id: int) -> bool:
        stream = self._quic._streams.get(stream_id)
        return bool(stream is not None and stream.is_blocked)

    def peer_max_stream_data(self, stream_id: int) -> int | None:
        try:
            return int(self._quic._streams[stream_id].max_stream_data_remote)
        except Exception:
            return None

    def close_info(self) -> dict[str, Any]:
        t = self.terminated
        if t is None and self.local_close is not None:
            t = {"error_code": self.local_close["error_code"],
                 "error_name": error_name(self.local_close["error_code"],
                                          transport=self.local_close["frame_type"] is not None),
                 "frame_type": self.local_close["frame_type"],
                 "reason": self.local_close["reason"],
                 "initiator": "local"}
        return {
            "connection_closed": t is not None,
            "error_code": t["error_code"] if t else None,
            "error_name": t["error_name"] if t else None,
            "reason": t["reason"] if t else None,
            "close_initiator": t["initiator"] if t else None,
        }


# --------------------------------------------------------------------------
# connection management
# --------------------------------------------------------------------------


def make_config(args: argparse.Namespace) -> QuicConfiguration:
    cfg = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        server_name=args.server_name,
        max_data=32 * 1024 * 1024,
        max_stream_data=16 * 1024 * 1024,
        idle_timeout=max(30.0, args.timeout * 3),
    )
    if getattr(args, "quic_datagrams", False):
        cfg.max_datagram_frame_size = args.max_datagram_frame_size
    if getattr(args, "max_udp_payload", None):
        cfg.max_datagram_size = args.max_udp_payload
    if args.certfile:
        # Mutual TLS: the client certificate the server asked for.
        cfg.load_cert_chain(args.certfile, args.keyfile)
    if args.secrets_log:
        cfg.secrets_log_file = open(args.secrets_log, "a")
    if args.verify:
        cfg.verify_mode = ssl.CERT_REQUIRED
        if args.cafile:
            cfg.load_verify_locations(args.cafile)
    else:
        cfg.verify_mode = ssl.CERT_NONE
    return cfg


@contextlib.asynccontextmanager
async def open_conn(args: argparse.Namespace, ticket: Any = None, on_ticket: Any = None,
                    wait: bool = True):
    """A connection; `ticket` resumes a session (0-RTT when it allows early data),
    `on_ticket` receives the server's session tickets, and with wait=False the protocol is
    handed over right after the first flight, so what is sent next goes out in 0-RTT."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(args.host, args.port, type=socket.SOCK_DGRAM), args.timeout
        )
    except Exception as exc:
        raise ConnectFailed(f"resolve {args.host}: {exc!r}") from exc
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(("::", 0, 0, 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
    except Exception:
        sock.close()
        raise
    from aioquic.quic.connection import QuicConnection

    cfg = make_config(args)
    cfg.session_ticket = ticket
    quic = QuicConnection(configuration=cfg, session_ticket_handler=on_ticket)
    transport, proto = await loop.create_datagram_endpoint(
        lambda: H3ClientProtocol(quic,
                                 h3_datagram=getattr(args, "h3_datagram_setting", False),
                                 webtransport=getattr(args, "webtransport_setting", False),
                                 raw_datagrams=getattr(args, "raw_datagrams", False),
                                 safari=getattr(args, "safari", False),
                                 draft15=(getattr(args, "initial_max_data", None)
                                          or getattr(args, "draft15", False))),
        sock=sock
    )
    connected = False
    try:
        proto.connect(addr)
        try:
            if wait:
                await asyncio.wait_for(proto.wait_connected(), args.timeout)
            connected = True
        except (asyncio.TimeoutError, ConnectionError) as exc:
            info = proto.terminated
            raise ConnectFailed(
                f"handshake failed: {type(exc).__name__}"
                + (f" (close {info})" if info else "")
            ) from exc
        yield proto
    finally:
        try:
            proto.close()
            if connected:
                await asyncio.wait_for(proto.wait_closed(), 1.0)
        except Exception:
            pass
        transport.close()


async def wait_until(proto: H3ClientProtocol, pred, deadline: float, poll: float = 0.05) -> bool:
    """Wait until pred() is true or the monotonic deadline passes."""
    while True:
        if pred():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        proto.activity.clear()
        try:
            await asyncio.wait_for(proto.activity.wait(), min(remaining, poll))
        except asyncio.TimeoutError:
            pass


async def wait_settings(proto: H3ClientProtocol, timeout: float) -> None:
    await wait_until(proto, lambda: proto.h3.received_settings is not None or proto.is_closed,
                     time.monotonic() + timeout)


# --------------------------------------------------------------------------
# requests
# --------------------------------------------------------------------------


def build_headers(args: argparse.Namespace, method: str, path: str,
                  extra: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    pseudo = {
        ":method": method,
        ":scheme": "https",
        ":authority": args.authority or f"localhost:{args.port}",
        ":path": path,
    }
    regular: list[tuple[str, str]] = []
    for name, value in extra:
        if name.startswith(":"):
            pseudo[name] = value
        else:
            regular.append((name if getattr(args, "keep_header_case", False) else name.lower(), value))
    out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pseudo.items()]
    out += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in regular]
    return out


def stream_result(proto: H3ClientProtocol | None, st: StreamState | None,
                  error: str | None = None, **extra: Any) -> dict[str, Any]:
    if st is None:
        res = {"status": None, "headers": [], "body_len": 0,
               "body_sha256": sha256_hex(b""), "body_text": None,
               "stream_reset": None, "stop_sending": None, "complete": False,
               "error": error or "not_sent"}
        res.update(extra)
        return res
    body = bytes(st.body)
    try:
        text: str | None = body.decode("utf-8")[:4096]
    except UnicodeDecodeError:
        text = None
    if error is None:
        if st.reset_code is not None:
            error = "stream_reset"
        elif st.ended:
            error = None
        elif proto is not None and proto.is_closed:
            error = "connection_closed"
        else:
            error = "timeout"
    res = {
        "status": st.status,
        "headers": [[b2s(k), b2s(v)] for k, v in (st.headers or []) if not k.startswith(b":")],
        "body_len": len(body),
        "body_sha256": sha256_hex(body),
        "body_text": text,
        "stream_reset": st.reset_code,
        "stop_sending": st.stop_sending_code,
        "complete": st.ended,
        "error": error,
        "stream_id": st.stream_id,
        "informational": st.informational,
        "trailers": [[b2s(k), b2s(v)] for k, v in st.trailers] if st.trailers is not None else None,
        "elapsed_ms": round(((st.finished_at or time.monotonic()) - st.started) * 1000, 1),
    }
    if proto is not None and proto.is_closed:
        ci = proto.close_info()
        res["connection_error_code"] = ci["error_code"]
        res["connection_error_name"] = ci["error_name"]
    res.update(extra)
    return res


def start_request(proto: H3ClientProtocol, headers: list[tuple[bytes, bytes]],
                  body: bytes | None, chunk: int = 16384) -> StreamState:
    """Send a full request (synchronously queue it) and return its state."""
    sid = proto._quic.get_next_available_stream_id()
    st = proto.state(sid)
    if body:
        proto.h3.send_headers(sid, headers, end_stream=False)
        mv = memoryview(body)
        n = len(body)
        for off in range(0, n, chunk):
            proto.h3.send_data(sid, bytes(mv[off : off + chunk]), end_stream=off + chunk >= n)
    else:
        proto.h3.send_headers(sid, headers, end_stream=True)
    proto.transmit()
    return st


async def do_request(proto: H3ClientProtocol, headers: list[tuple[bytes, bytes]],
                     body: bytes | None, timeout: float, **extra: Any) -> dict[str, Any]:
    if proto.is_closed:
        return stream_result(proto, None, "connection_closed", **extra)
    try:
        st = start_request(proto, headers, body)
    except Exception as exc:
        return stream_result(proto, None, f"send_failed: {exc!r}", **extra)
    try:
        await asyncio.wait_for(st.done.wait(), timeout)
    except asyncio.TimeoutError:
        pass
    return stream_result(proto, st, **extra)


async def simple_get(args: argparse.Namespace, proto: H3ClientProtocol, path: str) -> dict[str, Any]:
    return await do_request(proto, build_headers(args, "GET", path, []), None, args.timeout)


async def followup(args: argparse.Namespace, proto: H3ClientProtocol | None) -> dict[str, Any]:
    """GET followup_path.

    proto given  -> on that SAME connection: followup_status is null if it is
                    gone; then a fresh connection is also tried and reported
                    as followup_new_connection_status (is the server alive?).
    proto None   -> on a NEW connection (followup_connection "new").
    """
    if args.no_followup:
        return {"followup_status": None, "followup_connection": None,
                "followup_error": "skipped"}
    out: dict[str, Any] = {}
    if proto is not None:
        if not proto.is_closed:
            r = await simple_get(args, proto, args.followup_path)
            out = {"followup_status": r["status"], "followup_connection": "same",
                   "followup_error": r["error"], "followup_body_len": r["body_len"]}
            if r["status"] is not None:
                return out
        else:
            out = {"followup_status": None, "followup_connection": "same",
                   "followup_error": "connection_closed"}
    key = "followup_status" if proto is None else "followup_new_connection_status"
    try:
        async with open_conn(args) as p2:
            r = await simple_get(args, p2, args.followup_path)
            if proto is None:
                out.update({"followup_status": r["status"], "followup_connection": "new",
                            "followup_error": r["error"], "followup_body_len": r["body_len"]})
            else:
                out[key] = r["status"]
    except ConnectFailed as exc:
        if proto is None:
            out.update({"followup_status": None, "followup_connection": "new",
                        "followup_error": f"connect_failed: {exc}"})
        else:
            out[key] = None
            out["followup_new_connection_error"] = f"connect_failed: {exc}"
    return out


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------


def request_body(args: argparse.Namespace) -> bytes | None:
    if args.body is not None:
        return args.body.encode("utf-8")
    if args.body_size is not None:
        return deterministic_bytes(args.body_size)
    if args.body_file is not None:
        with open(args.body_file, "rb") as f:
            return f.read()
    return None


async def cmd_request(args: argparse.Namespace) -> dict[str, Any]:
    body = request_body(args)
    extra = [parse_header_arg(h) for h in args.header]
    if args.add_content_length and body is not None:
        extra.append(("content-length", str(len(body))))
    headers = build_headers(args, args.method.upper(), args.path, extra)
    K, N, M = max(1, args.repeat), max(1, args.concurrency), max(1, args.connections)
    M = min(M, K)
    results: list[dict[str, Any] | None] = [None] * K
    details: list[dict[str, Any]] = []
    t0 = time.monotonic()

    async def run_conn(ci: int) -> None:
        indices = list(range(ci, K, M))
        try:
            async with open_conn(args) as proto:
                queue = list(indices)

                async def worker() -> None:
                    while queue:
                        i = queue.pop(0)
                        results[i] = await do_request(proto, headers, body, args.timeout,
                                                      connection=ci, index=i)

                await asyncio.gather(*(worker() for _ in range(min(N, len(indices)))))
                d = {"index": ci, "server_settings": proto.server_settings()}
                d.update(proto.close_info())
                details.append(d)
        except ConnectFailed as exc:
            for i in indices:
                if results[i] is None:
                    results[i] = stream_result(None, None, f"connect_failed: {exc}",
                                               connection=ci, index=i)
            details.append({"index": ci, "connect_error": str(exc)})

    await asyncio.gather(*(run_conn(ci) for ci in range(M)))
    details.sort(key=lambda d: d["index"])
    if all("connect_error" in d for d in details):
        raise ConnectFailed(details[0]["connect_error"])
    return {
        "results": results,
        "connections": M,
        "sent_len": len(body) if body is not None else 0,
        "sent_sha256": sha256_hex(body or b""),
        "ok": sum(1 for r in results if r and r["complete"] and r["status"] is not None),
        "elapsed_ms": round((time.monotonic() - t0) * 1000, 1),
        "connections_detail": details,
    }


async def cmd_oversized_headers(args: argparse.Namespace) -> dict[str, Any]:
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    value = (alphabet * (args.size // len(alphabet) + 1))[: args.size]
    async with open_conn(args) as proto:
        await wait_settings(proto, min(1.0, args.timeout))
        headers = build_headers(args, "GET", args.path, [])
        for i in range(max(1, args.header_count)):
            name = args.name if args.header_count <= 1 else f"{args.name}-{i}"
            headers.append((name.encode(), value))
        # Encode by hand (literal QPACK): pylsqpack refuses values >= 64 KiB.
        frame = h3_frame(0x01, qpack_literal_block(headers))
        q = proto._quic
        sid = q.get_next_available_stream_id()
        st = proto.state(sid)
        q.send_stream_data(sid, frame, True)
        proto.transmit()
        try:
            await asyncio.wait_for(st.done.wait(), args.timeout)
        except asyncio.TimeoutError:
            pass
        # give a trailing CONNECTION_CLOSE / RESET a moment to arrive
        await wait_until(proto, lambda: proto.is_closed, time.monotonic() + 0.1)
        r = stream_result(proto, st)
        out = {
            "status": r["status"],
            "stream_reset": r["stream_reset"],
            "stream_reset_name": error_name(r["stream_reset"]),
            "stop_sending": r["stop_sending"],
            "request_error": r["error"],
            "header_size": args.size,
            "header_count": max(1, args.header_count),
            "headers_frame_len": len(frame),
            "request_stream_bytes_sent": proto.stream_bytes_sent(sid, len(frame)),
            "body_text": r["body_text"],
            "server_settings": proto.server_settings(),
        }
        out.update(proto.close_info())
        out.update(await followup(args, proto))
        return out


async def raw_reaction(proto: H3ClientProtocol, sid: int, deadline: float,
                       grace: float = 0.15) -> None:
    """Wait for the server to react on stream sid (reset/stop/response/close)."""
    st = proto.state(sid)

    def reacted() -> bool:
        return (st.reset_code is not None or st.stop_sending_code is not None
                or st.ended or st.headers is not None or proto.is_closed)

    if await wait_until(proto, reacted, deadline):
        # collect companions (STOP_SENDING usually comes with RESET_STREAM etc.)
        await wait_until(proto, lambda: (st.reset_code is not None and st.stop_sending_code is not None)
                         or st.done.is_set(), min(deadline, time.monotonic() + grace))


def raw_report(proto: H3ClientProtocol, sid: int) -> dict[str, Any]:
    st = proto.state(sid)
    out = {
        "stream_id": sid,
        "stream_reset": st.reset_code,
        "stream_reset_name": error_name(st.reset_code),
        "stop_sending": st.stop_sending_code,
        "stop_sending_name": error_name(st.stop_sending_code),
        "status": st.status,
        "response_complete": st.ended,
        "body_len": len(st.body),
        # true if our stream is still waiting for the peer's MAX_STREAMS credit
        "stream_blocked": proto.stream_blocked(sid),
    }
    out.update(proto.close_info())
    return out


async def cmd_huge_headers_frame(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    async with open_conn(args) as proto:
        q = proto._quic
        sid = q.get_next_available_stream_id()
        st = proto.state(sid)
        prefix = encode_uint_var(0x01) + encode_uint_var(args.claimed_length)
        q.send_stream_data(sid, prefix, False)
        proto.transmit()
        written = len(prefix)
        total = len(prefix) + args.send
        junk_chunk = bytes((i * 7 + 13) % 256 for i in range(args.chunk))
        write_error = None
        window = 4 * args.chunk  # keep at most this much unsent backlog queued

        def reacted() -> bool:
            return (st.reset_code is not None or st.stop_sending_code is not None
                    or st.headers is not None or proto.is_closed)

        stalled_since = None
        while written < total and not reacted() and time.monotonic() < deadline:
            sent = proto.stream_bytes_sent(sid) or 0
            if written - sent < window:
                n = min(args.chunk, total - written)
                try:
                    q.send_stream_data(sid, junk_chunk[:n], False)
                except Exception as exc:  # e.g. stream reset after STOP_SENDING
                    write_error = repr(exc)
                    break
                written += n
                proto.transmit()
                stalled_since = None
                await asyncio.sleep(0)
                continue
            # backlog full: wait for flow-control progress
            before = sent
            await wait_until(proto, lambda: reacted() or (proto.stream_bytes_sent(sid) or 0) > before,
                             min(deadline, time.monotonic() + 0.25), poll=0.02)
            if (proto.stream_bytes_sent(sid) or 0) == before:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > args.stall:
                    break  # flow control exhausted; stop feeding, go wait for reaction
        await raw_reaction(proto, sid, deadline)
        out = raw_report(proto, sid)
        sent = proto.stream_bytes_sent(sid, written)
        out.update({
            "claimed_length": args.claimed_length,
            "bytes_written": written,
            "bytes_accepted": sent,
            "payload_bytes_accepted": max(0, (sent or 0) - len(prefix)),
            "flow_control_blocked": (sent or 0) < written and not reacted(),
            "peer_max_stream_data": proto.peer_max_stream_data(sid),
            "write_error": write_error,
            "timed_out": not reacted(),
            "elapsed_ms": round((time.monotonic() - t0) * 1000, 1),
        })
    # always a NEW connection for the follow-up here
    out.update(await followup(args, None))
    return out


async def cmd_raw_stream(args: argparse.Namespace) -> dict[str, Any]:
    hexs = "".join(ch for ch in args.hex if ch not in " :_-\n\t")
    data = bytes.fromhex(hexs)
    async with open_conn(args) as proto:
        await wait_settings(proto, min(1.0, args.timeout))
        q = proto._quic
        sid = q.get_next_available_stream_id(is_unidirectional=args.uni)
        q.send_stream_data(sid, data, args.fin)
        proto.transmit()
        await raw_reaction(proto, sid, time.monotonic() + min(args.wait, args.timeout))
        out = raw_report(proto, sid)
        out.update({"bytes_sent": len(data), "fin": args.fin, "uni": args.uni,
                    "bytes_accepted": proto.stream_bytes_sent(sid, len(data))})
        out.update(await followup(args, proto))
        return out


async def cmd_raw_headers(args: argparse.Namespace) -> dict[str, Any]:
    """One request whose HEADERS frame carries exactly the --field lines given, in order and
    case as written (QPACK literals, no table, no Huffman), then DATA frames and an optional
    trailer section, then FIN unless --no-fin."""
    fields = [parse_header_arg(f) for f in args.field]
    data = h3_frame(0x1, qpack_literal_block([(n.encode(), v.encode()) for n, v in fields]))
    for d in args.data:
        data += h3_frame(0x0, d.encode())
    if args.trailer:
        trailers = [parse_header_arg(f) for f in args.trailer]
        data += h3_frame(0x1, qpack_literal_block([(n.encode(), v.encode()) for n, v in trailers]))
    async with open_conn(args) as proto:
        await wait_settings(proto, min(1.0, args.timeout))
        q = proto._quic
        sid = q.get_next_available_stream_id()
        q.send_stream_data(sid, data, not args.no_fin)
        proto.transmit()
        await raw_reaction(proto, sid, time.monotonic() + min(args.wait, args.timeout))
        out = raw_report(proto, sid)
        out.update({"bytes_sent": len(data), "fields": [list(f) for f in fields]})
        out.update(await followup(args, proto))
        return out


async def cmd_reset_mid_request(args: argparse.Namespace) -> dict[str, Any]:
    body = deterministic_bytes(args.body_size)
    half = body[: args.body_size // 2]
    async with open_conn(args) as proto:
        headers = build_headers(args, "POST", args.path,
                                [("content-length", str(args.body_size)),
                                 ("content-type", "application/octet-stream")])
        sid = proto._quic.get_next_available_stream_id()
        st = proto.state(sid)
        proto.h3.send_headers(sid, headers, end_stream=False)
        for off in range(0, len(half), 16384):
            proto.h3.send_data(sid, half[off : off + 16384], end_stream=False)
        proto.transmit()
        target = proto._quic._streams[sid].sender._buffer_stop if sid in proto._quic._streams else 0
        # let the partial body actually go out before cancelling
        await wait_until(proto, lambda: (proto.stream_bytes_sent(sid) or 0) >= target or proto.is_closed
                         or st.done.is_set(), time.monotonic() + min(1.0, args.timeout))
        sent_before_reset = proto.stream_bytes_sent(sid)
        proto._quic.reset_stream(sid, H3_REQUEST_CANCELLED)
        if args.also_stop_sending:
            try:
                proto._quic.stop_stream(sid, H3_REQUEST_CANCELLED)
            except Exception:
                pass
        proto.transmit()
        await asyncio.sleep(0.2)
        out = raw_report(proto, sid)
        out.update({"body_size": args.body_size, "body_bytes_queued": len(half),
                    "stream_bytes_sent_before_reset": sent_before_reset,
                    "reset_code_sent": H3_REQUEST_CANCELLED})
        out.update(await followup(args, proto))
        return out


async def cmd_many_streams(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    async with open_conn(args) as proto:
        await wait_settings(proto, min(1.0, args.timeout))
        try:
            peer_max_streams = int(proto._quic._remote_max_streams_bidi)
        except Exception:
            peer_max_streams = None
        headers = build_headers(args, "GET", args.path, [])
        states: list[StreamState] = []
        send_errors = 0
        for _ in range(args.count):
            if proto.is_closed:
                break
            try:
                states.append(start_request(proto, headers, None))
            except Exception:
                send_errors += 1
        deadline = time.monotonic() + args.timeout
        await wait_until(proto, lambda: all(s.done.is_set() for s in states) or proto.is_closed,
                         deadline)
        statuses: dict[str, int] = {}
        resets: dict[str, int] = {}
        ok = timeouts = 0
        for s in states:
            if s.status is not None:
                statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
            if s.reset_code is not None:
                resets[hex(s.reset_code)] = resets.get(hex(s.reset_code), 0) + 1
            if s.ended and s.status is not None and 200 <= s.status < 300:
                ok += 1
            elif not s.done.is_set():
                timeouts += 1
        out = {
            "count": args.count,
            "ok": ok,
            "failed": args.count - ok,
            "statuses": statuses,
            "resets": resets,
            "timeouts": timeouts,
            "not_sent": args.count - len(states),
            "peer_initial_max_streams_bidi": peer_max_streams,
            "elapsed_ms": round((time.monotonic() - t0) * 1000, 1),
        }
        out.update(proto.close_info())
        return out


# --------------------------------------------------------------------------
# datagrams (RFC 9221 QUIC DATAGRAM, RFC 9297 HTTP/3 datagrams)
# --------------------------------------------------------------------------

HEX_PREVIEW_BYTES = 256  # each received_payloads_hex entry shows at most this many bytes


def datagram_payload(seq: int, size: int) -> bytes:
    """4-byte big-endian sequence number + (size-4) pattern bytes (i % 251).
    With size < 4 only the low-order `size` bytes of the number are kept."""
    head = (seq & 0xFFFFFFFF).to_bytes(4, "big")
    if size < 4:
        return head[4 - size:] if size > 0 else b""
    return head + deterministic_bytes(size - 4)


def payload_stats(sent: list[bytes], received: list[bytes]) -> dict[str, Any]:
    sent_set = set(sent)
    matched = [d for d in received if d in sent_set]
    return {
        "received": len(received),
        "received_bytes": sum(len(d) for d in received),
        "received_payloads_hex": [d[:HEX_PREVIEW_BYTES].hex() for d in received[:5]],
        "echo_ok": len(matched),
        "echo_distinct": len(set(matched)),
    }


async def send_datagrams(proto: H3ClientProtocol, args: argparse.Namespace,
                         send) -> tuple[list[bytes], str | None]:
    """Queue args.count payloads with send(payload); returns (queued, error)."""
    sent: list[bytes] = []
    for i in range(max(0, args.count)):
        if proto.is_closed:
            return sent, "connection_closed"
        payload = datagram_payload(i, args.size)
        try:
            send(payload)
        except Exception as exc:
            return sent, repr(exc)
        sent.append(payload)
        proto.transmit()
        if args.interval_ms > 0:
            await asyncio.sleep(args.interval_ms / 1000.0)
        elif i % 32 == 31:
            await asyncio.sleep(0)  # let ACKs / echoes in
    return sent, None


async def collect_datagrams(proto: H3ClientProtocol, args: argparse.Namespace,
                            got, expected: int) -> None:
    """Wait up to min(--wait, --timeout) after the last send; stop early (after a
    short grace for extras) once `expected` datagrams came back and aioquic has
    nothing left queued, or when the connection is gone."""
    deadline = time.monotonic() + min(args.wait, args.timeout)

    def enough() -> bool:
        return proto.is_closed or (got() >= expected and proto.datagrams_unsent() == 0)

    if await wait_until(proto, enough, deadline, poll=0.02) and not proto.is_closed:
        await wait_until(proto, lambda: proto.is_closed,
                         min(deadline, time.monotonic() + 0.1), poll=0.02)


def datagram_common(proto: H3ClientProtocol, args: argparse.Namespace) -> dict[str, Any]:
    settings = proto.h3.received_settings or {}
    return {
        "max_datagram_frame_size_peer": proto.peer_max_datagram_frame_size(),
        "max_datagram_frame_size_local": args.max_datagram_frame_size,
        "local_settings": {Setting(k).name if k in Setting._value2member_map_ else hex(k): v
                           for k, v in (proto.h3.sent_settings or {}).items()},
        "server_settings": proto.server_settings(),
        "peer_h3_datagram": settings.get(Setting.H3_DATAGRAM),
        "peer_enable_connect_protocol": settings.get(Setting.ENABLE_CONNECT_PROTOCOL),
        "datagrams_unsent": proto.datagrams_unsent(),
    }


async def cmd_quic_datagram(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    async with open_conn(args) as proto:
        await wait_settings(proto, min(1.0, args.timeout))
        sent, send_error = await send_datagrams(proto, args, proto._quic.send_datagram_frame)
        await collect_datagrams(proto, args, lambda: len(proto.quic_datagrams), len(sent))
        out: dict[str, Any] = {"count": args.count, "size": args.size, "sent": len(sent),
                               "send_error": send_error}
        out.update(payload_stats(sent, proto.quic_datagrams))
        out.update(datagram_common(proto, args))
        out["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 1)
        out.update(proto.close_info())
        out.update(await followup(args, proto))
        return out


async def cmd_h3_datagram(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    method = (args.method or ("CONNECT" if args.protocol else "POST")).upper()
    extra = [parse_header_arg(h) for h in args.header]
    if args.protocol:
        extra.insert(0, (":protocol", args.protocol))
        if (args.protocol == "connect-udp" and not args.no_capsule_protocol
                and not any(n.lower() == "capsule-protocol" for n, _ in extra)):
            extra.append(("capsule-protocol", "?1"))
    headers = build_headers(args, method, args.path, extra)
    if method == "CONNECT" and not args.protocol:
        # classic CONNECT (RFC 9114 4.4): only :method and :authority
        headers = [(k, v) for k, v in headers if k not in (b":scheme", b":path")]
    async with open_conn(args) as proto:
        q = proto._quic
        # RFC 9297 / 9220: wait for the server SETTINGS before datagrams / extended CONNECT
        await wait_settings(proto, args.timeout)
        sid = q.get_next_available_stream_id()
        st = proto.state(sid)
        proto.h3.send_headers(sid, headers, end_stream=False)  # stream stays open
        proto.transmit()
        await wait_until(proto, lambda: st.headers is not None or st.done.is_set() or proto.is_closed,
                         time.monotonic() + args.timeout)
        headers_timeout = st.headers is None and not st.done.is_set() and not proto.is_closed
        complete_before = st.ended

        sent, send_error = await send_datagrams(
            proto, args, lambda payload: proto.h3.send_datagram(sid, payload))
        await collect_datagrams(proto, args, lambda: len(proto.h3_datagrams), len(sent))
        h3_dgrams = list(proto.h3_datagrams)  # snapshot before ending the stream

        end_stream_error = None
        if proto.is_closed:
            end_stream_error = "connection_closed"
        else:
            try:  # FIN only (an empty STREAM frame), no DATA frame
                q.send_stream_data(sid, b"", True)
                proto.transmit()
            except Exception as exc:
                end_stream_error = repr(exc)
            await wait_until(proto, lambda: st.done.is_set() or proto.is_closed,
                             time.monotonic() + min(1.0, args.timeout))
        received = [d for _, d in h3_dgrams]
        same = [d for s, d in h3_dgrams if s == sid]
        out: dict[str, Any] = {
            "method": method,
            "protocol": args.protocol,
            "status": st.status,
            "response_headers": [[b2s(k), b2s(v)] for k, v in (st.headers or [])
                                 if not k.startswith(b":")],
            "headers_timeout": headers_timeout,
            "response_complete_before_datagrams": complete_before,
            "response_complete": st.ended,
            "body_len": len(st.body),
            "stream_id": sid,
            "stream_reset": st.reset_code,
            "stream_reset_name": error_name(st.reset_code),
            "stop_sending": st.stop_sending_code,
            "count": args.count,
            "size": args.size,
            "sent": len(sent),
            "send_error": send_error,
        }
        out.update(payload_stats(sent, received))
        sent_set = set(sent)
        out["echo_ok_same_stream"] = sum(1 for d in same if d in sent_set)
        out["received_stream_ids"] = sorted({s for s, _ in h3_dgrams})
        out["quic_datagrams_received"] = len(proto.quic_datagrams)
        out["end_stream_error"] = end_stream_error
        out.update(datagram_common(proto, args))
        out["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 1)
        out.update(proto.close_info())
        out.update(await followup(args, proto))
        return out


# --------------------------------------------------------------------------
# WebTransport over HTTP/3 (draft-ietf-webtrans-http3-02, what Chromium speaks)
# --------------------------------------------------------------------------

# (aioquic writes the stream prefixes: bidi varint 0x41 + varint session id,
#  uni stream type 0x54 + varint session id; session datagrams: varint(session_id/4) + payload)
CAPSULE_CLOSE_WT_SESSION = 0x2843  # u32 error code + UTF-8 reason
CAPSULE_DRAIN_WT_SESSION = 0x78AE  # later drafts; reported if seen
# draft-15 §5.6 (§9.6): the session flow-control capsules.
FLOW_CAPSULES = {
    0x190B4D3D: "WT_MAX_DATA",
    0x190B4D3F: "WT_MAX_STREAMS_BIDI",
    0x190B4D40: "WT_MAX_STREAMS_UNI",
    0x190B4D41: "WT_DATA_BLOCKED",
    0x190B4D43: "WT_STREAMS_BLOCKED_BIDI",
    0x190B4D44: "WT_STREAMS_BLOCKED_UNI",
}
WT_ERROR_FIRST = 0x52E4A40FA8DB  # WT application code n -> first + n + n // 0x1e
WT_ERROR_LAST = WT_ERROR_FIRST + 0xFFFFFFFF + 0xFFFFFFFF // 0x1E
WT_NAMED_ERRORS = {0x3994BD84: "WT_BUFFERED_STREAM_REJECTED", 0x170D7B68: "WT_SESSION_GONE"}


def wt_h3_code(n: int) -> int:
    """WebTransport application error code (u32) -> HTTP/3 stream error code."""
    return WT_ERROR_FIRST + n + n // 0x1E


def wt_app_code(h3_code: int | None) -> int | None:
    """Inverse of wt_h3_code (None for codes outside the range or reserved ones)."""
    if h3_code is None or not WT_ERROR_FIRST <= h3_code <= WT_ERROR_LAST:
        return None
    if (h3_code - 0x21) % 0x1F == 0:  # a reserved (GREASE) codepoint
        return None
    d = h3_code - WT_ERROR_FIRST
    return d - d // 0x1F


def wt_code_info(h3_code: int | None) -> dict[str, Any]:
    return {"code": h3_code, "app_code": wt_app_code(h3_code),
            "name": WT_NAMED_ERRORS.get(h3_code) if h3_code is not None else None}


def open_wt_stream(h3: H3Connection, session_id: int, uni: bool) -> int:
    """aioquic's create_webtransport_stream, plus a fix for bidi streams: aioquic
    keeps no receive state for a WT bidi stream it opened, so it parses the
    peer's raw bytes on it as HTTP/3 frames (and closes the connection with
    H3_FRAME_UNEXPECTED).  Mark the stream as a WT stream so they come out as
    WebTransportStreamDataReceived."""
    from aioquic.h3.connection import FrameType

    sid = h3.create_webtransport_stream(session_id, is_unidirectional=uni)
    if not uni:
        with h3._get_or_create_stream(sid) as stream:
            stream.frame_type = FrameType.WEBTRANSPORT_STREAM
            stream.session_id = session_id
    return sid


def capsule(capsule_type: int, value: bytes) -> bytes:
    return encode_uint_var(capsule_type) + encode_uint_var(len(value)) + value


def close_session_capsule(code: int, reason: str) -> bytes:
    return capsule(CAPSULE_CLOSE_WT_SESSION,
                   (code & 0xFFFFFFFF).to_bytes(4, "big") + reason.encode("utf-8"))


def parse_capsules(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Complete capsules in data, and how many bytes they took."""
    from aioquic.buffer import Buffer, BufferReadError

    out: list[tuple[int, bytes]] = []
    buf = Buffer(data=data)
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
        out.append((ctype, value))
        used = buf.tell()
    return out, used


def describe_capsule(ctype: int, value: bytes) -> dict[str, Any]:
    d: dict[str, Any] = {"type": ctype, "length": len(value)}
    if ctype == CAPSULE_CLOSE_WT_SESSION:
        d["name"] = "CLOSE_WEBTRANSPORT_SESSION"
        if len(value) >= 4:
            d["code"] = int.from_bytes(value[:4], "big")
            d["reason"] = value[4:].decode("utf-8", errors="replace")
        else:
            d["malformed"] = True
    elif ctype == CAPSULE_DRAIN_WT_SESSION:
        d["name"] = "DRAIN_WEBTRANSPORT_SESSION"
    elif ctype in FLOW_CAPSULES:
        # draft-15 §5.6: each carries one varint, a limit.
        d["name"] = FLOW_CAPSULES[ctype]
        try:
            d["value"] = Buffer(data=value).pull_uint_var()
        except Exception:  # noqa: BLE001 - a malformed one is reported as such
            d["malformed"] = True
    return d


class WtSession:
    """One WebTransport session (an extended CONNECT stream) on a connection."""

    def __init__(self, proto: H3ClientProtocol, args: argparse.Namespace, index: int) -> None:
        self.proto = proto
        self.args = args
        self.index = index
        self.sid: int | None = None
        self.st: StreamState | None = None
        self.errors: list[str] = []
        self.fin_sent = False

    def err(self, msg: str) -> None:
        self.errors.append(msg)

    def send_connect(self) -> None:
        args = self.args
        # draft-15 §3.2: ":protocol pseudo-header field MUST be set to webtransport-h3".
        extra = [(":protocol", "webtransport-h3" if args.draft15 else "webtransport")]
        if not args.safari and not args.draft15:
            extra.append(("sec-webtransport-http3-draft02", "1"))
        if args.origin:
            extra.append(("origin", args.origin))
        extra += [parse_header_arg(h) for h in args.header]
        headers = build_headers(args, "CONNECT", args.path, extra)
        q = self.proto._quic
        self.sid = q.get_next_available_stream_id()
        self.st = self.proto.state(self.sid)
        self.proto.h3.send_headers(self.sid, headers, end_stream=False)  # stays open
        self.proto.transmit()

    async def wait_response(self) -> None:
        st = self.st
        assert st is not None
        ok = await wait_until(self.proto, lambda: st.headers is not None or st.done.is_set()
                              or self.proto.is_closed, time.monotonic() + self.args.timeout)
        if st.headers is None:
            if st.reset_code is not None:
                self.err(f"connect: stream reset {hex(st.reset_code)}")
            elif self.proto.is_closed:
                self.err("connect: connection closed")
            elif st.ended:
                self.err("connect: stream ended without a response")
            elif not ok:
                self.err("connect: timeout waiting for the response")

    @property
    def status(self) -> int | None:
        return self.st.status if self.st is not None else None

    @property
    def accepted(self) -> bool:
        s = self.status
        return s is not None and 200 <= s < 300

    def capsules(self) -> list[tuple[int, bytes]]:
        if self.st is None:
            return []
        return parse_capsules(bytes(self.st.body))[0]

    def close_capsule(self) -> dict[str, Any] | None:
        for ctype, value in self.capsules():
            if ctype == CAPSULE_CLOSE_WT_SESSION:
                d = describe_capsule(ctype, value)
                return {"code": d.get("code"), "reason": d.get("reason")}
        return None

    @property
    def gone(self) -> bool:
        """The server ended the session (FIN, reset, close capsule) or the connection is gone."""
        st = self.st
        return (self.proto.is_closed or st is None or st.ended or st.reset_code is not None
                or self.close_capsule() is not None)

    def gone_reason(self) -> str:
        st = self.st
        if self.proto.is_closed:
            return "connection closed"
        if st is not None and st.reset_code is not None:
            return f"CONNECT stream reset {hex(st.reset_code)}"
        cc = self.close_capsule()
        if cc is not None:
            return f"session closed by server (code {cc['code']})"
        return "CONNECT stream ended by server"

    def stream_reset(self, stream_id: int) -> int | None:
        s = self.proto.streams.get(stream_id)
        return s.reset_code if s is not None else None

    def stop_sending(self, stream_id: int) -> int | None:
        s = self.proto.streams.get(stream_id)
        return s.stop_sending_code if s is not None else None

    def incoming(self, kind: str) -> list[WtStream]:
        """Server-initiated WT streams of this session: kind 'bidi' (id % 4 == 1) or 'uni' (3)."""
        want = 1 if kind == "bidi" else 3
        return [ws for sid, ws in sorted(self.proto.wt_streams.items())
                if sid % 4 == want and ws.session_id == self.sid]

    async def wait_progress(self, done, progress, what: str) -> bool:
        """Wait until done(); give up after --timeout without progress() changing."""
        last = progress()
        deadline = time.monotonic() + self.args.timeout
        while True:
            if await wait_until(self.proto, lambda: done() or self.proto.is_closed or self.gone
                                or progress() != last, deadline):
                if done():
                    return True
                if self.proto.is_closed or self.gone:
                    # a little grace: data racing the session's end
                    await wait_until(self.proto, done, time.monotonic() + 0.1)
                    if done():
                        return True
                    self.err(f"{what}: {self.gone_reason()}")
                    return False
                last = progress()
                deadline = time.monotonic() + self.args.timeout
                continue
            self.err(f"{what}: timeout")
            return False

    # -- operations -------------------------------------------------------

    async def op_datagrams(self, count: int, size: int) -> dict[str, Any]:
        proto, args, sid = self.proto, self.args, self.sid
        assert sid is not None
        base = self.index << 20  # payloads unique across sessions
        sent: list[bytes] = []
        send_error = None
        for i in range(max(0, count)):
            if proto.is_closed:
                send_error = "connection_closed"
                break
            payload = datagram_payload(base + i, size)
            try:
                proto.h3.send_datagram(sid, payload)
            except Exception as exc:
                send_error = repr(exc)
                break
            sent.append(payload)
            proto.transmit()
            if args.datagram_interval_ms > 0:
                await asyncio.sleep(args.datagram_interval_ms / 1000.0)
            elif i % 32 == 31:
                await asyncio.sleep(0)
        sent_set = set(sent)

        def mine() -> list[bytes]:
            return [d for s, d in proto.h3_datagrams if s == sid]

        def enough() -> bool:
            if proto.is_closed or self.gone:
                return True
            got = mine()
            have = (len(sent_set.intersection(got)) >= len(sent_set) if len(sent_set) == len(sent)
                    else sum(1 for d in got if d in sent_set) >= len(sent))
            return have and proto.datagrams_unsent() == 0

        deadline = time.monotonic() + min(args.datagram_wait, args.timeout)
        if await wait_until(proto, enough, deadline, poll=0.02) and not proto.is_closed:
            # a short grace for duplicates / strays
            await wait_until(proto, lambda: proto.is_closed,
                             min(deadline, time.monotonic() + 0.05), poll=0.02)
        got = mine()
        matched = sum(1 for d in got if d in sent_set)
        if len(sent_set) == len(sent):
            received = len(sent_set.intersection(got))  # distinct echoes of sent payloads
        else:  # --datagram-size < 4: payloads repeat, count them
            received = min(len(sent), matched)
        out = {
            "sent": len(sent),
            "received": received,
            "mismatched": len(got) - matched,
            "duplicates": matched - received,
            "size": size,
            "send_error": send_error,
            "unsent": proto.datagrams_unsent(),
        }
        if send_error:
            self.err(f"datagrams: send failed: {send_error}")
        if received < len(sent):
            self.err(f"datagrams: {len(sent) - received} of {len(sent)} not echoed")
        return out

    async def op_bidi(self, nbytes: int) -> dict[str, Any]:
        proto, sid = self.proto, self.sid
        assert sid is not None
        data = deterministic_bytes(nbytes)
        try:
            ws_id = open_wt_stream(proto.h3, sid, uni=False)
            proto._quic.send_stream_data(ws_id, data, True)
            proto.transmit()
        except Exception as exc:
            self.err(f"bidi: open failed: {exc!r}")
            return {"stream_id": None, "bytes": nbytes, "recv_bytes": 0,
                    "sent_sha": sha256_hex(data), "recv_sha": None, "match": False, "fin": False}

        def ws() -> WtStream | None:
            return proto.wt_streams.get(ws_id)

        def done() -> bool:
            w = ws()
            return (w is not None and w.ended) or self.stream_reset(ws_id) is not None

        await self.wait_progress(done, lambda: len(w.data) if (w := ws()) else 0, "bidi")
        w = ws()
        recv = bytes(w.data) if w else b""
        reset = self.stream_reset(ws_id)
        if reset is not None:
            self.err(f"bidi: stream reset {hex(reset)}")
        out = {"stream_id": ws_id, "bytes": nbytes, "recv_bytes": len(recv),
               "sent_sha": sha256_hex(data), "recv_sha": sha256_hex(recv),
               "match": recv == data, "fin": bool(w and w.ended),
               "reset": wt_code_info(reset) if reset is not None else None,
               "stop_sending": self.stop_sending(ws_id)}
        if w is not None and w.ended and recv != data:
            self.err("bidi: echo differs from what was sent")
        return out

    async def op_uni(self, nbytes: int) -> dict[str, Any]:
        proto, sid = self.proto, self.sid
        assert sid is not None
        data = deterministic_bytes(nbytes)
        before = {w.stream_id for w in self.incoming("uni")}
        try:
            ws_id = open_wt_stream(proto.h3, sid, uni=True)
            proto._quic.send_stream_data(ws_id, data, True)
            proto.transmit()
        except Exception as exc:
            self.err(f"uni: open failed: {exc!r}")
            return {"stream_id": None, "echo_stream_id": None, "bytes": nbytes, "recv_bytes": 0,
                    "sent_sha": sha256_hex(data), "recv_sha": None, "match": False, "fin": False}

        def echo() -> WtStream | None:
            new = [w for w in self.incoming("uni") if w.stream_id not in before]
            return new[0] if new else None

        def done() -> bool:
            w = echo()
            return ((w is not None and (w.ended or self.stream_reset(w.stream_id) is not None))
                    or self.stop_sending(ws_id) is not None)

        await self.wait_progress(done, lambda: (-1 if (w := echo()) is None else len(w.data)), "uni")
        w = echo()
        recv = bytes(w.data) if w else b""
        reset = self.stream_reset(w.stream_id) if w else None
        stop = self.stop_sending(ws_id)
        if reset is not None:
            self.err(f"uni: echo stream reset {hex(reset)}")
        if stop is not None:
            self.err(f"uni: STOP_SENDING {hex(stop)} on our stream")
        out = {"stream_id": ws_id, "echo_stream_id": w.stream_id if w else None,
               "bytes": nbytes, "recv_bytes": len(recv),
               "sent_sha": sha256_hex(data), "recv_sha": sha256_hex(recv) if w else None,
               "match": recv == data and w is not None, "fin": bool(w and w.ended),
               "reset": wt_code_info(reset) if reset is not None else None,
               "stop_sending": wt_code_info(stop) if stop is not None else None}
        if w is not None and w.ended and recv != data:
            self.err("uni: echo differs from what was sent")
        return out

    async def op_server_bidi(self) -> dict[str, Any]:
        proto = self.proto

        def first() -> WtStream | None:
            got = self.incoming("bidi")
            return got[0] if got else None

        def done() -> bool:
            w = first()
            return w is not None and (w.ended or self.stream_reset(w.stream_id) is not None)

        await self.wait_progress(done, lambda: (-1 if (w := first()) is None else len(w.data)),
                                 "server_bidi")
        w = first()
        if w is None:
            return {"stream_id": None, "text": None, "fin": False, "reply": None,
                    "reply_error": "no server-initiated stream"}
        data = bytes(w.data)
        text = data.decode("utf-8", errors="replace")
        reset = self.stream_reset(w.stream_id)
        reply = b"reply:" + data
        reply_error = None
        try:
            proto._quic.send_stream_data(w.stream_id, reply, True)
            proto.transmit()
        except Exception as exc:
            reply_error = repr(exc)
            self.err(f"server_bidi: reply failed: {exc!r}")
        return {"stream_id": w.stream_id, "text": text, "bytes": len(data), "fin": w.ended,
                "reset": wt_code_info(reset) if reset is not None else None,
                "reply": reply.decode("utf-8", errors="replace") if reply_error is None else None,
                "reply_error": reply_error}

    async def wait_delivered(self, stream_id: int, timeout: float) -> bool:
        """Wait until everything we wrote on stream_id (with FIN) was acknowledged,
        so that closing the connection right after does not lose it."""
        q = self.proto._quic

        def acked() -> bool:
            stream = q._streams.get(stream_id)
            return stream is None or stream.sender.is_finished

        return await wait_until(self.proto, lambda: acked() or self.proto.is_closed,
                                time.monotonic() + timeout, poll=0.02)

    def send_fin(self) -> str | None:
        """FIN our side of the CONNECT stream (no capsule)."""
        if self.fin_sent or self.sid is None:
            return None
        try:
            self.proto._quic.send_stream_data(self.sid, b"", True)
            self.proto.transmit()
            self.fin_sent = True
            return None
        except Exception as exc:
            return repr(exc)

    async def op_expect_close(self) -> dict[str, Any]:
        st = self.st
        assert st is not None
        await wait_until(self.proto, lambda: self.close_capsule() is not None or st.ended
                         or st.reset_code is not None or self.proto.is_closed,
                         time.monotonic() + self.args.timeout)
        if self.close_capsule() is not None and not st.ended:
            await wait_until(self.proto, lambda: st.ended or st.reset_code is not None
                             or self.proto.is_closed, time.monotonic() + min(1.0, self.args.timeout))
        cc = self.close_capsule()
        if cc is None:
            self.err("expect_close: no CLOSE_WEBTRANSPORT_SESSION capsule"
                     + ("" if st.ended else " and no FIN"))
        fin_error = None
        if st.ended or cc is not None:
            fin_error = self.send_fin()  # answer the close with our FIN
        return {"received": cc, "fin": st.ended,
                "reset": st.reset_code, "fin_sent": self.fin_sent, "fin_error": fin_error}

    async def op_close(self, code: int, reason: str) -> dict[str, Any]:
        st = self.st
        assert st is not None and self.sid is not None
        out: dict[str, Any] = {"sent": False, "code": code, "reason": reason}
        if self.proto.is_closed:
            out["error"] = "connection closed"
        elif self.fin_sent:
            out["error"] = "CONNECT stream already FIN'd by us"
        else:
            try:
                self.proto.h3.send_data(self.sid, close_session_capsule(code, reason), end_stream=True)
                self.proto.transmit()
                self.fin_sent = True
                out["sent"] = True
            except Exception as exc:
                out["error"] = repr(exc)
        if out.get("error"):
            self.err(f"close: {out['error']}")
        await wait_until(self.proto, lambda: st.ended or st.reset_code is not None
                         or self.proto.is_closed, time.monotonic() + self.args.timeout)
        out["server_fin"] = st.ended
        out["server_reset"] = st.reset_code
        if out["sent"] and not st.ended:
            self.err("close: the server did not FIN the CONNECT stream")
        return out

    def summary(self) -> dict[str, Any]:
        st = self.st
        if st is not None and not self.accepted:  # a plain HTTP answer, not capsules
            body = bytes(st.body)
            return {"session_id": self.sid, "status": self.status,
                    "response_headers": [[b2s(k), b2s(v)] for k, v in (st.headers or [])
                                         if not k.startswith(b":")],
                    "connect_fin": st.ended, "connect_reset": st.reset_code,
                    "body_len": len(body),
                    "body_text": body[:4096].decode("utf-8", errors="replace")}
        caps = self.capsules()
        return {
            "session_id": self.sid,
            "status": self.status,
            "response_headers": [[b2s(k), b2s(v)] for k, v in (st.headers or [])
                                 if not k.startswith(b":")] if st else [],
            "connect_fin": st.ended if st else False,  # server FIN'd the CONNECT stream
            "connect_reset": st.reset_code if st else None,
            "capsules": [describe_capsule(t, v) for t, v in caps],
            "capsule_bytes_unparsed": (len(st.body) - parse_capsules(bytes(st.body))[1]) if st else 0,
        }


def wt_plan(args: argparse.Namespace, concurrent: bool) -> dict[str, Any]:
    datagrams = args.datagrams
    bidi = args.bidi_bytes
    if concurrent:  # "a short datagram + bidi echo" per session unless given
        datagrams = 4 if datagrams is None else datagrams
        bidi = 4096 if bidi is None else bidi
    close = args.close_code is not None or args.close_reason is not None
    return {"datagrams": datagrams, "bidi": bidi, "uni": args.uni_bytes,
            "server_bidi": args.server_bidi, "expect_close": args.expect_close, "close": close}


async def wt_run_session(sess: WtSession, plan: dict[str, Any]) -> dict[str, Any]:
    """The requested operations, one after another, on an opened session."""
    args = sess.args
    res: dict[str, Any] = {"datagrams": None, "bidi": None, "uni": None,
                           "server_bidi": None, "close": None}
    if not sess.accepted:
        return res

    def skip(what: str) -> bool:
        if sess.gone and not (what == "server_bidi" and sess.incoming("bidi")):
            sess.err(f"{what}: skipped, {sess.gone_reason()}")
            return True
        return False

    if plan["datagrams"] is not None and not skip("datagrams"):
        res["datagrams"] = await sess.op_datagrams(plan["datagrams"], args.datagram_size)
    if plan["bidi"] is not None and not skip("bidi"):
        res["bidi"] = await sess.op_bidi(plan["bidi"])
    if plan["uni"] is not None and not skip("uni"):
        res["uni"] = await sess.op_uni(plan["uni"])
    if plan["server_bidi"] and not skip("server_bidi"):
        res["server_bidi"] = await sess.op_server_bidi()
        if res["server_bidi"]["reply"] is not None:
            # let the reply reach the server before anything closes
            res["server_bidi"]["reply_acked"] = await sess.wait_delivered(
                res["server_bidi"]["stream_id"], min(2.0, args.timeout))
    close: dict[str, Any] = {}
    if plan["expect_close"]:
        close.update(await sess.op_expect_close())
    if plan["close"]:
        c = await sess.op_close(args.close_code or 0, args.close_reason or "")
        if plan["expect_close"]:  # both: keep the keys apart
            close["sent"] = c.pop("sent")
            close["server_fin"] = c.pop("server_fin")
            close["close_sent"] = c
        else:
            close.update(c)
    res["close"] = close or None
    return res


async def wt_flood_uni(proto: H3ClientProtocol, s: WtSession, n: int,
                       timeout: float) -> dict[str, Any]:
    """Open n uni streams on the session at once (header and FIN, no body), ignoring the
    server's WT_MAX_STREAMS: past its limit, draft-15 §5.6.2 has it close the session with
    WT_FLOW_CONTROL_ERROR. Reports how the CONNECT stream ended."""
    st = s.st
    assert st is not None and s.sid is not None
    for _ in range(n):
        sid = open_wt_stream(proto.h3, s.sid, True)
        proto._quic.send_stream_data(sid, b"", end_stream=True)
    proto.transmit()
    await wait_until(proto, lambda: st.reset_code is not None or st.done.is_set() or proto.is_closed,
                     time.monotonic() + timeout)
    return {"opened": n, "connect_reset": st.reset_code,
            "flow_control_error": st.reset_code == WT_FLOW_CONTROL_ERROR,
            "connect_stop_sending": st.stop_sending_code}


async def cmd_wt(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    k = max(1, args.concurrent_sessions)
    plan = wt_plan(args, k > 1)
    async with open_conn(args) as proto:
        # draft-02: the client waits for the server SETTINGS before the extended CONNECT
        await wait_settings(proto, args.timeout)
        settings = proto.h3.received_settings or {}
        common: dict[str, Any] = {
            "server_settings": proto.server_settings(),
            "peer_enable_webtransport": settings.get(Setting.ENABLE_WEBTRANSPORT),
            "peer_h3_datagram": settings.get(Setting.H3_DATAGRAM),
            "peer_enable_connect_protocol": settings.get(Setting.ENABLE_CONNECT_PROTOCOL),
            "max_datagram_frame_size_peer": proto.peer_max_datagram_frame_size(),
        }
        notes: list[str] = []
        if proto.h3.received_settings is None:
            notes.append("no SETTINGS from the server within --timeout")
        elif args.safari:
            refusal = safari_would_refuse(settings)
            common["safari_would_refuse"] = refusal
            if refusal:
                notes.append(f"Safari would abandon the session: {refusal}")
        elif args.draft15:
            # §3.1: "Clients MUST NOT attempt to establish WebTransport sessions with the
            # "webtransport-h3" token until they have received the setting".
            if settings.get(WT_ENABLED) != 1:
                notes.append("server did not send SETTINGS_WT_ENABLED=1")
        elif settings.get(Setting.ENABLE_WEBTRANSPORT) != 1:
            notes.append("server did not send SETTINGS_ENABLE_WEBTRANSPORT=1")
        sessions = [WtSession(proto, args, i) for i in range(k)]
        for s in sessions:
            if proto.is_closed:
                break
            s.send_connect()
        await asyncio.gather(*(s.wait_response() for s in sessions if s.st is not None))
        if args.flood_uni and sessions[0].st is not None:
            common["flood"] = await wt_flood_uni(proto, sessions[0], args.flood_uni, args.timeout)
        results = await asyncio.gather(*(wt_run_session(s, plan) for s in sessions))
        per: list[dict[str, Any]] = []
        for s, r in zip(sessions, results):
            d = s.summary()
            d.update(r)
            d["errors"] = s.errors
            per.append(d)
        out: dict[str, Any]
        if k == 1:
            out = per[0]
        else:
            out = {"concurrent_sessions": k, "statuses": [d["status"] for d in per],
                   "ok_sessions": sum(1 for s in sessions if s.accepted and not s.errors),
                   "sessions": per,
                   "errors": [f"session {i}: {e}" for i, d in enumerate(per) for e in d["errors"]]}
        out["errors"] = notes + out["errors"]
        out["path"] = args.path
        out.update(common)
        # datagrams / streams that belong to no session we opened
        known = {s.sid for s in sessions}
        out["stray_datagrams"] = sum(1 for sid, _ in proto.h3_datagrams if sid not in known)
        out["stray_streams"] = sorted(sid for sid, ws in proto.wt_streams.items()
                                      if ws.session_id not in known)
        out["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 1)
        out.update(proto.close_info())
        if proto.local_close is not None:
            out["errors"].append(f"our aioquic closed the connection: {proto.local_close}")
        if args.wt_followup:
            out.update(await followup(args, proto))
        return out


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


class JsonArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(json.dumps({"error": f"usage: {message}"}))
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, required=True)
    common.add_argument("--insecure", dest="verify", action="store_false", default=False,
                        help="do not verify the server certificate (default)")
    common.add_argument("--verify", dest="verify", action="store_true",
                        help="verify the server certificate (use --cafile)")
    common.add_argument("--cafile", default=None)
    common.add_argument("--server-name", default="localhost", help="TLS SNI (default localhost)")
    common.add_argument("--certfile", default=None, help="client certificate (PEM) for mutual TLS")
    common.add_argument("--keyfile", default=None, help="its private key (PEM)")
    common.add_argument("--secrets-log", default=None,
                        help="append TLS secrets in the NSS key log format (like SSLKEYLOGFILE)")
    common.add_argument("--authority", default=None, help=":authority (default localhost:PORT)")
    common.add_argument("--timeout", type=float, default=10.0,
                        help="bound for each wait (handshake, each request, reactions)")
    common.add_argument("--hard-timeout", type=float, default=None,
                        help="watchdog for the whole run (default derived from --timeout)")
    common.add_argument("--followup-path", default="/")
    common.add_argument("--no-followup", action="store_true")
    common.add_argument("--verbose", action="store_true", help="aioquic logs on stderr")

    p = JsonArgParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=JsonArgParser)

    r = sub.add_parser("request", parents=[common])
    r.add_argument("--method", default="GET")
    r.add_argument("--path", default="/")
    r.add_argument("--header", action="append", default=[], help="'name: value' (repeatable)")
    r.add_argument("--keep-header-case", action="store_true",
                   help="do not lowercase header names (hostile tests)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--body")
    g.add_argument("--body-size", type=int)
    g.add_argument("--body-file")
    r.add_argument("--add-content-length", action="store_true")
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--concurrency", type=int, default=1)
    r.add_argument("--connections", type=int, default=1)

    rs = sub.add_parser("resume", parents=[common])
    rs.add_argument("--first-path", default="/")
    rs.add_argument("--method", default="GET")
    rs.add_argument("--path", default="/")
    rb = rs.add_mutually_exclusive_group()
    rb.add_argument("--body")
    rb.add_argument("--body-size", type=int)
    rb.add_argument("--body-file")

    o = sub.add_parser("oversized-headers", parents=[common])
    o.add_argument("--size", type=int, required=True)
    o.add_argument("--name", default="x-oversized")
    o.add_argument("--header-count", type=int, default=1,
                   help="send this many such headers (named NAME-i)")
    o.add_argument("--path", default="/")

    h = sub.add_parser("huge-headers-frame", parents=[common])
    h.add_argument("--claimed-length", type=int, default=2**40)
    h.add_argument("--send", type=int, default=4 * 1024 * 1024)
    h.add_argument("--chunk", type=int, default=64 * 1024)
    h.add_argument("--stall", type=float, default=1.0,
                   help="stop feeding after no flow-control progress for this long")

    m = sub.add_parser("reset-mid-request", parents=[common])
    m.add_argument("--path", default="/")
    m.add_argument("--body-size", type=int, default=64 * 1024)
    m.add_argument("--also-stop-sending", action="store_true")

    w = sub.add_parser("raw-stream", parents=[common])
    w.add_argument("--hex", required=True)
    w.add_argument("--fin", action="store_true")
    w.add_argument("--uni", action="store_true", help="use a client unidirectional stream")
    w.add_argument("--wait", type=float, default=2.0, help="max wait for a reaction")

    rh = sub.add_parser("raw-headers", parents=[common])
    rh.add_argument("--field", action="append", default=[],
                    help="'name: value' field line, sent exactly (repeatable, order kept)")
    rh.add_argument("--data", action="append", default=[], help="a DATA frame payload (repeatable)")
    rh.add_argument("--trailer", action="append", default=[],
                    help="'name: value' line of a trailer section (repeatable)")
    rh.add_argument("--no-fin", action="store_true", help="leave the request stream open")
    rh.add_argument("--wait", type=float, default=2.0, help="max wait for a reaction")

    s = sub.add_parser("many-streams", parents=[common])
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--path", default="/")

    dg = argparse.ArgumentParser(add_help=False)
    dg.add_argument("--count", type=int, required=True, help="datagrams to send")
    dg.add_argument("--size", type=int, required=True,
                    help="payload bytes per datagram (4-byte BE seq + pattern)")
    dg.add_argument("--interval-ms", type=float, default=0.0, help="pause between sends")
    dg.add_argument("--wait", type=float, default=2.0,
                    help="max wait for echoes after the last send (capped by --timeout)")
    dg.add_argument("--max-datagram-frame-size", type=int, default=65536,
                    help="our max_datagram_frame_size transport parameter")
    dg.add_argument("--max-udp-payload", type=int, default=None,
                    help="aioquic max_datagram_size (UDP payload per packet, default 1200); "
                         "raise it to send DATAGRAM frames larger than ~1150 bytes")

    qd = sub.add_parser("quic-datagram", parents=[common, dg])
    qd.set_defaults(quic_datagrams=True, raw_datagrams=True, h3_datagram_setting=False)
    qd.add_argument("--h3-datagram-setting", dest="h3_datagram_setting", action="store_true",
                    help="also advertise SETTINGS_H3_DATAGRAM=1 (default: not advertised)")
    qd.add_argument("--no-h3-datagram", dest="h3_datagram_setting", action="store_false",
                    help="do not advertise SETTINGS_H3_DATAGRAM (the default)")

    hd = sub.add_parser("h3-datagram", parents=[common, dg])
    hd.set_defaults(quic_datagrams=True, raw_datagrams=False)
    hd.add_argument("--path", default="/")
    hd.add_argument("--method", default=None,
                    help="default CONNECT with --protocol, else POST")
    hd.add_argument("--protocol", default=None, help=":protocol (extended CONNECT), e.g. connect-udp")
    hd.add_argument("--header", action="append", default=[], help="'name: value' (repeatable)")
    hd.add_argument("--no-capsule-protocol", action="store_true",
                    help="do not add 'capsule-protocol: ?1' for --protocol connect-udp")
    hd.add_argument("--no-h3-datagram-setting", dest="h3_datagram_setting", action="store_false",
                    default=True, help="do not advertise SETTINGS_H3_DATAGRAM=1")
    hd.add_argument("--webtransport-setting", dest="webtransport_setting", action="store_true",
                    help="also advertise ENABLE_WEBTRANSPORT=1 (aioquic enable_webtransport)")

    wt = sub.add_parser("wt", parents=[common],
                        help="WebTransport (draft-02) session against a WT echo server")
    # Not no_followup here: set_defaults would change the shared --no-followup action of the
    # common parent parser, i.e. of every subcommand.
    wt.set_defaults(quic_datagrams=True, raw_datagrams=False, h3_datagram_setting=True,
                    webtransport_setting=True)
    wt.add_argument("--path", default="/wt/echo")
    wt.add_argument("--origin", default=None, help="send an origin header (Chromium does)")
    wt.add_argument("--safari", action="store_true",
                    help="Safari's handshake: its SETTINGS (no ENABLE_WEBTRANSPORT), no draft-02 "
                         "header; checks the server's SETTINGS are what Safari needs")
    wt.add_argument("--draft15", action="store_true",
                    help="draft-15/16: SETTINGS_WT_ENABLED and limits, :protocol = webtransport-h3, "
                         "no draft-02 header (written from the draft text)")
    wt.add_argument("--initial-max-data", type=int, default=None, metavar="B",
                    help="with --draft15: our SETTINGS_WT_INITIAL_MAX_DATA (default 1 MiB); "
                         "we never raise it with WT_MAX_DATA")
    wt.add_argument("--initial-max-streams-uni", type=int, default=None, metavar="N",
                    help="with --draft15: our SETTINGS_WT_INITIAL_MAX_STREAMS_UNI (default 100); "
                         "we never raise it with WT_MAX_STREAMS")
    wt.add_argument("--flood-uni", type=int, default=0, metavar="N",
                    help="after the response, open N uni streams ignoring WT_MAX_STREAMS and "
                         "report how the CONNECT stream ended")
    wt.add_argument("--header", action="append", default=[], help="'name: value' (repeatable)")
    wt.add_argument("--datagrams", type=int, default=None, metavar="N",
                    help="send N session datagrams and count the intact echoes")
    wt.add_argument("--datagram-size", type=int, default=64,
                    help="payload bytes per datagram (4-byte BE seq + pattern)")
    wt.add_argument("--datagram-interval-ms", type=float, default=0.0)
    wt.add_argument("--datagram-wait", type=float, default=2.0,
                    help="max wait for echoes after the last send (capped by --timeout)")
    wt.add_argument("--bidi-bytes", type=int, default=None, metavar="B",
                    help="echo B pattern bytes over one client bidi stream")
    wt.add_argument("--uni-bytes", type=int, default=None, metavar="B",
                    help="send B bytes on a client uni stream, expect a server uni stream back")
    wt.add_argument("--server-bidi", action="store_true",
                    help="read the server-initiated bidi stream, answer 'reply:'+text + FIN")
    wt.add_argument("--close-code", type=int, default=None,
                    help="at the end send CLOSE_WEBTRANSPORT_SESSION with this code + FIN")
    wt.add_argument("--close-reason", default=None)
    wt.add_argument("--expect-close", action="store_true",
                    help="wait for the server's CLOSE_WEBTRANSPORT_SESSION capsule / FIN")
    wt.add_argument("--concurrent-sessions", type=int, default=1, metavar="K",
                    help="K sessions on one connection, run in parallel; each does the "
                         "requested ops (--datagrams defaults to 4, --bidi-bytes to 4096)")
    wt.add_argument("--max-datagram-frame-size", type=int, default=65536,
                    help="our max_datagram_frame_size transport parameter")
    wt.add_argument("--max-udp-payload", type=int, default=None,
                    help="aioquic max_datagram_size (raise it for datagrams over ~1150 bytes)")
    wt.add_argument("--followup", dest="wt_followup", action="store_true",
                    help="GET --followup-path on the same connection at the end")
    return p


async def cmd_resume(args: argparse.Namespace) -> dict[str, Any]:
    """GET --first-path to get a session ticket, then resume on a new connection and send
    the request at once (in 0-RTT when the ticket allows early data)."""
    tickets: list[Any] = []
    async with open_conn(args, on_ticket=tickets.append) as proto:
        first = await simple_get(args, proto, args.first_path)
        await wait_until(proto, lambda: bool(tickets), time.monotonic() + args.timeout)
    if not tickets:
        return {"first": first, "ticket": False}
    ticket = tickets[-1]
    body = request_body(args)
    headers = build_headers(args, args.method.upper(), args.path, [])
    async with open_conn(args, ticket=ticket, wait=False) as proto:
        st = start_request(proto, headers, body)
        try:
            await asyncio.wait_for(st.done.wait(), args.timeout)
        except asyncio.TimeoutError:
            pass
        tls = proto._quic.tls
        return {
            "first": first,
            "ticket": True,
            "ticket_allows_early_data": ticket.max_early_data_size is not None,
            "session_resumed": bool(getattr(tls, "session_resumed", False)),
            "early_data_accepted": bool(getattr(tls, "early_data_accepted", False)),
            "result": stream_result(proto, st),
        }


SCENARIOS = {
    "request": cmd_request,
    "resume": cmd_resume,
    "oversized-headers": cmd_oversized_headers,
    "huge-headers-frame": cmd_huge_headers_frame,
    "reset-mid-request": cmd_reset_mid_request,
    "raw-stream": cmd_raw_stream,
    "raw-headers": cmd_raw_headers,
    "many-streams": cmd_many_streams,
    "quic-datagram": cmd_quic_datagram,
    "h3-datagram": cmd_h3_datagram,
    "wt": cmd_wt,
}


def default_hard_timeout(args: argparse.Namespace) -> float:
    t = args.timeout
    if args.cmd == "request":
        per_conn = -(-max(1, args.repeat) // max(1, args.connections))
        rounds = -(-per_conn // max(1, args.concurrency))
        return t * (rounds + 1) + 15
    if args.cmd in ("quic-datagram", "h3-datagram"):
        return t * 5 + 15 + max(0, args.count) * max(0.0, args.interval_ms) / 1000.0 + args.wait
    if args.cmd == "wt":
        ops = 8 + (args.datagrams or 0) * max(0.0, args.datagram_interval_ms) / 1000.0
        return t * ops + 15 + args.datagram_wait
    return t * 5 + 15


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "initial_max_streams_uni", None) is not None:
        DRAFT15_CLIENT_SETTINGS[WT_INITIAL_MAX_STREAMS_UNI] = args.initial_max_streams_uni
    logging.basicConfig(stream=sys.stderr,
                        level=logging.INFO if args.verbose else logging.CRITICAL)
    hard = args.hard_timeout or default_hard_timeout(args)

    async def runner() -> dict[str, Any]:
        return await asyncio.wait_for(SCENARIOS[args.cmd](args), hard)

    try:
        out = asyncio.run(runner())
    except ConnectFailed as exc:
        emit({"scenario": args.cmd, "error": f"connect_failed: {exc}"})
        return 2
    except asyncio.TimeoutError:
        emit({"scenario": args.cmd, "error": f"hard_timeout after {hard}s"})
        return 3
    except Exception as exc:  # our own bug
        traceback.print_exc(file=sys.stderr)
        emit({"scenario": args.cmd, "error": f"internal: {exc!r}"})
        return 1
    out = {"scenario": args.cmd, **out}
    emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
