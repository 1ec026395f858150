//! The HTTP API's accept loop: connections capped in total and per source
//! address before any work, a TLS handshake with a deadline on HTTPS, then
//! HTTP/1.1 with bounded headers and a deadline for them. Every
//! connection runs on the controller's task tracker; at shutdown each one
//! finishes its request in flight (event streams end) and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::{Instrument, debug, info, info_span, warn};

use super::auth::Peer;
use super::listen::Bound;
use crate::listener::backoff::{AcceptBackoff, is_per_connection};
use crate::listener::{Admission, Slot};

/// Connections served at once.
pub const MAX_CONNECTIONS: u32 = 1024;
/// Connections one source address may hold at once.
pub const MAX_CONNECTIONS_PER_ADDRESS: u32 = 128;
/// Largest request head (request line and headers).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most headers one request may have.
pub const MAX_HEADERS: usize = 64;
/// How long a client may take to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may finish its request once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Serves `router` on `bound` until `shutdown`, on `tasks`.
pub fn spawn(bound: Bound, router: Router, tasks: &TaskTracker, shutdown: CancellationToken) {
    spawn_named("HTTP API", bound, router, tasks, shutdown);
}

/// Like [`spawn`], for another listener with the same bounds (`/metrics`);
/// `what` names it in the log.
pub fn spawn_named(
    what: &'static str,
    bound: Bound,
    router: Router,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let accept = AcceptLoop {
        what,
        admission: Arc::new(Admission::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS)),
        acceptor: bound.tls.clone().map(TlsAcceptor::from),
        trusted_proxies: bound.trusted_proxies.clone().into(),
        router,
        tasks: tasks.clone(),
    };
    let span = info_span!("http", address = %bound.local);
    tasks.spawn(accept.run(bound, shutdown).instrument(span));
}

struct AcceptLoop {
    what: &'static str,
    admission: Arc<Admission>,
    acceptor: Option<TlsAcceptor>,
    trusted_proxies: Arc<[std::net::IpAddr]>,
    router: Router,
    tasks: TaskTracker,
}

impl AcceptLoop {
    async fn run(self, bound: Bound, shutdown: CancellationToken) {
        info!(url = %bound.url(), "{} listening", self.what);
        let mut backoff = AcceptBackoff::default();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = bound.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    match self.admission.admit(peer.ip()) {
                        Ok(slot) => self.start(stream, peer, slot, &shutdown),
                        // Dropping the stream closes it before any work.
                        Err(refusal) => {
                            debug!(%peer, ?refusal, "HTTP connection refused at accept")
                        }
                    }
                }
                Err(err) if is_per_connection(&err) => {
                    debug!(error = %err, "a connection failed while it was accepted");
                }
                Err(err) => {
                    let wait = backoff.failed(&err);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn start(&self, stream: TcpStream, peer: SocketAddr, slot: Slot, shutdown: &CancellationToken) {
        crate::listener::set_socket_options(&stream);
        let connection = Connection {
            stream,
            peer: Peer {
                address: peer,
                proxy: self.trusted_proxies.contains(&peer.ip()),
                certificate_serial: None,
            },
            acceptor: self.acceptor.clone(),
            router: self.router.clone(),
            _slot: slot,
        };
        let span = info_span!("http_connection", %peer);
        self.tasks
            .spawn(connection.serve(shutdown.clone()).instrument(span));
    }
}

/// One admitted connection; its slot is given back when it is dropped.
struct Connection {
    stream: TcpStream,
    peer: Peer,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    _slot: Slot,
}

impl Connection {
    async fn serve(self, shutdown: CancellationToken) {
        let mut peer = self.peer;
        let io = match &self.acceptor {
            None => Either::Left(self.stream),
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(self.stream));
                let tls = tokio::select! {
                    () = shutdown.cancelled() => return,
                    tls = handshake => tls,
                };
                match tls {
                    Ok(Ok(tls)) => {
                        peer.certificate_serial = client_serial(&tls);
                        Either::Right(tls)
                    }
                    Ok(Err(err)) => {
                        debug!(error = %err, "HTTPS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!("no HTTPS handshake within the deadline");
                        return;
                    }
                }
            }
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEADER_BYTES.max(64 * 1024));
        // Every request learns its peer (for sign-in limits and the client
        // certificate), from the connection it came on.
        let service = TowerToHyperService::new(self.router.map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer.clone());
                request
            },
        ));
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let served = tokio::select! {
            served = connection.as_mut() => served,
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(SHUTDOWN_GRACE, connection).await {
                    Ok(served) => served,
                    Err(_) => {
                        warn!("an HTTP connection did not finish within the shutdown grace");
                        return;
                    }
                }
            }
        };
        if let Err(err) = served {
            debug!(error = %err, "HTTP connection ended with an error");
        }
    }
}

/// The serial of the client certificate a TLS peer presented (already
/// verified against berth's CA by the handshake), if any.
fn client_serial(tls: &tokio_rustls::server::TlsStream<TcpStream>) -> Option<String> {
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    berth_shared::pki::cert_info(leaf)
        .ok()
        .map(|info| info.serial)
}
