//! Client mode: one session to the server under test, the echo exchanges, then the close.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use shiguredo_http3::webtransport::{ConnectRequest, DraftVersion, ServerSettingsParams};
use shiguredo_http3::{ClientConnection, Event, Settings, VarInt, WebTransportEvent as Wt};

use crate::json::{arr, obj, opt, s};
use crate::peer::{Peer, H3};
use crate::Args;

fn pattern(n: u64, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ salt).collect()
}

#[derive(Default)]
struct Got {
    status: Option<String>,
    headers: Vec<(String, String)>,
    established: bool,
    dgrams_in: u64,
    bidi: (Option<u64>, Vec<u8>, bool),
    uni: (Option<u64>, Vec<u8>, bool),
    server_bidi: HashMap<u64, Vec<u8>>,
    server_bidi_text: Option<String>,
    closed: Option<(u32, String, u64)>,
    resets: Vec<String>,
    /// The session capsules the library passed up (flow control: WT_*_BLOCKED from the server).
    capsules: Vec<String>,
}

pub async fn run(args: &Args) -> Result<(), String> {
    let port = args.num("--port", 0);
    let path = args.get("--path").unwrap_or("/").to_string();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().map_err(|_| "addr")?)
        .map_err(|e| e.to_string())?;
    ep.set_default_client_config(crate::tls::client_config()?);
    let addr = format!("127.0.0.1:{port}").parse().map_err(|_| "addr")?;
    let quic = ep
        .connect(addr, "localhost")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("connect: {e}"))?;

    // Our initial limits on what the server may send (draft-15 §3.1 / §5.5); the library raises
    // them with WT_MAX_DATA / WT_MAX_STREAMS as we consume.
    let defaults = ServerSettingsParams::default();
    let limit = |name: &str, d: VarInt| VarInt::new(args.num(name, d.get())).unwrap_or(d);
    let params = ServerSettingsParams {
        initial_max_data: limit("--initial-max-data", defaults.initial_max_data),
        initial_max_streams_uni: limit(
            "--initial-max-streams-uni",
            defaults.initial_max_streams_uni,
        ),
        ..defaults
    };
    let wt = DraftVersion::Draft15.build_client_settings(&params);
    let h3 = H3::Client(ClientConnection::new(
        Settings::new().enable_webtransport_client(wt),
    ));
    let mut p = Peer::start(h3, quic.clone()).await?;
    let deadline = Instant::now() + args.timeout();
    let mut errors: Vec<String> = Vec::new();

    // draft-15 §3.1/§7.1: the CONNECT waits for the server's SETTINGS.
    let mut server_settings = None;
    while server_settings.is_none() && Instant::now() < deadline {
        for ev in p.step(Duration::from_millis(50)).await? {
            if let Event::SettingsReceived {
                settings,
                wt_settings,
            } = ev
            {
                server_settings = Some((settings.webtransport_draft_pattern(), wt_settings));
            }
        }
    }
    let Some((draft, wt_settings)) = server_settings else {
        return Err("no SETTINGS from the server".into());
    };

    let (send, recv) = quic.open_bi().await.map_err(|e| e.to_string())?;
    let mut req = ConnectRequest::new("https", format!("localhost:{port}"), path.clone())
        .origin(format!("https://localhost:{port}"));
    if let Some(list) = args.get("--protocols") {
        req = req.available_protocols(list.split(',').map(str::to_string).collect());
    }
    let headers = req.to_headers().map_err(|e| format!("{e:?}"))?;
    let H3::Client(c) = &mut p.h3 else {
        return Err("role".into());
    };
    let sid = c
        .send_request(&headers, false)
        .map_err(|e| format!("send_request: {e:?}"))?;
    if sid != crate::io::stream_id(send.id()) {
        return Err(format!(
            "stream id mismatch: library {sid}, quinn {}",
            crate::io::stream_id(send.id())
        ));
    }
    if args.flag("--split-connect") {
        p.split = Some(sid);
    }
    p.adopt(send, recv);
    p.flush();

    let n_dgrams = args.num("--datagrams", 0);
    let bidi_bytes = args
        .get("--bidi-bytes")
        .map(|_| args.num("--bidi-bytes", 0));
    let uni_bytes = args.get("--uni-bytes").map(|_| args.num("--uni-bytes", 0));
    let (bidi_sent, uni_sent) = (
        pattern(bidi_bytes.unwrap_or(0), 0),
        pattern(uni_bytes.unwrap_or(0), 0x5a),
    );
    let want_server_bidi = args.flag("--server-bidi");
    let expect_close = args.flag("--expect-close");
    let mut g = Got::default();
    let mut started: Option<Instant> = None;
    let mut close_sent = false;
    let mut close_at: Option<Instant> = None;

    while Instant::now() < deadline && p.gone.is_none() {
        let events = match p.step(Duration::from_millis(20)).await {
            Ok(e) => e,
            Err(e) => {
                errors.push(e);
                break;
            }
        };
        for ev in events {
            on_event(&mut p, &mut g, sid, ev);
        }
        if g.established && started.is_none() {
            started = Some(Instant::now());
            for i in 0..n_dgrams {
                if let Err(e) = p.datagram(sid, format!("dgram-{i}").as_bytes()) {
                    errors.push(e);
                }
            }
            if bidi_bytes.is_some() {
                g.bidi.0 = Some(p.open_stream(sid, true, bidi_sent.clone()).await?);
            }
            if uni_bytes.is_some() {
                g.uni.0 = Some(p.open_stream(sid, false, uni_sent.clone()).await?);
            }
        }
        if g.status.is_some() && !g.established && g.status.as_deref() != Some("200") {
            break;
        }
        let Some(t0) = started else { continue };
        let dgrams_done = g.dgrams_in >= n_dgrams || t0.elapsed() > Duration::from_secs(2);
        let done = dgrams_done
            && (bidi_bytes.is_none() || g.bidi.2)
            && (uni_bytes.is_none() || g.uni.2)
            && (!want_server_bidi || g.server_bidi_text.is_some());
        // Closed by the server: read on briefly, so data after its CLOSE capsule (which draft-15
        // §6 forbids) shows up as an error here.
        if g.closed.is_some() && close_at.is_none() {
            close_at = Some(Instant::now());
        }
        if done && !expect_close && g.closed.is_none() {
            if let (Some(code), false) = (args.get("--close-code"), close_sent) {
                let code = code.parse().unwrap_or(0);
                p.close_session(sid, code, args.get("--close-reason").unwrap_or(""))?;
                close_sent = true;
                close_at = Some(Instant::now());
            } else if !close_sent {
                break;
            }
        }
        // After our close, linger briefly so the capsule and FIN leave before the connection closes.
        if close_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
    }
    quic.close(0u32.into(), b"done");
    ep.wait_idle().await;

    let ws = wt_settings.as_ref();
    let out = obj(&[
        ("status", opt(g.status.as_ref().map(|v| s(v)))),
        ("established", g.established.to_string()),
        ("serverDraft", s(&format!("{draft:?}"))),
        ("serverWtEnabled", opt(ws.map(|w| w.wt_enabled.get()))),
        (
            "serverInitialMaxData",
            opt(ws.map(|w| w.wt_initial_max_data.get())),
        ),
        (
            "serverInitialMaxStreamsUni",
            opt(ws.map(|w| w.wt_initial_max_streams_uni.get())),
        ),
        (
            "serverInitialMaxStreamsBidi",
            opt(ws.map(|w| w.wt_initial_max_streams_bidi.get())),
        ),
        (
            "headers",
            arr(&g
                .headers
                .iter()
                .map(|(k, v)| arr(&[s(k), s(v)]))
                .collect::<Vec<_>>()),
        ),
        (
            "datagrams",
            obj(&[
                ("sent", n_dgrams.to_string()),
                ("received", g.dgrams_in.to_string()),
            ]),
        ),
        (
            "bidi",
            obj(&[
                ("sent", bidi_sent.len().to_string()),
                ("received", g.bidi.1.len().to_string()),
                ("equal", (g.bidi.1 == bidi_sent).to_string()),
                ("fin", g.bidi.2.to_string()),
            ]),
        ),
        (
            "uni",
            obj(&[
                ("sent", uni_sent.len().to_string()),
                ("received", g.uni.1.len().to_string()),
                ("equal", (g.uni.1 == uni_sent).to_string()),
                ("fin", g.uni.2.to_string()),
            ]),
        ),
        ("serverBidi", opt(g.server_bidi_text.as_ref().map(|t| s(t)))),
        ("closeSent", close_sent.to_string()),
        (
            "closed",
            opt(g.closed.as_ref().map(|(c, r, e)| {
                obj(&[
                    ("code", c.to_string()),
                    ("reason", s(r)),
                    ("streamErrorCode", e.to_string()),
                ])
            })),
        ),
        (
            "resets",
            arr(&g.resets.iter().map(|r| s(r)).collect::<Vec<_>>()),
        ),
        (
            "capsules",
            arr(&g.capsules.iter().map(|c| s(c)).collect::<Vec<_>>()),
        ),
        ("gone", opt(p.gone.as_ref().map(|r| s(r)))),
        (
            "errors",
            arr(&errors.iter().map(|e| s(e)).collect::<Vec<_>>()),
        ),
    ]);
    println!("{out}");
    Ok(())
}

fn on_event(p: &mut Peer, g: &mut Got, sid: u64, ev: Event) {
    match ev {
        Event::Header {
            stream_id,
            name,
            value,
        } if stream_id == sid => {
            let (k, v) = (
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            );
            if k == ":status" {
                g.status = Some(v.clone());
            }
            g.headers.push((k, v));
        }
        Event::WebTransport(wt) => match wt {
            Wt::SessionEstablished { session_id, .. } if session_id == sid => g.established = true,
            Wt::Datagram { session_id, .. } if session_id == sid => g.dgrams_in += 1,
            Wt::BidiStreamOpen { stream_id, .. } => {
                g.server_bidi.insert(stream_id, Vec::new());
            }
            Wt::BidiStreamData { stream_id, data } => {
                if g.bidi.0 == Some(stream_id) {
                    g.bidi.1.extend_from_slice(&data);
                } else if let Some(buf) = g.server_bidi.get_mut(&stream_id) {
                    buf.extend_from_slice(&data);
                }
            }
            Wt::BidiStreamEnd { stream_id } => {
                if g.bidi.0 == Some(stream_id) {
                    g.bidi.2 = true;
                } else if let Some(buf) = g.server_bidi.remove(&stream_id) {
                    g.server_bidi_text = Some(String::from_utf8_lossy(&buf).into_owned());
                    p.write(stream_id, b"hello from wt-peer".to_vec(), true);
                }
            }
            // Our server answers a uni stream with one of its own (the spec's echo).
            Wt::UniStreamOpen { .. } => {}
            Wt::UniStreamData { data, .. } => g.uni.1.extend_from_slice(&data),
            Wt::UniStreamEnd { .. } => g.uni.2 = true,
            Wt::SessionClosed {
                session_id,
                close_error_code,
                close_message,
                error_code,
                ..
            } if session_id == sid => {
                g.closed = Some((close_error_code, close_message, error_code));
            }
            Wt::Capsule { capsule, .. } => g.capsules.push(format!("{capsule:?}")),
            Wt::StreamReset {
                stream_id,
                error_code,
                ..
            } => g.resets.push(format!("reset {stream_id} {error_code:#x}")),
            Wt::StreamStopSending {
                stream_id,
                error_code,
                ..
            } => g.resets.push(format!("stop {stream_id} {error_code:#x}")),
            Wt::BufferedStreamRejected {
                stream_id,
                error_code,
            } => g
                .resets
                .push(format!("rejected {stream_id} {error_code:#x}")),
            _ => {}
        },
        _ => {}
    }
}
