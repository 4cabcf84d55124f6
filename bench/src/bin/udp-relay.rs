//! A lossy userspace UDP relay for tests (the kernel here has no netem): loss per direction,
//! delay, reordering, all seeded. Loopback only.
//!
//! `udp-relay --upstream 127.0.0.1:PORT [--loss-up F] [--loss-down F] [--delay-ms MS]
//!            [--reorder F] [--reorder-ms MS] [--seed N] [--big BYTES] [--big-max BYTES]
//!            [--spare-long] [--queue PACKETS] [--max-clients N] [--max-seconds S] [--trace]`
//!
//! Listens on 127.0.0.1:0 and prints `LISTENING <port>`. Each client address gets its own
//! upstream socket (connected to `--upstream`); "up" is client → upstream, "down" is the way
//! back. Per direction, each packet is dropped with probability `--loss-up` / `--loss-down`
//! (a seeded splitmix64 stream per direction, so the n-th packet of a direction always gets the
//! same verdict for a given seed), else delayed by `--delay-ms`, plus `--reorder-ms` for a
//! `--reorder` fraction of packets (those are overtaken by later ones). Delayed packets wait in
//! one bounded queue (`--queue` packets, default 65536): beyond it they are dropped and counted
//! as `overflow` (and in `dropped`).
//!
//! `--spare-long` never drops QUIC long-header packets (first byte has 0x80 set: Initial,
//! Handshake, 0-RTT, Retry): the handshake is spared so that every dropped packet in a size
//! band belongs to the traffic under test. Packets of `--big` ..= `--big-max` bytes (default
//! 1000 ..= unlimited) are counted separately (`dropped_big`, `forwarded_big`): a QUIC packet
//! carrying one ~1100-byte DATAGRAM frame is big, an ACK-only packet is small.
//!
//! `--trace` logs one stderr line per packet: seconds, direction, client, length, first byte and
//! verdict (ok, late, lost, spared, overflow).
//!
//! Reports one JSON line of counters per direction on stdout: on a stdin line `stats` (and on
//! SIGUSR1) without exiting; on stdin EOF, a stdin line `quit`, SIGTERM, SIGINT or after
//! `--max-seconds` (default 120) with `"final":true`, and then exits.

use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use napi_h3_bench::args::Args;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

const KNOWN: &[&str] = &[
    "upstream",
    "loss-up",
    "loss-down",
    "delay-ms",
    "reorder",
    "reorder-ms",
    "seed",
    "big",
    "big-max",
    "spare-long",
    "queue",
    "max-clients",
    "max-seconds",
    "trace",
];

struct Opts {
    upstream: SocketAddr,
    loss: [f64; 2],
    delay: Duration,
    reorder: f64,
    reorder_delay: Duration,
    seed: u64,
    big: usize,
    big_max: usize,
    spare_long: bool,
    queue: usize,
    max_clients: usize,
    max_time: Duration,
    trace: bool,
}

fn parse() -> Result<Opts, String> {
    let a = Args::parse(&["spare-long", "trace"])?;
    if let Some(bad) = a.names().find(|n| !KNOWN.contains(n)) {
        return Err(format!("unknown option --{bad}"));
    }
    let upstream: SocketAddr = a
        .str("upstream")
        .ok_or("--upstream 127.0.0.1:PORT is required")?
        .parse()
        .map_err(|e| format!("--upstream: {e}"))?;
    if !upstream.ip().is_loopback() {
        return Err("--upstream must be a loopback address".into());
    }
    let fraction = |name: &str| -> Result<f64, String> {
        let v: f64 = a.get_or(name, 0.0)?;
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("--{name} must be a fraction in [0, 1]"))
        }
    };
    let ms = |name: &str, default: f64| -> Result<Duration, String> {
        let v: f64 = a.get_or(name, default)?;
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_secs_f64(v / 1000.0))
        } else {
            Err(format!("--{name} must be >= 0"))
        }
    };
    let max_seconds: f64 = a.get_or("max-seconds", 120.0)?;
    if !(max_seconds.is_finite() && max_seconds > 0.0) {
        return Err("--max-seconds must be > 0".into());
    }
    Ok(Opts {
        upstream,
        loss: [fraction("loss-up")?, fraction("loss-down")?],
        delay: ms("delay-ms", 0.0)?,
        reorder: fraction("reorder")?,
        reorder_delay: ms("reorder-ms", 5.0)?,
        seed: a.get_or("seed", 1)?,
        big: a.get_or("big", 1000)?,
        big_max: a.get_or("big-max", usize::MAX)?,
        spare_long: a.flag("spare-long"),
        queue: a.get_or("queue", 65536)?.max(1),
        max_clients: a.get_or("max-clients", 256)?.max(1),
        max_time: Duration::from_secs_f64(max_seconds),
        trace: a.flag("trace"),
    })
}

/// splitmix64: tiny, seedable, good enough for loss decisions.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct Counters {
    received: u64,
    received_bytes: u64,
    forwarded: u64,
    forwarded_bytes: u64,
    forwarded_big: u64,
    dropped: u64,
    dropped_bytes: u64,
    dropped_big: u64,
    spared: u64,
    overflow: u64,
    reordered: u64,
    send_errors: u64,
}

impl Counters {
    fn json(&self) -> String {
        format!(
            "{{\"received\":{},\"received_bytes\":{},\"forwarded\":{},\"forwarded_bytes\":{},\
             \"forwarded_big\":{},\"dropped\":{},\"dropped_bytes\":{},\"dropped_big\":{},\
             \"spared\":{},\"overflow\":{},\"reordered\":{},\"send_errors\":{}}}",
            self.received,
            self.received_bytes,
            self.forwarded,
            self.forwarded_bytes,
            self.forwarded_big,
            self.dropped,
            self.dropped_bytes,
            self.dropped_big,
            self.spared,
            self.overflow,
            self.reordered,
            self.send_errors
        )
    }
}

const UP: usize = 0;
const DOWN: usize = 1;

/// A packet waiting for its release time; ordered by (time, arrival) so equal times keep order.
struct Pending {
    at: Instant,
    seq: u64,
    dir: usize,
    client: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Reversed: BinaryHeap is a max-heap, we want the earliest first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Relay {
    o: Opts,
    rng: [Rng; 2],
    c: [Counters; 2],
    queue: BinaryHeap<Pending>,
    seq: u64,
    clients: HashMap<SocketAddr, Arc<UdpSocket>>,
    refused_clients: u64,
    started: Instant,
}

impl Relay {
    /// Counts a packet and either drops it or queues it for release.
    fn admit(&mut self, dir: usize, client: SocketAddr, data: &[u8]) {
        let len = data.len();
        let big = len >= self.o.big && len <= self.o.big_max;
        let c = &mut self.c[dir];
        c.received += 1;
        c.received_bytes += len as u64;
        // Always draw both numbers so each direction's verdicts depend only on its packet count.
        let lose = self.rng[dir].unit() < self.o.loss[dir];
        let late = self.rng[dir].unit() < self.o.reorder;
        let long_header = data.first().is_some_and(|b| b & 0x80 != 0);
        let overflow = self.queue.len() >= self.o.queue;
        if self.o.trace {
            let verdict = match (lose, overflow) {
                (true, _) if self.o.spare_long && long_header => "spared",
                (true, _) => "lost",
                (false, true) => "overflow",
                (false, false) if late => "late",
                _ => "ok",
            };
            eprintln!(
                "{:>9.3} {} {client} {len:>5} {:#04x} {verdict}",
                self.started.elapsed().as_secs_f64(),
                if dir == UP { "up  " } else { "down" },
                data.first().copied().unwrap_or(0),
            );
        }
        if lose && self.o.spare_long && long_header {
            c.spared += 1;
        } else if lose || overflow {
            c.dropped += 1;
            c.dropped_bytes += len as u64;
            c.dropped_big += u64::from(big);
            c.overflow += u64::from(!lose);
            return;
        }
        let mut delay = self.o.delay;
        if late {
            delay += self.o.reorder_delay;
            c.reordered += 1;
        }
        self.seq += 1;
        self.queue.push(Pending {
            at: Instant::now() + delay,
            seq: self.seq,
            dir,
            client,
            data: data.to_vec(),
        });
    }

    fn stats(&self, last: bool) -> String {
        format!(
            "{{\"final\":{},\"elapsed_ms\":{},\"clients\":{},\"refused_clients\":{},\"queued\":{},\
             \"up\":{},\"down\":{}}}",
            last,
            self.started.elapsed().as_millis(),
            self.clients.len(),
            self.refused_clients,
            self.queue.len(),
            self.c[UP].json(),
            self.c[DOWN].json()
        )
    }
}

fn print_line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

static TERM: AtomicBool = AtomicBool::new(false);
static USR1: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
mod sig {
    //! SIGTERM/SIGINT/SIGUSR1 set flags (no new dependencies: libc's `signal` is linked anyway).
    use super::{Ordering, TERM, USR1};

    const SIGINT: i32 = 2;
    const SIGUSR1: i32 = 10;
    const SIGTERM: i32 = 15;

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }

    extern "C" fn on_signal(n: i32) {
        // Only async-signal-safe work here: store a flag.
        if n == SIGUSR1 {
            USR1.store(true, Ordering::SeqCst);
        } else {
            TERM.store(true, Ordering::SeqCst);
        }
    }

    pub fn install() {
        for s in [SIGINT, SIGUSR1, SIGTERM] {
            // SAFETY: installs a handler that only stores to atomics.
            unsafe {
                signal(s, on_signal);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sig {
    pub fn install() {}
}

enum Cmd {
    Stats,
    Quit,
}

async fn run(o: Opts) -> std::io::Result<()> {
    let listener = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let port = listener.local_addr()?.port();

    // stdin: a plain thread (tokio's io-std feature is not enabled in this crate).
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Cmd>(16);
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let cmd = match line.trim() {
                        "stats" => Cmd::Stats,
                        "quit" => Cmd::Quit,
                        _ => continue,
                    };
                    if cmd_tx.blocking_send(cmd).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = cmd_tx.blocking_send(Cmd::Quit);
    });

    let (down_tx, mut down_rx) = mpsc::channel::<(SocketAddr, Vec<u8>)>(1024);
    let deadline = Instant::now() + o.max_time;
    let mut r = Relay {
        rng: [
            Rng(o.seed ^ 0x5550_5550_5550_5550),
            Rng(o.seed ^ 0x444f_574e_444f_574e),
        ],
        o,
        c: Default::default(),
        queue: BinaryHeap::new(),
        seq: 0,
        clients: HashMap::new(),
        refused_clients: 0,
        started: Instant::now(),
    };
    let mut readers = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    print_line(&format!("LISTENING {port}"));

    loop {
        let next = r.queue.peek().map(|p| p.at).unwrap_or(deadline);
        tokio::select! {
            res = listener.recv_from(&mut buf) => {
                let Ok((n, client)) = res else { continue };
                if !client.ip().is_loopback() {
                    continue;
                }
                if !r.clients.contains_key(&client) {
                    if r.clients.len() >= r.o.max_clients {
                        r.refused_clients += 1;
                        continue;
                    }
                    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
                    sock.connect(r.o.upstream).await?;
                    let (s, tx) = (sock.clone(), down_tx.clone());
                    readers.push(tokio::spawn(async move {
                        let mut b = vec![0u8; 65536];
                        loop {
                            let n = match s.recv(&mut b).await {
                                Ok(n) => n,
                                // An ICMP port unreachable from a send: upstream not there (yet).
                                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                                Err(_) => break,
                            };
                            if tx.send((client, b[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }));
                    r.clients.insert(client, sock);
                }
                r.admit(UP, client, &buf[..n]);
            }
            Some((client, data)) = down_rx.recv() => r.admit(DOWN, client, &data),
            _ = tokio::time::sleep_until(next), if !r.queue.is_empty() => {
                let now = Instant::now();
                while r.queue.peek().is_some_and(|p| p.at <= now) {
                    let p = r.queue.pop().expect("peeked");
                    let sent = if p.dir == UP {
                        match r.clients.get(&p.client) {
                            Some(s) => s.send(&p.data).await.is_ok(),
                            None => false,
                        }
                    } else {
                        listener.send_to(&p.data, p.client).await.is_ok()
                    };
                    let c = &mut r.c[p.dir];
                    if sent {
                        let len = p.data.len();
                        c.forwarded += 1;
                        c.forwarded_bytes += len as u64;
                        c.forwarded_big += u64::from(len >= r.o.big && len <= r.o.big_max);
                    } else {
                        c.send_errors += 1;
                    }
                }
            }
            cmd = cmd_rx.recv() => match cmd {
                Some(Cmd::Stats) => print_line(&r.stats(false)),
                Some(Cmd::Quit) | None => break,
            },
            _ = tick.tick() => {
                if USR1.swap(false, Ordering::SeqCst) {
                    print_line(&r.stats(false));
                }
                if TERM.load(Ordering::SeqCst) || Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    print_line(&r.stats(true));
    for t in readers {
        t.abort();
    }
    Ok(())
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("udp-relay: {e}");
            std::process::exit(2);
        }
    };
    sig::install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(o)) {
        eprintln!("udp-relay: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}
