//! One large HTTP/3 transfer with byte-exact checking, for tests and throughput runs.
//!
//! `h3-transfer --url URL [--method M] [--upload BYTES] [--chunk BYTES] [--trailer 'k: v']...
//!              [--abort-after BYTES] [--timeout SECS] [--tuned]`
//!
//! The upload body is the offset pattern `byte[i] = i % 251` (the same as the aioquic test
//! client's `--body-size`), streamed in chunks sliced from one buffer. The response body is
//! hashed on a thread of its own as it arrives. `--tuned` gives the client the tuned reference
//! servers' windows and socket buffers (the bench uses it, so the client is not the bottleneck).
//! `--abort-after N` resets the request stream (and stops reading) once N bytes have gone out
//! (upload) or come in (download). Prints one JSON line:
//! `{"status":..,"sent":..,"received":..,"sha256":"..","trailers":[[k,v]..],"aborted":bool,
//!   "body":"first 4 KiB as text","error":null|"..","ms":..,"cpu_ms":..,"quic":{..}}` (`cpu_ms`:
//!   this process's own CPU time, user + system; `quic`: the connection's packets sent and
//!   lost, congestion events, RTT, congestion window, DATA_BLOCKED / STREAM_DATA_BLOCKED frames
//!   sent and MAX_STREAM_DATA frames received, i.e. what held the transfer back).

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use sha2::{Digest, Sha256};

struct Opts {
    url: http::Uri,
    method: http::Method,
    upload: u64,
    chunk: usize,
    trailers: Vec<(String, String)>,
    abort_after: Option<u64>,
    timeout: Duration,
    tuned: bool,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        url: http::Uri::from_static("https://127.0.0.1:4433/"),
        method: http::Method::GET,
        upload: 0,
        chunk: 64 * 1024,
        trailers: Vec::new(),
        abort_after: None,
        timeout: Duration::from_secs(120),
        tuned: false,
    };
    let mut method_set = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => o.url = val()?.parse().map_err(|e| format!("--url: {e}"))?,
            "--method" => {
                o.method = val()?.parse().map_err(|e| format!("--method: {e}"))?;
                method_set = true;
            }
            "--upload" => o.upload = val()?.parse().map_err(|e| format!("--upload: {e}"))?,
            "--tuned" => o.tuned = true,
            "--chunk" => o.chunk = val()?.parse().map_err(|e| format!("--chunk: {e}"))?,
            "--abort-after" => {
                o.abort_after = Some(val()?.parse().map_err(|e| format!("--abort-after: {e}"))?)
            }
            "--timeout" => {
                let s: f64 = val()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                o.timeout = Duration::from_secs_f64(s);
            }
            "--trailer" => {
                let v = val()?;
                let (k, v) = v.split_once(':').ok_or("--trailer wants 'name: value'")?;
                o.trailers
                    .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.upload > 0 && !method_set {
        o.method = http::Method::POST;
    }
    if o.chunk == 0 {
        return Err("--chunk must be > 0".into());
    }
    Ok(o)
}

/// The upload pattern, one period longer than a chunk: the bytes from `offset` are a slice of
/// it (zero-copy), so making the upload costs the client nothing per chunk.
struct Pattern(Bytes);

impl Pattern {
    fn new(chunk: usize) -> Self {
        Pattern(
            (0..chunk + 251)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>()
                .into(),
        )
    }

    fn at(&self, offset: u64, len: usize) -> Bytes {
        let start = (offset % 251) as usize;
        self.0.slice(start..start + len)
    }
}

/// SHA-256 on a thread of its own, fed through a bounded channel: the runtime thread only
/// moves buffers, so hashing never slows the transfer down (it overlaps with it).
struct Hasher {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    done: std::thread::JoinHandle<String>,
}

impl Hasher {
    fn start() -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(256);
        let done = std::thread::spawn(move || {
            let mut h = Sha256::new();
            while let Some(b) = rx.blocking_recv() {
                h.update(&b);
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        });
        Hasher { tx, done }
    }

    async fn update(&self, b: Bytes) {
        let _ = self.tx.send(b).await;
    }

    fn finish(self) -> String {
        drop(self.tx);
        self.done.join().unwrap_or_default()
    }
}

/// CPU time (user + system) this process has used so far, in milliseconds.
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields 14 and 15 (utime, stime) in clock ticks of 1/100 s, counted after the `comm` field.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
    f.get(10)
        .zip(f.get(11))
        .map_or(0.0, |(u, s)| (u + s) * 10.0)
}

#[derive(Default)]
struct Report {
    status: Option<u16>,
    sent: u64,
    received: u64,
    sha256: String,
    trailers: Vec<(String, String)>,
    aborted: bool,
    /// The first 4 KiB of the response body (lossy UTF-8), for small JSON answers.
    head: String,
    error: Option<String>,
    /// The connection's QUIC statistics at the end, as JSON (what held a transfer back: loss,
    /// congestion, flow control).
    quic: String,
}

async fn run(o: &Opts, r: &mut Report) -> Result<(), String> {
    let host = o.url.host().ok_or("--url needs a host")?;
    let port = o.url.port_u16().unwrap_or(443);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("resolve: {e}"))?
        .next()
        .ok_or("no address")?;
    let bind: std::net::SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().map_err(|e| format!("{e}"))?
    } else {
        "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?
    };
    // `--tuned` (the bench): windows and socket buffers as the tuned reference servers have
    // them, so the client is not what limits a transfer. Tests keep quinn's defaults.
    let tune = if o.tuned {
        napi_h3_bench::server::Tune::TUNED
    } else {
        napi_h3_bench::server::Tune::default()
    };
    let mut ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        tune.bind(bind)?,
        std::sync::Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| format!("socket: {e}"))?;
    let mut client = napi_h3_bench::insecure_client_config()?;
    let mut transport = quinn::TransportConfig::default();
    tune.transport(&mut transport);
    client.transport_config(std::sync::Arc::new(transport));
    ep.set_default_client_config(client);
    let conn = ep
        .connect(addr, "localhost")
        .map_err(|e| format!("connect: {e}"))?
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut driver, mut send_request) = h3::client::new(h3_quinn::Connection::new(conn.clone()))
        .await
        .map_err(|e| format!("h3: {e:?}"))?;
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let req = http::Request::builder()
        .method(o.method.clone())
        .uri(o.url.clone())
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    let stream = send_request
        .send_request(req)
        .await
        .map_err(|e| format!("send_request: {e}"))?;
    let (mut send, mut recv) = stream.split();

    // Upload and download run side by side, so echo routes work.
    let upload = async {
        let pattern = Pattern::new(o.chunk);
        let mut off = 0u64;
        while off < o.upload {
            if o.abort_after.is_some_and(|a| off >= a) {
                send.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
                return Ok::<(u64, bool), String>((off, true));
            }
            let n = (o.upload - off).min(o.chunk as u64) as usize;
            if let Err(e) = send.send_data(pattern.at(off, n)).await {
                return Err(format!("upload at {off}: {e}"));
            }
            off += n as u64;
        }
        if !o.trailers.is_empty() {
            let mut map = http::HeaderMap::new();
            for (k, v) in &o.trailers {
                let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
                let value = http::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
                map.append(name, value);
            }
            send.send_trailers(map)
                .await
                .map_err(|e| format!("trailers: {e}"))?;
        }
        send.finish().await.map_err(|e| format!("finish: {e}"))?;
        Ok((off, false))
    };
    let download = async {
        let resp = recv
            .recv_response()
            .await
            .map_err(|e| format!("response: {e}"))?;
        let hasher = Hasher::start();
        let mut head = Vec::new();
        let mut got = 0u64;
        let mut aborted = false;
        loop {
            if o.upload == 0 && o.abort_after.is_some_and(|a| got >= a) {
                // Dropping the receive side makes quinn send STOP_SENDING. (h3-quinn's own
                // stop_sending panics while a read is in flight, so it is not called here.)
                aborted = true;
                break;
            }
            match recv.recv_data().await {
                Ok(Some(mut b)) => {
                    let c = b.copy_to_bytes(b.remaining());
                    if head.len() < 4096 {
                        head.extend_from_slice(&c[..c.len().min(4096 - head.len())]);
                    }
                    got += c.len() as u64;
                    hasher.update(c).await;
                }
                Ok(None) => break,
                Err(e) => return Err(format!("body after {got} bytes: {e}")),
            }
        }
        let mut trailers = Vec::new();
        if !aborted {
            if let Ok(Some(t)) = recv.recv_trailers().await {
                for (k, v) in t.iter() {
                    trailers.push((k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()));
                }
            }
        }
        drop(recv);
        let hex = hasher.finish();
        let head = String::from_utf8_lossy(&head).into_owned();
        Ok::<_, String>((resp.status().as_u16(), got, hex, trailers, aborted, head))
    };
    let (up, down) = tokio::join!(upload, download);
    match up {
        Ok((sent, aborted)) => {
            r.sent = sent;
            r.aborted |= aborted;
        }
        Err(e) => r.error = Some(e),
    }
    match down {
        Ok((status, got, hex, trailers, aborted, head)) => {
            r.head = head;
            r.status = Some(status);
            r.received = got;
            r.sha256 = hex;
            r.trailers = trailers;
            r.aborted |= aborted;
        }
        Err(e) => {
            r.error.get_or_insert(e);
        }
    }
    let st = conn.stats();
    r.quic = format!(
        "{{\"sent_packets\":{},\"lost_packets\":{},\"congestion_events\":{},\"rtt_us\":{},\"cwnd\":{},\"data_blocked_tx\":{},\"stream_data_blocked_tx\":{},\"max_stream_data_rx\":{}}}",
        st.path.sent_packets,
        st.path.lost_packets,
        st.path.congestion_events,
        st.path.rtt.as_micros(),
        st.path.cwnd,
        st.frame_tx.data_blocked,
        st.frame_tx.stream_data_blocked,
        st.frame_rx.max_stream_data,
    );
    conn.close(quinn::VarInt::from_u32(0x100), b"done");
    let _ = tokio::time::timeout(Duration::from_millis(200), ep.wait_idle()).await;
    Ok(())
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("h3-transfer: {e}");
            std::process::exit(2);
        }
    };
    // Current-thread, as the tuned servers: one thread runs the endpoint and the connection.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h3-transfer: runtime: {e}");
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let mut r = Report::default();
    let res = rt.block_on(async { tokio::time::timeout(o.timeout, run(&o, &mut r)).await });
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => r.error = Some(e),
        Err(_) => r.error = Some("timeout".into()),
    }
    let trailers: Vec<String> = r
        .trailers
        .iter()
        .map(|(k, v)| {
            format!(
                "[{},{}]",
                napi_h3_bench::json_str(k),
                napi_h3_bench::json_str(v)
            )
        })
        .collect();
    println!(
        "{{\"status\":{},\"sent\":{},\"received\":{},\"sha256\":{},\"trailers\":[{}],\"aborted\":{},\"body\":{},\"error\":{},\"ms\":{:.1},\"cpu_ms\":{:.0},\"quic\":{}}}",
        r.status.map_or("null".into(), |s| s.to_string()),
        r.sent,
        r.received,
        napi_h3_bench::json_str(&r.sha256),
        trailers.join(","),
        r.aborted,
        napi_h3_bench::json_str(&r.head),
        r.error.as_deref().map_or("null".into(), napi_h3_bench::json_str),
        t0.elapsed().as_secs_f64() * 1000.0,
        cpu_ms(),
        if r.quic.is_empty() { "null" } else { &r.quic }
    );
}
