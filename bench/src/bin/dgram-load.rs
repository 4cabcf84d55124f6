//! `dgram-load`: a QUIC DATAGRAM echo load generator (quinn) for loopback benchmarking.
//!
//! Opens `--connections` QUIC connections (ALPN "h3", certificate NOT verified), opens no
//! streams at all, and on each keeps up to `--window` sequence-numbered datagrams of `--size`
//! bytes in flight: a new one goes out whenever an echo comes back or an outstanding one is
//! declared lost (no echo within `--loss-timeout-ms`). Runs `--warmup` + `--duration` seconds.
//! Echoes that arrive inside the measurement window are counted (and their round-trip time goes
//! into a histogram); loss is over the datagrams *sent* inside the window, each given
//! `--loss-timeout-ms` after the window to come back. Every echo is checked byte for byte.
//!
//! Prints `MEASURE_START` / `MEASURE_END` on stderr at the window's edges (so a driver can sample
//! the server's CPU exactly there) and one JSON line on stdout:
//! `{"echoes","eps","sent","lost","loss_pct","late","corrupt","p50_us","p99_us","max_us",...}`.
//! Exit status 0 when at least one echo was counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use napi_h3_bench::args::Args;
use napi_h3_bench::hist::Histogram;
use tokio::time::{sleep_until, timeout, Instant};

const USAGE: &str = "usage: dgram-load --url https://127.0.0.1:PORT/
         [--connections C (1)] [--window W (256, datagrams in flight per connection)]
         [--size BYTES (64, payload, >= 16)] [--duration SECS (5)] [--warmup SECS (1)]
         [--loss-timeout-ms MS (250)] [--threads N] [--sni NAME]
Prints one JSON line: {\"echoes\",\"eps\",\"sent\",\"lost\",\"loss_pct\",\"p50_us\",\"p99_us\",...}";

/// Header of every payload: sequence number (u64 BE) + connection index (u32 BE) + 4 bytes of
/// check; the rest is a pattern derived from the sequence number.
const HEADER: usize = 16;

struct Opts {
    addr: SocketAddr,
    server_name: String,
    connections: usize,
    window: usize,
    size: usize,
    duration: f64,
    warmup: f64,
    loss_timeout: Duration,
    threads: Option<usize>,
}

#[derive(Default)]
struct Stats {
    hist: Histogram,
    /// Echoes received inside the window.
    echoes: u64,
    /// Datagrams sent inside the window.
    sent: u64,
    /// Of those, never echoed within the loss timeout.
    lost: u64,
    /// Echoes that came back after their datagram had been declared lost.
    late: u64,
    /// Echoes whose bytes differ from what was sent (or an unknown sequence number).
    corrupt: u64,
    /// Datagrams sent during the whole run (warm-up included).
    sent_total: u64,
    echoes_total: u64,
    max_datagram_size: Option<usize>,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.hist.merge(&o.hist);
        self.echoes += o.echoes;
        self.sent += o.sent;
        self.lost += o.lost;
        self.late += o.late;
        self.corrupt += o.corrupt;
        self.sent_total += o.sent_total;
        self.echoes_total += o.echoes_total;
        self.max_datagram_size = match (self.max_datagram_size, o.max_datagram_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.first_error.is_none() {
            self.first_error = o.first_error;
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
        "window",
        "size",
        "duration",
        "warmup",
        "loss-timeout-ms",
        "threads",
        "sni",
    ];
    if let Some(bad) = args.names().find(|n| !KNOWN.contains(n)) {
        fail(&format!("unknown option --{bad}"));
    }
    let opts = from_args(&args).unwrap_or_else(|e| fail(&e));
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = opts.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt
        .build()
        .unwrap_or_else(|e| fail(&format!("tokio runtime: {e}")));
    let ok = rt.block_on(run(opts));
    rt.shutdown_timeout(Duration::from_millis(200));
    std::process::exit(if ok { 0 } else { 1 });
}

fn fail(msg: &str) -> ! {
    eprintln!("dgram-load: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn from_args(a: &Args) -> Result<Opts, String> {
    let target = napi_h3_bench::resolve_url(a.str("url").ok_or("--url is required")?)?;
    let opts = Opts {
        addr: target.addr,
        server_name: a.str("sni").unwrap_or(&target.host).to_string(),
        connections: a.get_or("connections", 1)?,
        window: a.get_or("window", 256)?,
        size: a.get_or("size", 64)?,
        duration: a.get_or("duration", 5.0)?,
        warmup: a.get_or("warmup", 1.0)?,
        loss_timeout: Duration::from_millis(a.get_or("loss-timeout-ms", 250)?),
        threads: a.get("threads")?,
    };
    if opts.connections == 0 || opts.window == 0 {
        return Err("--connections and --window must be >= 1".into());
    }
    if !(HEADER..=65_527).contains(&opts.size) {
        return Err(format!("--size must be in [{HEADER}, 65527]"));
    }
    if !(opts.duration > 0.0 && opts.duration <= 3600.0 && (0.0..=600.0).contains(&opts.warmup)) {
        return Err("--duration must be in (0, 3600], --warmup in [0, 600]".into());
    }
    if opts.loss_timeout.is_zero() || opts.loss_timeout > Duration::from_secs(60) {
        return Err("--loss-timeout-ms must be in [1, 60000]".into());
    }
    Ok(opts)
}

/// Byte `i` (after the header) of the payload with sequence number `seq`.
#[inline]
fn pattern_byte(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_mul(31).wrapping_add(i as u8)
}

fn payload(seq: u64, conn: u32, size: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(size);
    b.put_u64(seq);
    b.put_u32(conn);
    b.put_u32(!(seq as u32) ^ conn);
    for i in HEADER..size {
        b.put_u8(pattern_byte(seq, i));
    }
    b.freeze()
}

/// The sequence number of an echo, if its bytes are exactly what `payload` produced.
fn check(d: &[u8], conn: u32, size: usize) -> Option<u64> {
    if d.len() != size {
        return None;
    }
    let seq = u64::from_be_bytes(d[0..8].try_into().ok()?);
    let c = u32::from_be_bytes(d[8..12].try_into().ok()?);
    let k = u32::from_be_bytes(d[12..16].try_into().ok()?);
    if c != conn || k != !(seq as u32) ^ conn {
        return None;
    }
    d[HEADER..]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(seq, i + HEADER))
        .then_some(seq)
}

async fn run(o: Opts) -> bool {
    let client_config = match napi_h3_bench::insecure_client_config() {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    let bind = napi_h3_bench::client_bind_addr(o.addr);
    // One UDP socket (endpoint) per connection, like h3-load.
    let mut conns = Vec::new();
    let mut stats = Stats::default();
    for _ in 0..o.connections {
        let r = async {
            let mut ep = quinn::Endpoint::client(bind).map_err(|e| format!("socket: {e}"))?;
            ep.set_default_client_config(client_config.clone());
            let conn = timeout(
                Duration::from_secs(10),
                ep.connect(o.addr, &o.server_name)
                    .map_err(|e| format!("connect: {e}"))?,
            )
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| format!("handshake: {e}"))?;
            Ok::<_, String>((ep, conn))
        }
        .await;
        match r {
            Ok(c) => conns.push(c),
            Err(e) => {
                stats.first_error.get_or_insert(e);
            }
        }
    }
    let t0 = Instant::now();
    let start = t0 + Duration::from_secs_f64(o.warmup);
    let end = start + Duration::from_secs_f64(o.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (_, conn)) in conns.iter().enumerate() {
        let conn = conn.clone();
        let (window, size, loss_timeout) = (o.window, o.size, o.loss_timeout);
        tasks.spawn(drive(
            conn,
            i as u32,
            window,
            size,
            loss_timeout,
            start,
            end,
        ));
    }
    if !conns.is_empty() {
        sleep_until(start).await;
        eprintln!("MEASURE_START");
        sleep_until(end).await;
        eprintln!("MEASURE_END");
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(s) => stats.merge(s),
            Err(e) => {
                stats.first_error.get_or_insert(format!("task: {e}"));
            }
        }
    }
    for (ep, conn) in &conns {
        conn.close(quinn::VarInt::from_u32(0x100), b"done");
        let _ = timeout(Duration::from_millis(200), ep.wait_idle()).await;
    }
    let dur = o.duration;
    let h = &stats.hist;
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "{{\"mode\":\"datagram-echo\",\"echoes\":{},\"eps\":{:.1},\"sent\":{},\"sent_per_s\":{:.1},\"lost\":{},\"loss_pct\":{:.4},\"late\":{},\"corrupt\":{},\"sent_total\":{},\"echoes_total\":{},\"duration_s\":{},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"mean_us\":{:.1},\"connections\":{},\"connected\":{},\"window\":{},\"size\":{},\"loss_timeout_ms\":{},\"max_datagram_size\":{},\"first_error\":{}}}",
        stats.echoes,
        stats.echoes as f64 / dur,
        stats.sent,
        stats.sent as f64 / dur,
        stats.lost,
        if stats.sent > 0 { stats.lost as f64 * 100.0 / stats.sent as f64 } else { 0.0 },
        stats.late,
        stats.corrupt,
        stats.sent_total,
        stats.echoes_total,
        dur,
        us(h.quantile(0.5)),
        us(h.quantile(0.9)),
        us(h.quantile(0.99)),
        us(h.max()),
        h.mean() / 1000.0,
        o.connections,
        conns.len(),
        o.window,
        o.size,
        o.loss_timeout.as_millis(),
        stats
            .max_datagram_size
            .map_or("null".into(), |v| v.to_string()),
        stats
            .first_error
            .as_deref()
            .map_or("null".into(), napi_h3_bench::json_str),
    );
    stats.echoes > 0
}

/// One outstanding datagram: when it went out, whether it counts (sent inside the window), and
/// whether its echo has come back.
struct Slot {
    sent_at: Instant,
    measured: bool,
    done: bool,
}

/// Drives one connection: keeps `window` datagrams in flight until `end`, then waits up to
/// `loss_timeout` for the outstanding ones.
async fn drive(
    conn: quinn::Connection,
    idx: u32,
    window: usize,
    size: usize,
    loss_timeout: Duration,
    start: Instant,
    end: Instant,
) -> Stats {
    let mut st = Stats {
        max_datagram_size: conn.max_datagram_size(),
        ..Stats::default()
    };
    match conn.max_datagram_size() {
        None => {
            st.first_error = Some("the server does not accept QUIC datagrams".into());
            return st;
        }
        Some(max) if max < size => {
            st.first_error = Some(format!("--size {size} > max datagram size {max}"));
            return st;
        }
        _ => {}
    }
    // slots[i] is sequence number base + i.
    let mut slots: VecDeque<Slot> = VecDeque::with_capacity(window * 2);
    let mut base: u64 = 0;
    let mut next_seq: u64 = 0;
    let mut outstanding = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let drain_until = end + loss_timeout;
    loop {
        let now = Instant::now();
        // Fill the window (until the run ends).
        if now < end {
            let measured = now >= start;
            while outstanding < window {
                match conn.send_datagram(payload(next_seq, idx, size)) {
                    Ok(()) => {}
                    Err(e) => {
                        st.first_error.get_or_insert(format!("send_datagram: {e}"));
                        return st;
                    }
                }
                slots.push_back(Slot {
                    sent_at: now,
                    measured,
                    done: false,
                });
                next_seq += 1;
                outstanding += 1;
                st.sent_total += 1;
                if measured {
                    st.sent += 1;
                }
            }
        } else if outstanding == 0 || now >= drain_until {
            // Whatever is still outstanding now is lost.
            st.lost += slots.iter().filter(|s| !s.done && s.measured).count() as u64;
            return st;
        }
        tokio::select! {
            r = conn.read_datagram() => {
                let d = match r {
                    Ok(d) => d,
                    Err(e) => {
                        st.first_error.get_or_insert(format!("connection: {e}"));
                        st.lost += slots.iter().filter(|s| !s.done && s.measured).count() as u64;
                        return st;
                    }
                };
                let now = Instant::now();
                let Some(seq) = check(&d, idx, size) else {
                    st.corrupt += 1;
                    continue;
                };
                if seq < base {
                    st.late += 1;
                    continue;
                }
                let Some(slot) = slots.get_mut((seq - base) as usize) else {
                    st.corrupt += 1; // never sent
                    continue;
                };
                if slot.done {
                    st.late += 1; // duplicate
                    continue;
                }
                slot.done = true;
                outstanding -= 1;
                st.echoes_total += 1;
                if now >= start && now < end {
                    st.echoes += 1;
                    st.hist.record((now - slot.sent_at).as_nanos() as u64);
                }
                while slots.front().is_some_and(|s| s.done) {
                    slots.pop_front();
                    base += 1;
                }
            }
            _ = tick.tick() => {
                // Expire datagrams whose echo is overdue (they are lost; their slot is freed).
                let now = Instant::now();
                while let Some(s) = slots.front() {
                    if !s.done && now.duration_since(s.sent_at) < loss_timeout {
                        break;
                    }
                    if !s.done {
                        outstanding -= 1;
                        if s.measured {
                            st.lost += 1;
                        }
                    }
                    slots.pop_front();
                    base += 1;
                }
            }
        }
    }
}
