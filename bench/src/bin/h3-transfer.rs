//! One large HTTP/3 transfer with byte-exact checking, for tests and throughput runs.
//!
//! `h3-transfer --url URL [--method M] [--upload BYTES] [--chunk BYTES] [--trailer 'k: v']...
//!              [--abort-after BYTES] [--timeout SECS]`
//!
//! The upload body is the offset pattern `byte[i] = i % 251` (the same as the aioquic test
//! client's `--body-size`), streamed in chunks. The response body is hashed as it arrives.
//! `--abort-after N` resets the request stream (and stops reading) once N bytes have gone out
//! (upload) or come in (download). Prints one JSON line:
//! `{"status":..,"sent":..,"received":..,"sha256":"..","trailers":[[k,v]..],"aborted":bool,
//!   "body":"first 4 KiB as text","error":null|"..","ms":..}`.

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

fn pattern(offset: u64, len: usize) -> Bytes {
    (0..len as u64)
        .map(|i| ((offset + i) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
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
    let mut ep = quinn::Endpoint::client(bind).map_err(|e| format!("socket: {e}"))?;
    ep.set_default_client_config(napi_h3_bench::insecure_client_config()?);
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
        let mut off = 0u64;
        while off < o.upload {
            if o.abort_after.is_some_and(|a| off >= a) {
                send.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
                return Ok::<(u64, bool), String>((off, true));
            }
            let n = (o.upload - off).min(o.chunk as u64) as usize;
            if let Err(e) = send.send_data(pattern(off, n)).await {
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
        let mut hasher = Sha256::new();
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
                    while b.has_remaining() {
                        let c = b.chunk();
                        hasher.update(c);
                        if head.len() < 4096 {
                            head.extend_from_slice(&c[..c.len().min(4096 - head.len())]);
                        }
                        got += c.len() as u64;
                        let n = c.len();
                        b.advance(n);
                    }
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
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
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
        "{{\"status\":{},\"sent\":{},\"received\":{},\"sha256\":{},\"trailers\":[{}],\"aborted\":{},\"body\":{},\"error\":{},\"ms\":{:.1}}}",
        r.status.map_or("null".into(), |s| s.to_string()),
        r.sent,
        r.received,
        napi_h3_bench::json_str(&r.sha256),
        trailers.join(","),
        r.aborted,
        napi_h3_bench::json_str(&r.head),
        r.error.as_deref().map_or("null".into(), napi_h3_bench::json_str),
        t0.elapsed().as_secs_f64() * 1000.0
    );
}
