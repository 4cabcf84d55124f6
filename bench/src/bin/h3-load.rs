//! `h3-load`: a native HTTP/3 load generator (quinn + h3) for loopback benchmarking.
//!
//! Request-rate mode (default): C connections, S requests in flight per connection, for
//! `--warmup` + `--duration` seconds; latency of every request completed inside the measurement
//! window goes into a histogram. Throughput mode (`--download N` / `--upload N`): each connection
//! does one transfer of N bytes. Either way ONE JSON line is printed on stdout at the end.
//!
//! `--rate R` (request-rate mode) makes the load open-loop: the C × S workers issue R requests
//! per second between them on a fixed schedule. A request whose worker was still waiting for
//! the previous answer at its slot is timed from the slot, so a server that falls behind shows
//! its queueing instead of slowing the load down (no coordinated omission); one sent on time is
//! timed from when it went out (the timer's own lateness is not the server's).
//!
//! On stderr it prints `MEASURE_START` / `MEASURE_END` at the boundaries of the measurement
//! window, so a driver script can sample the server's CPU time exactly there.
//!
//! Certificate verification is disabled: never point this at anything but your own test servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{Method, Uri};
use napi_h3_bench::args::Args;
use napi_h3_bench::hist::Histogram;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant};

const CHUNK: usize = 64 * 1024;
/// H3_NO_ERROR
const H3_NO_ERROR: u32 = 0x100;
/// A request still unanswered this long when the run ends counts as an error.
const STALLED: Duration = Duration::from_secs(1);

const USAGE: &str = "usage: h3-load --url https://127.0.0.1:PORT/path
         [--connections C (4)] [--streams S (32)] [--duration SECS (5)] [--warmup SECS (1)]
         [--method GET|POST (GET)] [--body-bytes N (0)]
         [--download BYTES | --upload BYTES]   throughput mode: one transfer per connection
         [--request-timeout SECS (10, rate mode)] [--timeout SECS (120, throughput mode)]
         [--rate REQ_PER_S (open-loop schedule, rate mode)] [--threads N] [--sni NAME]
Prints one JSON line: {\"requests\",\"errors\",\"duration_s\",\"rps\",\"p50_us\",\"p99_us\",\"bytes\",...}";

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Rate,
    Download(u64),
    Upload(u64),
}

struct Job {
    addr: SocketAddr,
    server_name: String,
    uri: Uri,
    method: Method,
    body_bytes: u64,
    /// In throughput mode: the exact number of response body bytes expected (download) or the
    /// `bytes=N` prefix the server must echo (upload).
    mode: Mode,
    client_config: quinn::ClientConfig,
    chunk: Bytes,
    /// Rate mode: a request taking longer than this is abandoned and counted as an error.
    request_timeout: Duration,
    /// `--rate`: requests per second over all workers, on a fixed schedule; `None`: closed loop.
    rate: Option<f64>,
}

/// When one worker sends its requests under `--rate`: every `interval`, from `first`.
#[derive(Clone, Copy)]
struct Schedule {
    first: Instant,
    interval: Duration,
}

impl Schedule {
    /// Worker `index` of `workers`: the rate split evenly, the workers' slots interleaved so
    /// the requests are spread over each interval rather than sent in bursts.
    fn new(rate: f64, index: usize, workers: usize, start: Instant) -> Self {
        let interval = Duration::from_secs_f64(workers as f64 / rate);
        let offset = interval.mul_f64(index as f64 / workers as f64);
        Schedule {
            first: start + offset,
            interval,
        }
    }
}

#[derive(Default)]
struct Stats {
    hist: Histogram,
    requests: u64,
    errors: u64,
    bytes: u64,
    first_error: Option<String>,
}

impl Stats {
    fn error(&mut self, counted: bool, msg: String) {
        if counted {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(msg);
        }
    }

    fn merge(&mut self, o: Stats) {
        self.hist.merge(&o.hist);
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes += o.bytes;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

enum ReqError {
    /// The connection is gone: stop using it.
    Connection(String),
    /// This request failed (reset, non-2xx, short body): count it and carry on.
    Request(String),
}

impl From<h3::error::StreamError> for ReqError {
    fn from(e: h3::error::StreamError) -> Self {
        match e {
            h3::error::StreamError::ConnectionError(c) => ReqError::Connection(format!("{c:?}")),
            h3::error::StreamError::RemoteClosing => ReqError::Connection("GOAWAY".into()),
            other => ReqError::Request(format!("{other:?}")),
        }
    }
}

impl ReqError {
    fn message(self) -> String {
        match self {
            ReqError::Connection(m) => format!("connection: {m}"),
            ReqError::Request(m) => m,
        }
    }
}

fn main() {
    let args = Args::parse(&["help"]).unwrap_or_else(|e| fail(&e));
    if args.flag("help") {
        println!("{USAGE}");
        return;
    }
    const KNOWN: &[&str] = &[
        "url",
        "connections",
        "streams",
        "duration",
        "warmup",
        "method",
        "body-bytes",
        "download",
        "upload",
        "timeout",
        "request-timeout",
        "threads",
        "sni",
        "rate",
    ];
    if let Some(bad) = args.names().find(|n| !KNOWN.contains(n)) {
        fail(&format!("unknown option --{bad}"));
    }
    let opts = Opts::from_args(&args).unwrap_or_else(|e| fail(&e));

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = opts.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt
        .build()
        .unwrap_or_else(|e| fail(&format!("tokio runtime: {e}")));
    let ok = rt.block_on(run(opts));
    // Don't wait for stray tasks (e.g. a connection stuck in its close timeout).
    rt.shutdown_timeout(Duration::from_millis(200));
    std::process::exit(if ok { 0 } else { 1 });
}

fn fail(msg: &str) -> ! {
    eprintln!("h3-load: {msg}\n{USAGE}");
    std::process::exit(2);
}

struct Opts {
    job: Job,
    connections: usize,
    streams: usize,
    duration: f64,
    warmup: f64,
    timeout: f64,
    threads: Option<usize>,
}

impl Opts {
    fn from_args(a: &Args) -> Result<Opts, String> {
        let target = napi_h3_bench::resolve_url(a.str("url").ok_or("--url is required")?)?;
        let (mut uri, addr) = (target.uri, target.addr);
        let server_name = a.str("sni").unwrap_or(&target.host).to_string();

        let download: Option<u64> = a.get("download")?;
        let upload: Option<u64> = a.get("upload")?;
        let (mode, mut method, mut body_bytes) = match (download, upload) {
            (Some(_), Some(_)) => return Err("--download and --upload are exclusive".into()),
            (Some(n), None) => (Mode::Download(n), Method::GET, 0),
            (None, Some(n)) => (Mode::Upload(n), Method::POST, n),
            (None, None) => (Mode::Rate, Method::GET, 0),
        };
        if mode == Mode::Rate {
            method = a
                .get_or("method", Method::GET)
                .map_err(|_| "--method must be an HTTP method")?;
            body_bytes = a.get_or("body-bytes", 0)?;
        }
        if let Mode::Download(n) = mode {
            if uri.query().is_none() {
                let pq = format!("{}?bytes={n}", uri.path());
                let mut parts = uri.into_parts();
                parts.path_and_query = Some(pq.parse().map_err(|e| format!("url: {e}"))?);
                uri = Uri::from_parts(parts).map_err(|e| format!("url: {e}"))?;
            }
        }
        let throughput = mode != Mode::Rate;
        let connections: usize = a.get_or("connections", if throughput { 1 } else { 4 })?;
        let streams: usize = a.get_or("streams", 32)?;
        let duration: f64 = a.get_or("duration", 5.0)?;
        let warmup: f64 = a.get_or("warmup", 1.0)?;
        let timeout: f64 = a.get_or("timeout", 120.0)?;
        let request_timeout: f64 = a.get_or("request-timeout", 10.0)?;
        let rate: Option<f64> = a.get("rate")?;
        if rate.is_some_and(|r| !(r > 0.0 && r <= 10_000_000.0)) || (rate.is_some() && throughput) {
            return Err("--rate must be in (0, 1e7] and only in request-rate mode".into());
        }
        if connections == 0 || streams == 0 {
            return Err("--connections and --streams must be >= 1".into());
        }
        if !(duration > 0.0 && duration <= 3600.0 && (0.0..=600.0).contains(&warmup)) {
            return Err("--duration must be in (0, 3600], --warmup in [0, 600]".into());
        }
        if !(timeout > 0.0
            && timeout <= 3600.0
            && request_timeout > 0.0
            && request_timeout <= 3600.0)
        {
            return Err("--timeout and --request-timeout must be in (0, 3600]".into());
        }
        Ok(Opts {
            job: Job {
                addr,
                server_name,
                uri,
                method,
                body_bytes,
                mode,
                client_config: napi_h3_bench::insecure_client_config()?,
                chunk: Bytes::from(vec![b'u'; CHUNK]),
                request_timeout: Duration::from_secs_f64(request_timeout),
                rate,
            },
            connections,
            streams,
            duration,
            warmup,
            timeout,
            threads: a.get("threads")?,
        })
    }
}

async fn connect(job: &Job) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    // One endpoint (UDP socket + driver task) per connection, so client-side I/O spreads across
    // the runtime's threads instead of funnelling through one socket.
    let bind: SocketAddr = if job.addr.is_ipv6() {
        "[::]:0".parse().map_err(|e| format!("{e}"))?
    } else {
        "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?
    };
    let mut ep = quinn::Endpoint::client(bind).map_err(|e| format!("client socket: {e}"))?;
    ep.set_default_client_config(job.client_config.clone());
    let conn = ep
        .connect(job.addr, &job.server_name)
        .map_err(|e| format!("connect: {e}"))?
        .await
        .map_err(|e| format!("handshake with {}: {e}", job.addr))?;
    Ok((ep, conn))
}

/// Sets up h3 on a QUIC connection and spawns its driver. The flag turns true when the
/// connection has closed.
async fn h3_setup(conn: &quinn::Connection) -> Result<(SendRequest, Arc<AtomicBool>), String> {
    let (mut driver, send_request) = h3::client::new(h3_quinn::Connection::new(conn.clone()))
        .await
        .map_err(|e| format!("h3 setup: {e:?}"))?;
    let dead = Arc::new(AtomicBool::new(false));
    let flag = dead.clone();
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        flag.store(true, Ordering::Release);
    });
    Ok((send_request, dead))
}

async fn close(ep: quinn::Endpoint, conn: quinn::Connection) {
    conn.close(quinn::VarInt::from_u32(H3_NO_ERROR), b"done");
    // Let the CONNECTION_CLOSE go out; bounded.
    let _ = timeout(Duration::from_millis(200), ep.wait_idle()).await;
}

/// One request; returns body bytes moved (request + response).
async fn one_request(sr: &mut SendRequest, job: &Job) -> Result<u64, ReqError> {
    let req = http::Request::builder()
        .method(job.method.clone())
        .uri(job.uri.clone())
        .body(())
        .map_err(|e| ReqError::Request(format!("build request: {e}")))?;
    let mut s = sr.send_request(req).await?;
    let mut left = job.body_bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.send_data(job.chunk.slice(..n)).await?;
        left -= n as u64;
    }
    s.finish().await?;
    let resp = s.recv_response().await?;
    let mut got: u64 = 0;
    let mut head = Vec::new(); // first bytes of the body, for the upload check
    while let Some(mut b) = s.recv_data().await? {
        got += b.remaining() as u64;
        if head.len() < 64 {
            while b.has_remaining() && head.len() < 64 {
                let c = b.chunk();
                let n = c.len().min(64 - head.len());
                head.extend_from_slice(&c[..n]);
                b.advance(n);
            }
        }
    }
    if !resp.status().is_success() {
        return Err(ReqError::Request(format!("HTTP {}", resp.status())));
    }
    match job.mode {
        Mode::Download(n) if got != n => {
            return Err(ReqError::Request(format!(
                "download: got {got} of {n} bytes"
            )));
        }
        Mode::Upload(n) if !head.starts_with(format!("bytes={n} ").as_bytes()) => {
            return Err(ReqError::Request(format!(
                "upload: server answered {:?}, expected bytes={n}",
                String::from_utf8_lossy(&head)
            )));
        }
        _ => {}
    }
    Ok(job.body_bytes + got)
}

async fn worker(
    mut sr: SendRequest,
    job: Arc<Job>,
    dead: Arc<AtomicBool>,
    schedule: Option<Schedule>,
    measure_start: Instant,
    end: Instant,
) -> Stats {
    let mut st = Stats::default();
    let mut slot = schedule.map(|s| s.first);
    while Instant::now() < end && !dead.load(Ordering::Acquire) {
        // Open loop: wait for this worker's next slot, and time the request from it.
        let t0 = match (slot.as_mut(), schedule) {
            (Some(at), Some(s)) => {
                let due = *at;
                *at += s.interval;
                if due >= end {
                    break;
                }
                if Instant::now() >= due {
                    // Late because the last answer came late: the server's queueing, counted.
                    due
                } else {
                    // Early: wait. The timer wakes up to a millisecond late, which is ours, not
                    // the server's, so the request is timed from when it actually goes out.
                    sleep_until(due).await;
                    Instant::now()
                }
            }
            _ => Instant::now(),
        };
        let res = match timeout_at(
            (t0 + job.request_timeout).min(end),
            one_request(&mut sr, &job),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                let now = Instant::now();
                let age = now - t0;
                // Still in flight at the end of the window: not counted, unless it has been stuck
                // for a while (e.g. the server died), which is an error.
                if now >= end && age < STALLED {
                    break;
                }
                st.error(
                    now >= measure_start,
                    format!("request timed out after {:.1} s", age.as_secs_f64()),
                );
                if now >= end {
                    break;
                }
                continue;
            }
        };
        let t1 = Instant::now();
        let counted = t1 >= measure_start;
        match res {
            Ok(bytes) => {
                if counted {
                    st.requests += 1;
                    st.bytes += bytes;
                    st.hist.record((t1 - t0).as_nanos() as u64);
                }
            }
            Err(e) => {
                let fatal = matches!(e, ReqError::Connection(_));
                st.error(counted, e.message());
                if fatal {
                    break;
                }
            }
        }
    }
    st
}

/// Keeps one connection busy with `streams` workers until `end`, reconnecting if it dies.
async fn conn_task(
    first: (quinn::Endpoint, quinn::Connection),
    job: Arc<Job>,
    (index, streams, workers): (usize, usize, usize),
    measure_start: Instant,
    end: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let mut next = Some(first);
    while Instant::now() < end {
        let counted = Instant::now() >= measure_start;
        let (ep, conn) = match next.take() {
            Some(c) => c,
            None => match timeout_at(end, connect(&job)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    stats.error(counted, e);
                    sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(_) => break,
            },
        };
        let (sr, dead) = match timeout_at(end, h3_setup(&conn)).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                stats.error(counted, e);
                close(ep, conn).await;
                sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(_) => break,
        };
        let mut set = JoinSet::new();
        // The schedule starts now (after a reconnect, too); worker ids run across connections.
        let start = Instant::now();
        for s in 0..streams {
            let schedule = job
                .rate
                .map(|r| Schedule::new(r, index * streams + s, workers, start));
            set.spawn(worker(
                sr.clone(),
                job.clone(),
                dead.clone(),
                schedule,
                measure_start,
                end,
            ));
        }
        drop(sr);
        while let Some(r) = set.join_next().await {
            match r {
                Ok(s) => stats.merge(s),
                Err(e) => stats.error(true, format!("worker panicked: {e}")),
            }
        }
        close(ep, conn).await;
    }
    stats
}

async fn connect_all(
    job: &Arc<Job>,
    n: usize,
) -> Result<Vec<(quinn::Endpoint, quinn::Connection)>, String> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let job = job.clone();
        set.spawn(async move {
            match timeout(Duration::from_secs(10), connect(&job)).await {
                Ok(r) => r,
                Err(_) => Err(format!("handshake with {} timed out after 10 s", job.addr)),
            }
        });
    }
    let mut conns = Vec::with_capacity(n);
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(c)) => conns.push(c),
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(e) => first_err = first_err.or(Some(format!("connect task: {e}"))),
        }
    }
    match first_err {
        None => Ok(conns),
        Some(e) => {
            for (ep, conn) in conns {
                close(ep, conn).await;
            }
            Err(e)
        }
    }
}

async fn run(opts: Opts) -> bool {
    let job = Arc::new(opts.job);
    let summary = format!(
        "\"connections\":{},\"streams\":{},\"target_rps\":{}",
        opts.connections,
        opts.streams,
        job.rate.map_or("null".into(), |r| format!("{r:.1}"))
    );
    let conns = match connect_all(&job, opts.connections).await {
        Ok(c) => c,
        Err(e) => {
            let mut st = Stats::default();
            st.error(true, e);
            print_json(&job, &summary, &st, 0.0);
            return false;
        }
    };
    let (stats, elapsed) = match job.mode {
        Mode::Rate => {
            let warmup = Duration::from_secs_f64(opts.warmup);
            let duration = Duration::from_secs_f64(opts.duration);
            run_rate(&job, conns, opts.streams, warmup, duration).await
        }
        Mode::Download(_) | Mode::Upload(_) => run_transfers(&job, conns, opts.timeout).await,
    };
    print_json(&job, &summary, &stats, elapsed);
    // Rate mode: a few failed requests are reported, not fatal. Throughput: every transfer must succeed.
    stats.requests > 0 && (job.mode == Mode::Rate || stats.errors == 0)
}

async fn run_rate(
    job: &Arc<Job>,
    conns: Vec<(quinn::Endpoint, quinn::Connection)>,
    streams: usize,
    warmup: Duration,
    duration: Duration,
) -> (Stats, f64) {
    let measure_start = Instant::now() + warmup;
    let end = measure_start + duration;
    let mut set = JoinSet::new();
    let workers = conns.len() * streams;
    for (i, c) in conns.into_iter().enumerate() {
        set.spawn(conn_task(
            c,
            job.clone(),
            (i, streams, workers),
            measure_start,
            end,
        ));
    }
    sleep_until(measure_start).await;
    eprintln!("MEASURE_START");
    sleep_until(end).await;
    eprintln!("MEASURE_END");
    let mut stats = Stats::default();
    // Workers stop at `end` by themselves; the grace period only covers connection close.
    let grace = Instant::now() + Duration::from_secs(5);
    loop {
        match timeout_at(grace, set.join_next()).await {
            Ok(Some(Ok(s))) => stats.merge(s),
            Ok(Some(Err(e))) => stats.error(true, format!("connection task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                stats.error(true, "connection tasks did not finish in time".into());
                set.abort_all();
                break;
            }
        }
    }
    (stats, duration.as_secs_f64())
}

/// Throughput mode: one transfer per connection, all started together. The elapsed time runs
/// from the common start to the end of the last transfer (connection close not included).
async fn run_transfers(
    job: &Arc<Job>,
    conns: Vec<(quinn::Endpoint, quinn::Connection)>,
    timeout_s: f64,
) -> (Stats, f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    let mut set = JoinSet::new();
    eprintln!("MEASURE_START");
    let t0 = Instant::now();
    for (ep, conn) in conns {
        let job = job.clone();
        set.spawn(async move {
            let mut st = Stats::default();
            match timeout_at(deadline, h3_setup(&conn)).await {
                Ok(Ok((mut sr, _dead))) => {
                    let t = Instant::now();
                    match timeout_at(deadline, one_request(&mut sr, &job)).await {
                        Ok(Ok(bytes)) => {
                            st.requests += 1;
                            st.bytes += bytes;
                            st.hist.record(t.elapsed().as_nanos() as u64);
                        }
                        Ok(Err(e)) => st.error(true, e.message()),
                        Err(_) => st.error(true, format!("transfer timed out after {timeout_s} s")),
                    }
                }
                Ok(Err(e)) => st.error(true, e),
                Err(_) => st.error(true, "h3 setup timed out".into()),
            }
            let done = Instant::now();
            close(ep, conn).await;
            (st, done)
        });
    }
    let mut stats = Stats::default();
    let mut last = t0;
    while let Some(r) = set.join_next().await {
        match r {
            Ok((s, done)) => {
                stats.merge(s);
                last = last.max(done);
            }
            Err(e) => stats.error(true, format!("transfer task failed: {e}")),
        }
    }
    eprintln!("MEASURE_END");
    (stats, (last - t0).as_secs_f64())
}

fn print_json(job: &Job, summary: &str, st: &Stats, duration_s: f64) {
    let us = |ns: u64| ns as f64 / 1000.0;
    let rps = if duration_s > 0.0 {
        st.requests as f64 / duration_s
    } else {
        0.0
    };
    let mbps = if duration_s > 0.0 {
        st.bytes as f64 / duration_s / 1e6
    } else {
        0.0
    };
    let mode = match job.mode {
        Mode::Rate => "rate",
        Mode::Download(_) => "download",
        Mode::Upload(_) => "upload",
    };
    let first_error = st
        .first_error
        .as_deref()
        .map_or("null".into(), napi_h3_bench::json_str);
    println!(
        "{{\"mode\":\"{mode}\",\"requests\":{},\"errors\":{},\"duration_s\":{:.3},\"rps\":{:.1},\
\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"mean_us\":{:.1},\
\"bytes\":{},\"mb_per_s\":{:.2},\"url\":{},\"method\":\"{}\",{summary},\"first_error\":{first_error}}}",
        st.requests,
        st.errors,
        duration_s,
        rps,
        us(st.hist.quantile(0.50)),
        us(st.hist.quantile(0.90)),
        us(st.hist.quantile(0.99)),
        us(st.hist.max()),
        st.hist.mean() / 1000.0,
        st.bytes,
        mbps,
        napi_h3_bench::json_str(&job.uri.to_string()),
        job.method,
    );
}
