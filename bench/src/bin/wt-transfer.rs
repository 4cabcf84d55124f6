//! `wt-transfer`: one WebTransport bidirectional-stream echo transfer, byte-exact checked, for the
//! webtransport section of the napi-h3 benchmark.
//!
//! `wt-transfer --url https://127.0.0.1:PORT/echo [--bytes N (256 MiB)] [--chunk BYTES (65536)]
//!              [--timeout SECS (120)] [--sni NAME]`
//!
//! Over one quinn connection (ALPN "h3", certificate NOT verified) it speaks just enough HTTP/3 by
//! hand to open a WebTransport session: h3 0.0.8's client builder cannot send
//! SETTINGS_ENABLE_WEBTRANSPORT, which WebTransport servers (h3-webtransport's
//! `WebTransportSession::accept` among them) require of the client. So:
//!
//! 1. control stream with SETTINGS (ENABLE_CONNECT_PROTOCOL, H3_DATAGRAM, ENABLE_WEBTRANSPORT = 1);
//!    waits for the server's SETTINGS;
//! 2. extended CONNECT on a request stream (`:method CONNECT`, `:protocol webtransport`,
//!    `:scheme https`, `:authority`, `:path`, `origin`, `sec-webtransport-http3-draft02: 1`;
//!    QPACK with the static table and literals only), waits for `:status 200` and keeps that
//!    stream open (it is the session);
//! 3. opens a raw QUIC bidirectional stream, writes varint 0x41 + varint session id (= the
//!    CONNECT stream's id) and then N bytes of the pattern `byte[i] = i % 251`, finishes it, and
//!    reads the echo concurrently, hashing it with SHA-256;
//! 4. compares the echo's SHA-256 (and length) with that of the bytes sent.
//!
//! Prints `MEASURE_START` / `MEASURE_END` on stderr around step 3 (so a driver can sample the
//! server's CPU exactly there) and one JSON line on stdout:
//! `{"status":200,"session_id":0,"sent":N,"received":N,"sha256_sent":"..","sha256_received":"..",
//!   "ok":true,"mb_per_s":..,"transfer_ms":..,"setup_ms":..,"ms":..,"server_settings":{..},
//!   "error":null}`. `transfer_ms` runs from opening the WebTransport stream until the echo's FIN
//! (`mb_per_s` = N / that, in each direction: N bytes go out and the same N come back);
//! `setup_ms` is the QUIC handshake + SETTINGS + CONNECT before it; `ms` the whole run. Exit
//! status 0 iff `ok`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

const SETTINGS_ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
const SETTINGS_H3_DATAGRAM: u64 = 0x33;
const SETTINGS_ENABLE_WEBTRANSPORT: u64 = 0x2b60_3742;
const FRAME_DATA: u64 = 0x00;
const FRAME_HEADERS: u64 = 0x01;
const FRAME_SETTINGS: u64 = 0x04;
const STREAM_CONTROL: u64 = 0x00;
/// WEBTRANSPORT_STREAM: the first varint on a WebTransport bidirectional stream.
const WT_BIDI: u64 = 0x41;
const H3_NO_ERROR: u32 = 0x100;

const USAGE: &str = "usage: wt-transfer --url https://127.0.0.1:PORT/echo [--bytes N (268435456)] \
[--chunk BYTES (65536)] [--timeout SECS (120)] [--sni NAME] \
[--datagrams SECS (datagram echo instead of the stream) [--warmup SECS (1)] [--window W (256)] [--size BYTES (64)]]";

struct Opts {
    addr: SocketAddr,
    authority: String,
    path: String,
    server_name: String,
    bytes: u64,
    chunk: usize,
    timeout: Duration,
    /// Datagram mode: seconds measured (after `warmup`), datagrams in flight, payload bytes.
    datagrams: Option<f64>,
    warmup: f64,
    window: usize,
    size: usize,
}

fn parse() -> Result<Opts, String> {
    let args = napi_h3_bench::args::Args::parse(&["help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    const KNOWN: &[&str] = &[
        "url",
        "bytes",
        "chunk",
        "timeout",
        "sni",
        "datagrams",
        "warmup",
        "window",
        "size",
    ];
    if let Some(bad) = args.names().find(|n| !KNOWN.contains(n)) {
        return Err(format!("unknown option --{bad}"));
    }
    let target = napi_h3_bench::resolve_url(args.str("url").ok_or("--url is required")?)?;
    let authority = target.uri.authority().ok_or("--url needs a host")?.clone();
    let timeout: f64 = args.get_or("timeout", 120.0)?;
    if !(timeout > 0.0 && timeout <= 3600.0) {
        return Err("--timeout must be in (0, 3600]".into());
    }
    let chunk: usize = args.get_or("chunk", 64 * 1024)?;
    if chunk == 0 || chunk > 16 * 1024 * 1024 {
        return Err("--chunk must be in [1, 16 MiB]".into());
    }
    let datagrams: Option<f64> = match args.str("datagrams") {
        Some(v) => Some(v.parse().map_err(|_| "--datagrams must be seconds")?),
        None => None,
    };
    if datagrams.is_some_and(|d| !(d > 0.0 && d <= 600.0)) {
        return Err("--datagrams must be in (0, 600] seconds".into());
    }
    let size: usize = args.get_or("size", 64)?;
    if !(16..=1100).contains(&size) {
        return Err("--size must be in [16, 1100]".into());
    }
    let window: usize = args.get_or("window", 256)?;
    if window == 0 || window > 65536 {
        return Err("--window must be in [1, 65536]".into());
    }
    Ok(Opts {
        datagrams,
        warmup: args.get_or("warmup", 1.0)?,
        window,
        size,
        addr: target.addr,
        authority: authority.as_str().to_string(),
        path: target
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
        server_name: args.str("sni").unwrap_or(&target.host).to_string(),
        bytes: args.get_or("bytes", 256 * 1024 * 1024)?,
        chunk,
        timeout: Duration::from_secs_f64(timeout),
    })
}

// ---- QUIC varints and QPACK prefix integers ----------------------------------------------------

fn put_varint(b: &mut BytesMut, v: u64) {
    match v {
        0..=0x3f => b.put_u8(v as u8),
        0x40..=0x3fff => b.put_u16(0x4000 | v as u16),
        0x4000..=0x3fff_ffff => b.put_u32(0x8000_0000 | v as u32),
        _ => b.put_u64(0xc000_0000_0000_0000 | (v & 0x3fff_ffff_ffff_ffff)),
    }
}

fn get_varint(b: &mut impl Buf) -> Option<u64> {
    if !b.has_remaining() {
        return None;
    }
    let len = 1usize << (b.chunk()[0] >> 6);
    if b.remaining() < len {
        return None;
    }
    let mut v = u64::from(b.get_u8() & 0x3f);
    for _ in 1..len {
        v = (v << 8) | u64::from(b.get_u8());
    }
    Some(v)
}

/// RFC 7541 §5.1 integer with an `n`-bit prefix; `flags` holds the bits above the prefix.
fn put_prefix_int(b: &mut BytesMut, flags: u8, n: u32, mut v: u64) {
    let max = (1u64 << n) - 1;
    if v < max {
        b.put_u8(flags | v as u8);
        return;
    }
    b.put_u8(flags | max as u8);
    v -= max;
    while v >= 128 {
        b.put_u8((v % 128) as u8 | 0x80);
        v /= 128;
    }
    b.put_u8(v as u8);
}

fn get_prefix_int(b: &mut &[u8], n: u32) -> Option<u64> {
    let max = (1u64 << n) - 1;
    let (&first, rest) = b.split_first()?;
    *b = rest;
    let mut v = u64::from(first) & max;
    if v < max {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let (&c, rest) = b.split_first()?;
        *b = rest;
        v = v.checked_add(u64::from(c & 0x7f).checked_shl(shift)?)?;
        if c & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 56 {
            return None;
        }
    }
}

/// A QPACK string literal: H bit + 7-bit prefix length (never Huffman-encoded here).
fn put_str(b: &mut BytesMut, flags: u8, n: u32, s: &str) {
    put_prefix_int(b, flags, n, s.len() as u64);
    b.put_slice(s.as_bytes());
}

/// Reads a string literal whose H bit is `1 << n` of the first byte. Huffman-coded strings are
/// decoded only when they consist of digits (enough for a `:status`).
fn get_str(b: &mut &[u8], n: u32) -> Option<String> {
    let huffman = b.first()? & (1 << n) != 0;
    let len = get_prefix_int(b, n)? as usize;
    if b.len() < len {
        return None;
    }
    let (raw, rest) = b.split_at(len);
    *b = rest;
    if !huffman {
        return Some(String::from_utf8_lossy(raw).into_owned());
    }
    // HPACK Huffman codes of '0'..'9': 5 bits for 0-2, 6 bits for 3-9.
    const CODES: [(u32, u32); 10] = [
        (0b00000, 5),
        (0b00001, 5),
        (0b00010, 5),
        (0b011001, 6),
        (0b011010, 6),
        (0b011011, 6),
        (0b011100, 6),
        (0b011101, 6),
        (0b011110, 6),
        (0b011111, 6),
    ];
    let mut out = String::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &byte in raw {
        acc = (acc << 8) | u64::from(byte);
        bits += 8;
        'decode: loop {
            for (digit, &(code, len)) in CODES.iter().enumerate() {
                if bits >= len && ((acc >> (bits - len)) & ((1 << len) - 1)) as u32 == code {
                    out.push((b'0' + digit as u8) as char);
                    bits -= len;
                    acc &= (1u64 << bits) - 1;
                    continue 'decode;
                }
            }
            break;
        }
    }
    // Whatever is left must be EOS padding (all ones, < 8 bits).
    (bits < 8 && acc == (1u64 << bits) - 1).then_some(out)
}

/// QPACK static table entries with the name `:status` (RFC 9204 Appendix A).
fn static_status(index: u64) -> Option<&'static str> {
    Some(match index {
        24 => "103",
        25 => "200",
        26 => "304",
        27 => "404",
        28 => "503",
        63 => "100",
        64 => "204",
        65 => "206",
        66 => "302",
        67 => "400",
        68 => "403",
        69 => "421",
        70 => "425",
        71 => "500",
        _ => return None,
    })
}

/// The `:status` of a response field section, or why it cannot be read. The dynamic table is
/// never used: SETTINGS_QPACK_MAX_TABLE_CAPACITY is 0 (the default), so servers cannot use it.
fn decode_status(mut b: &[u8]) -> Result<u16, String> {
    let b = &mut b;
    let ric = get_prefix_int(b, 8).ok_or("truncated field section prefix")?;
    get_prefix_int(b, 7).ok_or("truncated field section prefix")?;
    if ric != 0 {
        return Err("response uses the QPACK dynamic table".into());
    }
    while let Some(&first) = b.first() {
        let value: Option<String> = if first & 0x80 != 0 {
            // Indexed field line; T (0x40) = static.
            let idx = get_prefix_int(b, 6).ok_or("truncated")?;
            (first & 0x40 != 0)
                .then(|| static_status(idx))
                .flatten()
                .map(str::to_string)
        } else if first & 0x40 != 0 {
            // Literal field line with name reference.
            let idx = get_prefix_int(b, 4).ok_or("truncated")?;
            let v = get_str(b, 7).ok_or("undecodable value")?;
            (first & 0x10 != 0 && static_status(idx).is_some()).then_some(v)
        } else if first & 0x20 != 0 {
            // Literal field line with literal name (H bit 0x08, 3-bit prefix).
            let name = get_str(b, 3).ok_or("undecodable name")?;
            let v = get_str(b, 7).ok_or("undecodable value")?;
            (name == ":status").then_some(v)
        } else {
            return Err("response uses the QPACK dynamic table".into());
        };
        if let Some(v) = value {
            return v.parse().map_err(|_| format!("bad :status {v:?}"));
        }
    }
    Err("no :status in the response".into())
}

fn connect_headers(authority: &str, path: &str) -> Bytes {
    let mut fs = BytesMut::new();
    fs.put_u8(0); // Required Insert Count
    fs.put_u8(0); // Delta Base
    put_prefix_int(&mut fs, 0xc0, 6, 15); // :method CONNECT (static 15)
    put_prefix_int(&mut fs, 0xc0, 6, 23); // :scheme https (static 23)
    put_prefix_int(&mut fs, 0x50, 4, 0); // :authority (static name 0) ...
    put_str(&mut fs, 0, 7, authority);
    put_prefix_int(&mut fs, 0x50, 4, 1); // :path (static name 1) ...
    put_str(&mut fs, 0, 7, path);
    for (name, value) in [
        (":protocol", "webtransport"),
        ("sec-webtransport-http3-draft02", "1"),
    ] {
        put_str(&mut fs, 0x20, 3, name); // literal name, not Huffman
        put_str(&mut fs, 0, 7, value);
    }
    put_prefix_int(&mut fs, 0x50, 4, 90); // origin (static name 90) ...
    put_str(&mut fs, 0, 7, &format!("https://{authority}"));
    let mut frame = BytesMut::new();
    put_varint(&mut frame, FRAME_HEADERS);
    put_varint(&mut frame, fs.len() as u64);
    frame.put(fs);
    frame.freeze()
}

// ---- HTTP/3 frames over a quinn receive stream --------------------------------------------------

struct FrameReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
}

impl FrameReader {
    fn new(recv: quinn::RecvStream) -> Self {
        FrameReader {
            recv,
            buf: BytesMut::new(),
        }
    }

    /// Reads until `n` bytes are buffered; false at the end of the stream.
    async fn fill(&mut self, n: usize) -> Result<bool, String> {
        while self.buf.len() < n {
            match self.recv.read_chunk(usize::MAX, true).await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c.bytes),
                Ok(None) => return Ok(false),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(true)
    }

    async fn varint(&mut self) -> Result<Option<u64>, String> {
        if !self.fill(1).await? {
            return Ok(None);
        }
        let len = 1usize << (self.buf[0] >> 6);
        if !self.fill(len).await? {
            return Err("stream ended inside a varint".into());
        }
        Ok(get_varint(&mut self.buf))
    }

    /// The next frame (type, payload), or None at the end of the stream.
    async fn frame(&mut self) -> Result<Option<(u64, Bytes)>, String> {
        let Some(ty) = self.varint().await? else {
            return Ok(None);
        };
        let len = self
            .varint()
            .await?
            .ok_or("stream ended inside a frame header")? as usize;
        if len > 1 << 20 {
            return Err(format!("frame of type {ty:#x} too large ({len} bytes)"));
        }
        if !self.fill(len).await? {
            return Err("stream ended inside a frame".into());
        }
        Ok(Some((ty, self.buf.split_to(len).freeze())))
    }
}

/// Reads the server's unidirectional streams: the control stream's SETTINGS go to `settings`;
/// everything else (QPACK streams, grease) is drained and ignored.
async fn server_uni_streams(
    conn: quinn::Connection,
    settings: oneshot::Sender<Result<BTreeMap<u64, u64>, String>>,
) {
    let settings = std::sync::Arc::new(std::sync::Mutex::new(Some(settings)));
    while let Ok(recv) = conn.accept_uni().await {
        let settings = settings.clone();
        tokio::spawn(async move {
            let mut r = FrameReader::new(recv);
            if let Ok(Some(STREAM_CONTROL)) = r.varint().await {
                let tx = settings.lock().unwrap_or_else(|p| p.into_inner()).take();
                let res = match r.frame().await {
                    Ok(Some((FRAME_SETTINGS, mut p))) => {
                        let mut m = BTreeMap::new();
                        while p.has_remaining() {
                            match (get_varint(&mut p), get_varint(&mut p)) {
                                (Some(k), Some(v)) => {
                                    m.insert(k, v);
                                }
                                _ => break,
                            }
                        }
                        Ok(m)
                    }
                    Ok(Some((ty, _))) => Err(format!(
                        "server control stream starts with frame type {ty:#x}, not SETTINGS"
                    )),
                    Ok(None) => Err("server control stream ended".into()),
                    Err(e) => Err(format!("server control stream: {e}")),
                };
                if let Some(tx) = tx {
                    let _ = tx.send(res);
                }
            }
            // Keep reading (a critical stream must not be stopped) until it ends.
            while let Ok(Some(_)) = r.recv.read_chunk(usize::MAX, true).await {}
        });
    }
}

#[derive(Default)]
struct Report {
    status: Option<u16>,
    session_id: Option<u64>,
    sent: u64,
    received: u64,
    sha256_sent: String,
    sha256_received: String,
    setup_ms: Option<f64>,
    transfer_ms: Option<f64>,
    server_settings: BTreeMap<u64, u64>,
    error: Option<String>,
    dgram: Option<DgramReport>,
}

/// Datagram mode's counts, over the measurement window.
#[derive(Default)]
struct DgramReport {
    echoes: u64,
    sent: u64,
    lost: u64,
    corrupt: u64,
    seconds: f64,
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `len + 251` bytes of the pattern, so that `[off % 251 ..][.. n]` is the pattern at offset `off`.
fn pattern_buf(len: usize) -> Bytes {
    (0..len + 251)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn expected_sha(pattern: &Bytes, chunk: usize, total: u64) -> String {
    let mut h = Sha256::new();
    let mut off = 0u64;
    while off < total {
        let n = (total - off).min(chunk as u64) as usize;
        let s = (off % 251) as usize;
        h.update(&pattern[s..s + n]);
        off += n as u64;
    }
    hex(&h.finalize())
}

async fn run(o: &Opts, r: &mut Report) -> Result<(), String> {
    let pattern = pattern_buf(o.chunk);
    // The hash of what will be sent, before any network activity (not in the measured window).
    r.sha256_sent = expected_sha(&pattern, o.chunk, o.bytes);
    let t_setup = Instant::now();

    let bind = napi_h3_bench::client_bind_addr(o.addr);
    let mut ep = quinn::Endpoint::client(bind).map_err(|e| format!("socket: {e}"))?;
    ep.set_default_client_config(napi_h3_bench::insecure_client_config()?);
    let conn = ep
        .connect(o.addr, &o.server_name)
        .map_err(|e| format!("connect: {e}"))?
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The control stream must outlive the session: dropping a quinn SendStream finishes it, and a
    // closed control stream is a connection error (H3_CLOSED_CRITICAL_STREAM) for the server.
    let mut control = None;
    let res = session_and_transfer(o, r, t_setup, &conn, &pattern, &mut control).await;
    conn.close(quinn::VarInt::from_u32(H3_NO_ERROR), b"done");
    drop(control);
    let _ = tokio::time::timeout(Duration::from_millis(200), ep.wait_idle()).await;
    res
}

async fn session_and_transfer(
    o: &Opts,
    r: &mut Report,
    t_setup: Instant,
    conn: &quinn::Connection,
    pattern: &Bytes,
    control_slot: &mut Option<quinn::SendStream>,
) -> Result<(), String> {
    // 1. SETTINGS both ways.
    let (settings_tx, settings_rx) = oneshot::channel();
    tokio::spawn(server_uni_streams(conn.clone(), settings_tx));
    let control = control_slot.insert(
        conn.open_uni()
            .await
            .map_err(|e| format!("open control stream: {e}"))?,
    );
    {
        let mut s = BytesMut::new();
        for (k, v) in [
            (SETTINGS_ENABLE_CONNECT_PROTOCOL, 1),
            (SETTINGS_H3_DATAGRAM, 1),
            (SETTINGS_ENABLE_WEBTRANSPORT, 1),
        ] {
            put_varint(&mut s, k);
            put_varint(&mut s, v);
        }
        let mut b = BytesMut::new();
        put_varint(&mut b, STREAM_CONTROL);
        put_varint(&mut b, FRAME_SETTINGS);
        put_varint(&mut b, s.len() as u64);
        b.put(s);
        control
            .write_all(&b)
            .await
            .map_err(|e| format!("control stream: {e}"))?;
    }
    r.server_settings = tokio::time::timeout(Duration::from_secs(10), settings_rx)
        .await
        .map_err(|_| "no SETTINGS from the server within 10 s".to_string())?
        .map_err(|_| "server control stream not seen".to_string())??;
    if r.server_settings
        .get(&SETTINGS_ENABLE_WEBTRANSPORT)
        .copied()
        .unwrap_or(0)
        == 0
    {
        // Not fatal (a server may only send the newer WT_MAX_SESSIONS): the CONNECT decides.
        eprintln!("wt-transfer: note: the server's SETTINGS do not enable WebTransport (draft-02)");
    }

    // 2. Extended CONNECT; the stream stays open for the whole session.
    let (mut connect_send, connect_recv) = conn
        .open_bi()
        .await
        .map_err(|e| format!("open CONNECT stream: {e}"))?;
    let session_id = u64::from(connect_send.id());
    r.session_id = Some(session_id);
    connect_send
        .write_chunk(connect_headers(&o.authority, &o.path))
        .await
        .map_err(|e| format!("CONNECT: {e}"))?;
    let mut connect_recv = FrameReader::new(connect_recv);
    let status = loop {
        match connect_recv.frame().await? {
            Some((FRAME_HEADERS, p)) => break decode_status(&p)?,
            Some((FRAME_DATA, _)) => return Err("DATA before the CONNECT response".into()),
            Some(_) => continue, // unknown / grease frame types are ignored
            None => return Err("CONNECT stream ended without a response".into()),
        }
    };
    r.status = Some(status);
    if status != 200 {
        return Err(format!("CONNECT answered {status}"));
    }
    // Anything the server sends on the CONNECT stream (capsules) is read and ignored; the stream
    // ending means the server closed the session.
    let (closed_tx, mut closed_rx) = oneshot::channel::<String>();
    tokio::spawn(async move {
        let why = loop {
            match connect_recv.recv.read_chunk(usize::MAX, true).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    break "the server ended the CONNECT stream (session closed)".to_string()
                }
                Err(e) => break format!("CONNECT stream: {e}"),
            }
        };
        let _ = closed_tx.send(why);
    });
    r.setup_ms = Some(t_setup.elapsed().as_secs_f64() * 1000.0);

    if o.datagrams.is_some() {
        let d = tokio::select! {
            d = datagram_echo(o, conn, session_id) => d?,
            why = &mut closed_rx => {
                return Err(why.unwrap_or_else(|_| "CONNECT stream reader gone".into()));
            }
        };
        if d.echoes == 0 {
            r.dgram = Some(d);
            return Err("no datagram came back".into());
        }
        r.dgram = Some(d);
        return Ok(());
    }

    // 3. One WebTransport bidirectional stream: header, N bytes, FIN; echo read concurrently.
    eprintln!("MEASURE_START");
    let t1 = Instant::now();
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| format!("open WebTransport stream: {e}"))?;
    let upload = async {
        let mut h = BytesMut::new();
        put_varint(&mut h, WT_BIDI);
        put_varint(&mut h, session_id);
        send.write_chunk(h.freeze())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut off = 0u64;
        while off < o.bytes {
            let n = (o.bytes - off).min(o.chunk as u64) as usize;
            let s = (off % 251) as usize;
            send.write_chunk(pattern.slice(s..s + n))
                .await
                .map_err(|e| format!("write at {off}: {e}"))?;
            off += n as u64;
        }
        send.finish().map_err(|e| format!("finish: {e}"))?;
        Ok::<u64, String>(off)
    };
    let download = async {
        let mut h = Sha256::new();
        let mut got = 0u64;
        loop {
            match recv.read_chunk(usize::MAX, true).await {
                Ok(Some(c)) => {
                    h.update(&c.bytes);
                    got += c.bytes.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err((
                        got,
                        hex(&h.finalize()),
                        format!("read after {got} bytes: {e}"),
                    ))
                }
            }
        }
        Ok::<_, (u64, String, String)>((got, hex(&h.finalize())))
    };
    let transfer = async { tokio::join!(upload, download) };
    let (up, down) = tokio::select! {
        x = transfer => x,
        why = &mut closed_rx => {
            return Err(why.unwrap_or_else(|_| "CONNECT stream reader gone".into()));
        }
    };
    r.transfer_ms = Some(t1.elapsed().as_secs_f64() * 1000.0);
    eprintln!("MEASURE_END");
    let mut err = None;
    match up {
        Ok(n) => r.sent = n,
        Err(e) => err = Some(e),
    }
    match down {
        Ok((n, sha)) => {
            r.received = n;
            r.sha256_received = sha;
        }
        Err((n, sha, e)) => {
            r.received = n;
            r.sha256_received = sha;
            err.get_or_insert(e);
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    if r.received != r.sent {
        return Err(format!("echoed {} of {} bytes", r.received, r.sent));
    }
    if r.sha256_received != r.sha256_sent {
        return Err("the echo's SHA-256 differs from what was sent".into());
    }
    Ok(())
}

/// The session's datagrams (draft-ietf-webtrans-http3-02 §4.4: an HTTP datagram whose quarter
/// stream id names the CONNECT stream): `o.window` in flight, each carrying its sequence number
/// and a pattern; a new one goes out for every echo, or for one declared lost after 250 ms.
/// Counts echoes and losses between MEASURE_START and MEASURE_END.
async fn datagram_echo(
    o: &Opts,
    conn: &quinn::Connection,
    session_id: u64,
) -> Result<DgramReport, String> {
    const LOSS: Duration = Duration::from_millis(250);
    let mut prefix = BytesMut::new();
    put_varint(&mut prefix, session_id / 4);
    let prefix = prefix.freeze();
    let make = |seq: u64| {
        let mut b = BytesMut::with_capacity(prefix.len() + o.size);
        b.put_slice(&prefix);
        b.put_u64(seq);
        for i in 8..o.size {
            b.put_u8((seq as usize).wrapping_add(i) as u8);
        }
        b.freeze()
    };
    let valid = |p: &[u8]| -> Option<u64> {
        let p = p.strip_prefix(&prefix[..])?;
        if p.len() != o.size {
            return None;
        }
        let seq = u64::from_be_bytes(p[..8].try_into().ok()?);
        let ok = (8..o.size).all(|i| p[i] == (seq as usize).wrapping_add(i) as u8);
        ok.then_some(seq)
    };
    let mut out: std::collections::HashMap<u64, Instant> = Default::default();
    let mut next = 0u64;
    let send = |out: &mut std::collections::HashMap<u64, Instant>, next: &mut u64| {
        let seq = *next;
        *next += 1;
        out.insert(seq, Instant::now());
        conn.send_datagram(make(seq))
            .map_err(|e| format!("send_datagram: {e}"))
    };
    for _ in 0..o.window {
        send(&mut out, &mut next)?;
    }
    let start = Instant::now() + Duration::from_secs_f64(o.warmup);
    let end = start + Duration::from_secs_f64(o.datagrams.unwrap_or(1.0));
    let mut r = DgramReport::default();
    let (mut measuring, mut first_seq) = (false, u64::MAX);
    let mut sweep = tokio::time::interval(Duration::from_millis(50));
    loop {
        let now = Instant::now();
        if !measuring && now >= start {
            measuring = true;
            first_seq = next;
            eprintln!("MEASURE_START");
        }
        if now >= end {
            eprintln!("MEASURE_END");
            break;
        }
        tokio::select! {
            d = conn.read_datagram() => {
                let d = d.map_err(|e| format!("read_datagram: {e}"))?;
                match valid(&d) {
                    Some(seq) if out.remove(&seq).is_some() => {
                        if measuring {
                            r.echoes += 1;
                        }
                        send(&mut out, &mut next)?;
                    }
                    Some(_) => {}
                    None => r.corrupt += 1,
                }
            }
            _ = sweep.tick() => {
                let lost: Vec<u64> = out.iter().filter(|(_, t)| t.elapsed() > LOSS).map(|(s, _)| *s).collect();
                for seq in lost {
                    out.remove(&seq);
                    if seq >= first_seq {
                        r.lost += 1;
                    }
                    send(&mut out, &mut next)?;
                }
            }
        }
    }
    r.sent = next.saturating_sub(first_seq);
    r.seconds = o.datagrams.unwrap_or(1.0);
    Ok(r)
}

fn main() {
    let o = parse().unwrap_or_else(|e| {
        eprintln!("wt-transfer: {e}\n{USAGE}");
        std::process::exit(2);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("wt-transfer: runtime: {e}");
            std::process::exit(2);
        });
    let t0 = Instant::now();
    let mut r = Report::default();
    let res = rt.block_on(async { tokio::time::timeout(o.timeout, run(&o, &mut r)).await });
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => r.error = Some(e),
        Err(_) => r.error = Some(format!("timeout after {} s", o.timeout.as_secs_f64())),
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    let ok = r.error.is_none();
    let mb_per_s = r
        .transfer_ms
        .filter(|_| ok)
        .map(|ms| r.sent as f64 / 1e6 / (ms / 1000.0));
    let settings: Vec<String> = r
        .server_settings
        .iter()
        .map(|(k, v)| format!("\"{k:#x}\":{v}"))
        .collect();
    let num = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v:.1}"));
    let dgram = r.dgram.as_ref().map_or("null".into(), |d| {
        format!(
            "{{\"echoes\":{},\"eps\":{:.1},\"sent\":{},\"lost\":{},\"corrupt\":{},\"window\":{},\"size\":{}}}",
            d.echoes,
            d.echoes as f64 / d.seconds,
            d.sent,
            d.lost,
            d.corrupt,
            o.window,
            o.size
        )
    });
    println!(
        "{{\"status\":{},\"session_id\":{},\"sent\":{},\"received\":{},\"sha256_sent\":{},\"sha256_received\":{},\"ok\":{},\"mb_per_s\":{},\"transfer_ms\":{},\"setup_ms\":{},\"ms\":{:.1},\"chunk\":{},\"server_settings\":{{{}}},\"datagrams\":{},\"error\":{}}}",
        r.status.map_or("null".into(), |s| s.to_string()),
        r.session_id.map_or("null".into(), |s| s.to_string()),
        r.sent,
        r.received,
        napi_h3_bench::json_str(&r.sha256_sent),
        napi_h3_bench::json_str(&r.sha256_received),
        ok,
        num(mb_per_s),
        num(r.transfer_ms),
        num(r.setup_ms),
        t0.elapsed().as_secs_f64() * 1000.0,
        o.chunk,
        settings.join(","),
        dgram,
        r.error.as_deref().map_or("null".into(), napi_h3_bench::json_str),
    );
    std::process::exit(if ok { 0 } else { 1 });
}
