"""An independent WebTransport peer of the newer draft for the tests: pywebtransport (PyPI,
0.8.1: the last release that runs on Python 3.11; it speaks the draft-13 dialect:
`:protocol = webtransport` without the draft-02 header, SETTINGS_WT_MAX_SESSIONS 0x14e9cd29,
SETTINGS_WT_INITIAL_MAX_*, capsule flow control with WT_MAX_DATA / WT_MAX_STREAMS).

One interop finding: pywebtransport 0.8.1 writes capsules on the CONNECT stream as raw bytes,
not inside HTTP/3 DATA frames as RFC 9297 §3.1 has them, and refuses a DATA frame there. Its
CLOSE capsule therefore reaches h3 as a frame of an unknown type (skipped, RFC 9114 §9), so its
sessions end for us with the FIN alone (code 0); and it cannot read the capsules we send.

    pywt_peer.py client --port P [--path /wt/echo] [--close-code N --close-reason R]
        Runs the echo protocol of __test__/webtransport.spec.mjs against our server and
        prints a JSON report.
    pywt_peer.py server [--cert C --key K]
        Serves /echo (datagrams and bidi streams echoed, a uni stream answered on a new uni
        stream) and /close (closed at once with code 9 "py-bye"); prints {"port": N} on its
        first line, then one JSON line per session event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import ssl
import sys
from typing import Any

from pywebtransport import ClientConfig, ServerApp, ServerConfig, WebTransportClient

# Our limits for the peer, non-zero so that flow control is on (draft-15 §5.1).
LIMITS = {"initial_max_data": 16 << 20, "initial_max_streams_bidi": 100, "initial_max_streams_uni": 100}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


async def client(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": []}
    config = ClientConfig(verify_mode=ssl.CERT_NONE, connect_timeout=10, read_timeout=10, **LIMITS)
    async with WebTransportClient(config=config) as wt:
        session = await wt.connect(url=f"https://127.0.0.1:{args.port}{args.path}")
        out["connected"] = True
        dg = await session.create_datagram_transport()
        await dg.send(data=b"dgram-1")
        try:
            out["datagram"] = (await dg.receive(timeout=5)).decode()
        except Exception as e:  # noqa: BLE001 - reported, the test judges
            out["errors"].append(f"datagram: {e!r}")
        body = pattern(args.bidi_bytes)
        bidi = await session.create_bidirectional_stream()
        await bidi.write(data=body, end_stream=True)
        echoed = await asyncio.wait_for(bidi.read_all(), 10)
        out["bidi"] = {"sent": sha(body), "recv": sha(echoed), "len": len(echoed)}
        uni_body = pattern(args.uni_bytes)
        uni = await session.create_unidirectional_stream()
        await uni.write(data=uni_body, end_stream=True)
        got = {}
        async def incoming() -> None:
            async for s in session.incoming_streams():
                data = await s.read_all()
                if hasattr(s, "write"):
                    got["server_bidi"] = data.decode(errors="replace")
                    await s.write(data=b"reply:" + data, end_stream=True)
                else:
                    got["uni"] = sha(data)
                if "uni" in got and "server_bidi" in got:
                    return
        try:
            await asyncio.wait_for(incoming(), 10)
        except Exception as e:  # noqa: BLE001
            out["errors"].append(f"incoming: {e!r}")
        out["uni"] = {"sent": sha(uni_body), "recv": got.get("uni")}
        out["server_bidi"] = got.get("server_bidi")
        await asyncio.sleep(0.2)
        await session.close(code=args.close_code, reason=args.close_reason, close_connection=False)
        await asyncio.sleep(0.3)
    return out


def free_udp_port() -> int:
    """pywebtransport refuses port 0: take one the kernel hands out (and hope it stays free)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(args: argparse.Namespace) -> None:
    config = ServerConfig(bind_host="127.0.0.1", bind_port=free_udp_port(), certfile=args.cert,
                          keyfile=args.key, **LIMITS)
    app = ServerApp(config=config)

    def emit(obj: dict[str, Any]) -> None:
        print(json.dumps(obj), flush=True)

    @app.route(path="/echo")
    async def echo(session: Any) -> None:
        emit({"session": "echo", "headers": {k: v for k, v in session.headers.items() if isinstance(v, str)}})
        dg = await session.create_datagram_transport()

        async def datagrams() -> None:
            while True:
                d = await dg.receive()
                await dg.send(data=d)

        async def streams() -> None:
            async for s in session.incoming_streams():
                asyncio.create_task(serve_stream(session, s))

        async def serve_stream(session: Any, s: Any) -> None:
            data = await s.read_all()
            if hasattr(s, "write"):
                await s.write(data=data, end_stream=True)
            else:
                u = await session.create_unidirectional_stream()
                await u.write(data=data, end_stream=True)
            emit({"stream": "bidi" if hasattr(s, "write") else "uni", "len": len(data)})

        tasks = [asyncio.create_task(datagrams()), asyncio.create_task(streams())]
        await session.wait_closed()
        emit({"closed": "echo"})
        for t in tasks:
            t.cancel()

    @app.route(path="/close")
    async def close(session: Any) -> None:
        await asyncio.sleep(0.2)
        await session.close(code=9, reason="py-bye", close_connection=False)

    async def main() -> None:
        async with app:
            await app.server.listen()
            emit({"port": config.bind_port})
            await app.server.serve_forever()

    asyncio.run(main())


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--path", default="/wt/echo")
    c.add_argument("--bidi-bytes", type=int, default=100_000)
    c.add_argument("--uni-bytes", type=int, default=5000)
    c.add_argument("--close-code", type=int, default=0)
    c.add_argument("--close-reason", default="")
    s = sub.add_parser("server")
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    args = p.parse_args()
    if args.cmd == "client":
        try:
            out = asyncio.run(client(args))
        except Exception as e:  # noqa: BLE001 - the report says what failed
            out = {"fatal": repr(e)}
        print(json.dumps(out))
    else:
        server(args)


if __name__ == "__main__":
    sys.exit(main())
