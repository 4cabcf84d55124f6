//! Server mode: accepts every WebTransport session, echoes, opens a stream of its own, and prints
//! one JSON line per event for the spec to read.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use shiguredo_http3::webtransport::{ConnectResponse, DraftVersion, ServerSettingsParams};
use shiguredo_http3::{Event, ServerConnection, Settings, WebTransportEvent as Wt};

use crate::json::{arr, obj, s};
use crate::peer::{Peer, H3};
use crate::Args;

fn emit(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub async fn run(_args: &Args) -> Result<(), String> {
    let (cfg, hash) = crate::tls::server_config()?;
    let ep = quinn::Endpoint::server(cfg, "127.0.0.1:0".parse().map_err(|_| "addr")?)
        .map_err(|e| e.to_string())?;
    let port = ep.local_addr().map_err(|e| e.to_string())?.port();
    emit(obj(&[("port", port.to_string()), ("certHash", s(&hash))]));
    while let Some(incoming) = ep.accept().await {
        tokio::spawn(async move {
            if let Err(e) = serve(incoming).await {
                emit(obj(&[("event", s("error")), ("error", s(&e))]));
            }
        });
    }
    Ok(())
}

#[derive(Default)]
struct Conn {
    headers: HashMap<u64, Vec<(String, String)>>,
    paths: HashMap<u64, String>,
    uni: HashMap<u64, Vec<u8>>,
    own_bidi: HashMap<u64, Vec<u8>>,
}

async fn serve(incoming: quinn::Incoming) -> Result<(), String> {
    let quic = incoming.await.map_err(|e| e.to_string())?;
    let wt = DraftVersion::Draft15.build_server_settings(&ServerSettingsParams::default());
    let h3 = H3::Server(ServerConnection::new(
        Settings::new().enable_webtransport_server(wt),
    ));
    let mut p = Peer::start(h3, quic).await?;
    let mut c = Conn::default();
    while p.gone.is_none() {
        for ev in p.step(Duration::from_secs(1)).await? {
            on_event(&mut p, &mut c, ev).await?;
        }
    }
    Ok(())
}

async fn on_event(p: &mut Peer, c: &mut Conn, ev: Event) -> Result<(), String> {
    match ev {
        Event::Header {
            stream_id,
            name,
            value,
        } => {
            let kv = (
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            );
            c.headers.entry(stream_id).or_default().push(kv);
        }
        Event::HeadersEnd { stream_id } => accept(p, c, stream_id).await?,
        Event::WebTransport(wt) => match wt {
            Wt::Datagram {
                session_id,
                payload,
            } => p.datagram(session_id, &payload)?,
            Wt::BidiStreamOpen {
                stream_id,
                session_id,
            } if stream_id % 4 == 0 => {
                emit(obj(&[
                    ("event", s("bidi")),
                    ("session", session_id.to_string()),
                ]));
            }
            Wt::BidiStreamData { stream_id, data } => {
                if let Some(buf) = c.own_bidi.get_mut(&stream_id) {
                    buf.extend_from_slice(&data);
                } else {
                    p.write(stream_id, data, false);
                }
            }
            Wt::BidiStreamEnd { stream_id } => {
                if let Some(buf) = c.own_bidi.remove(&stream_id) {
                    emit(obj(&[
                        ("event", s("serverBidiReply")),
                        ("text", s(&String::from_utf8_lossy(&buf))),
                    ]));
                } else {
                    p.write(stream_id, Vec::new(), true);
                }
            }
            Wt::UniStreamOpen { stream_id, .. } => {
                c.uni.insert(stream_id, Vec::new());
            }
            Wt::UniStreamData { stream_id, data } => {
                c.uni.entry(stream_id).or_default().extend_from_slice(&data)
            }
            Wt::UniStreamEnd { stream_id } => {
                let data = c.uni.remove(&stream_id).unwrap_or_default();
                let session = p.session_of(stream_id);
                emit(obj(&[
                    ("event", s("uni")),
                    ("bytes", data.len().to_string()),
                ]));
                if let Some(sid) = session {
                    p.open_stream(sid, false, data).await?;
                }
            }
            Wt::SessionClosed {
                session_id,
                close_error_code,
                close_message,
                error_code,
                ..
            } => {
                emit(obj(&[
                    ("event", s("closed")),
                    ("session", session_id.to_string()),
                    (
                        "path",
                        s(c.paths.get(&session_id).map_or("", String::as_str)),
                    ),
                    ("code", close_error_code.to_string()),
                    ("reason", s(&close_message)),
                    ("streamErrorCode", error_code.to_string()),
                ]));
            }
            Wt::StreamReset {
                stream_id,
                error_code,
                ..
            } => emit(obj(&[
                ("event", s("reset")),
                ("stream", stream_id.to_string()),
                ("code", error_code.to_string()),
            ])),
            _ => {}
        },
        _ => {}
    }
    Ok(())
}

/// Answers a CONNECT with 200 (and the first offered protocol in WT-Protocol, draft-15 §3.4).
async fn accept(p: &mut Peer, c: &mut Conn, sid: u64) -> Result<(), String> {
    let headers = c.headers.remove(&sid).unwrap_or_default();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if get(":method").as_deref() != Some("CONNECT") {
        return Ok(());
    }
    let path = get(":path").unwrap_or_default();
    let offered = get("wt-available-protocols")
        .map(|v| shiguredo_http3::webtransport::ConnectRequest::parse_available_protocols(&v))
        .unwrap_or_default();
    let mut resp = ConnectResponse::new(200);
    if let Some(first) = offered.first() {
        resp = resp.with_protocol(first.clone());
    }
    let out = resp.to_headers().map_err(|e| format!("{e:?}"))?;
    let H3::Server(conn) = &mut p.h3 else {
        return Err("role".into());
    };
    conn.send_response(sid, &out, false)
        .map_err(|e| format!("send_response: {e:?}"))?;
    p.sessions.insert(sid);
    p.flush();
    emit(obj(&[
        ("event", s("session")),
        ("session", sid.to_string()),
        ("path", s(&path)),
        (
            "protocol",
            get(":protocol").map_or("null".into(), |v| s(&v)),
        ),
        (
            "offered",
            arr(&offered.iter().map(|o| s(o)).collect::<Vec<_>>()),
        ),
        (
            "headers",
            arr(&headers
                .iter()
                .map(|(k, v)| arr(&[s(k), s(v)]))
                .collect::<Vec<_>>()),
        ),
    ]));
    c.paths.insert(sid, path.clone());
    if path == "/close" {
        return p.close_session(sid, 7, "server-bye");
    }
    let id = p
        .open_stream(sid, true, b"hello from wt-peer server".to_vec())
        .await?;
    c.own_bidi.insert(id, Vec::new());
    Ok(())
}
