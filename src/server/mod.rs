//! The server role: bind the QUIC endpoint, accept connections, stop (gracefully or not).
//!
//! Tasks, top down: [`accept_loop`] spawns one [`connection::serve`] per QUIC connection, which
//! spawns one [`request::handle`] per request stream; a WebTransport CONNECT becomes a
//! [`session::serve`] task.

pub mod answers;
mod body_reader;
mod commands;
mod conn_ctx;
pub mod conn_info;
mod connection;
pub mod datagrams;
mod early_data;
mod qlog;
mod request;
mod responder;
pub mod response;
pub mod router;
mod session;
pub mod state;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{ServerConfig, UDP_SOCKET_BUFFER};
use crate::error::{H3Error, Result};
use crate::ids::RequestId;
use crate::proto::headers::H3_NO_ERROR;
use crate::stats::Stats;
use crate::sync::lock;
use crate::tls::ServerTls;
use crate::transport::close_settle;
use crate::transport::transport_config::{self, TransportParams};
use crate::webtransport::HandleTable;

use response::ResponseCmd;
use state::wait_state;
pub use state::{ActiveRoutes, Dispatcher, RequestHead, RequestKind, RunState, ServerState};

/// A running server: the endpoint plus the server state its tasks use.
pub struct Server {
    pub state: Arc<ServerState>,
    /// Complete responses from JS, routed to their requests on the runtime.
    pub answers: answers::Answers,
    /// Taken by `stop()`, so the UDP socket is released as soon as the server is stopped
    /// rather than when JS garbage-collects the server object.
    endpoint: Mutex<Option<quinn::Endpoint>>,
    pub local_addr: SocketAddr,
}

fn transport(cfg: &ServerConfig) -> Result<quinn::TransportConfig> {
    transport_config::build(&TransportParams {
        max_bidi_streams: Some(cfg.max_concurrent_streams),
        // Control, QPACK encoder/decoder and a few extension streams; WebTransport needs more.
        max_uni_streams: if cfg.enable_webtransport { 100 } else { 8 },
        idle_timeout: cfg.idle_timeout,
        datagrams: cfg.enable_datagram || cfg.quic_datagram_handler,
        bounded_send_window: true,
    })
}

fn bind_socket(cfg: &ServerConfig) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_err = |source| H3Error::Bind {
        addr: cfg.addr.to_string(),
        source,
    };
    let socket = Socket::new(
        Domain::for_address(cfg.addr),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(bind_err)?;
    if cfg.addr.is_ipv6() {
        // "::" means dual stack.
        socket.set_only_v6(false).map_err(bind_err)?;
    }
    if cfg.reuse_port {
        #[cfg(unix)]
        socket.set_reuse_port(true).map_err(bind_err)?;
    }
    // Larger kernel buffers absorb bursts; failure here is not fatal.
    let _ = socket.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_SOCKET_BUFFER);
    socket.bind(&cfg.addr.into()).map_err(bind_err)?;
    Ok(socket.into())
}

impl Server {
    /// Bind synchronously (must run inside the tokio runtime context) and start accepting.
    pub fn start(
        config: ServerConfig,
        tls: &ServerTls,
        routes: ActiveRoutes,
        dispatcher: Box<dyn Dispatcher>,
    ) -> Result<Server> {
        let config = ServerConfig {
            allow_0rtt: tls.early_data,
            ..config
        };
        let crypto = crate::tls::server_crypto(tls)?;
        let mut server_config = quinn::ServerConfig::with_crypto(crypto);
        server_config.transport_config(Arc::new(transport(&config)?));
        let qlog = qlog::Qlog::new(&config, &server_config)?;
        let socket = bind_socket(&config)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| H3Error::Bind {
            addr: config.addr.to_string(),
            source,
        })?;
        let local_addr = endpoint.local_addr()?;
        let stats = Arc::new(Stats::default());
        let webtransport = if config.enable_webtransport {
            Some(HandleTable::new(stats.clone())?)
        } else {
            None
        };
        let state = Arc::new(ServerState::new(
            config,
            routes,
            stats,
            webtransport,
            dispatcher,
        ));
        tokio::spawn(accept_loop(endpoint.clone(), state.clone(), qlog));
        Ok(Server {
            answers: answers::Answers::start(state.clone()),
            state,
            endpoint: Mutex::new(Some(endpoint)),
            local_addr,
        })
    }

    /// Graceful: GOAWAY every connection, let in-flight requests finish, then close.
    /// Forced: close every connection now (in-flight requests are aborted).
    pub async fn stop(&self, force: bool) {
        let server = &self.state;
        if server.run_state() == RunState::Closed {
            return;
        }
        server.run_state.send_replace(RunState::Draining);
        if force {
            self.reset_responses().await;
        }
        if !force {
            loop {
                let ended = server.conn_ended.notified();
                if server.lock_conns().is_empty() {
                    break;
                }
                ended.await;
            }
        }
        server.run_state.send_replace(RunState::Closed);
        let endpoint = lock(&self.endpoint).take();
        if let Some(endpoint) = endpoint {
            endpoint.close(H3_NO_ERROR, b"server stopped");
            // Flush the CONNECTION_CLOSE frames; bounded so a stop never hangs.
            let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
            drop(endpoint);
            self.wait_port_released().await;
        }
        // Anything JS still holds can no longer be answered.
        let ids: Vec<RequestId> = server.lock_pending().keys().copied().collect();
        for id in ids {
            server.dispatcher.abort(id);
        }
    }
}

impl Server {
    /// A forced stop resets the responses still being sent, and gives the resets time to go
    /// out, before the connections close: else the close can stay stuck behind their queued
    /// data until each client's idle timeout (see [`close_settle`]).
    async fn reset_responses(&self) {
        let server = &self.state;
        let ids: Vec<RequestId> = server.lock_pending().keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        for id in ids {
            // Gone meanwhile: nothing left to reset.
            let _ = server.command(id, ResponseCmd::Abort);
        }
        let settle = {
            let conns = server.lock_conns();
            close_settle::settle_time(conns.values().map(|q| q.rtt()))
        };
        tokio::time::sleep(settle).await;
    }

    /// quinn's endpoint driver lets go of the socket a moment after the last handle; wait for
    /// that (bounded), so a server started on the same port right after `stop()` can bind.
    async fn wait_port_released(&self) {
        if self.state.config.reuse_port {
            return;
        }
        for _ in 0..50 {
            if std::net::UdpSocket::bind(self.local_addr).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    server: Arc<ServerState>,
    qlog: Option<Arc<qlog::Qlog>>,
) {
    let mut state = server.run_state.subscribe();
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => i,
            _ = wait_state(&mut state, |s| s != RunState::Running) => None,
        };
        let Some(incoming) = incoming else { break };
        let active = server.stats.connections_active.load(Relaxed);
        if active >= u64::from(server.config.max_connections) {
            server.stats.connection_errors.fetch_add(1, Relaxed);
            incoming.refuse();
            continue;
        }
        // Traced: the connection gets a server config of its own (see qlog.rs).
        let accepted = match &qlog {
            Some(q) => {
                let cfg = q.config_for(&incoming);
                incoming.accept_with(cfg)
            }
            None => incoming.accept(),
        };
        match accepted {
            Ok(connecting) => {
                tokio::spawn(connection::serve(connecting, server.clone()));
            }
            Err(_) => {
                server.stats.connection_errors.fetch_add(1, Relaxed);
            }
        }
    }
    // While draining, refuse newcomers instead of letting them time out.
    while server.run_state() == RunState::Draining {
        tokio::select! {
            i = endpoint.accept() => match i {
                Some(incoming) => incoming.refuse(),
                None => break,
            },
            _ = wait_state(&mut state, |s| s == RunState::Closed) => break,
        }
    }
}
