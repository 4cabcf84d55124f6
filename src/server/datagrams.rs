//! A server's datagrams: the per-connection reader hands HTTP datagrams (RFC 9297) and bare
//! QUIC datagrams to JS; JS sends them back by connection id.

use std::sync::Arc;

use super::conn_ctx::ConnCtx;
use super::state::ServerState;
use crate::error::{H3Error, Result};
use crate::ids::{ConnectionId, StreamId};
use crate::transport::datagram::{self, Datagram, Target};

/// Read the connection's datagrams until it closes (session datagrams go to their session).
pub(super) async fn read_loop(server: Arc<ServerState>, ctx: Arc<ConnCtx>) {
    let quic_handler = server.config.quic_datagram_handler;
    datagram::read_loop(
        &ctx.quic,
        server.config.enable_datagram,
        &ctx.datagram_routes,
        &server.stats,
        |target, payload| {
            if matches!(target, Target::Quic) && !quic_handler {
                return false;
            }
            server.dispatcher.datagram(Datagram {
                conn_id: ctx.id,
                target,
                payload,
            })
        },
    )
    .await
}

/// Send a datagram on connection `conn_id`, as an HTTP datagram of `stream_id` when given.
pub fn send(
    server: &ServerState,
    conn_id: ConnectionId,
    stream_id: Option<StreamId>,
    payload: &[u8],
) -> Result<()> {
    let quic = server.conn(conn_id).ok_or(H3Error::ConnectionLost)?;
    datagram::send_on(&quic, &server.stats, stream_id, payload)
}

/// Largest payload that fits one datagram on `conn_id` now.
pub fn max_size(
    server: &ServerState,
    conn_id: ConnectionId,
    stream_id: Option<StreamId>,
) -> Option<usize> {
    datagram::max_size_on(&server.conn(conn_id)?, stream_id)
}
