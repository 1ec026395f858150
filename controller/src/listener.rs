//! The controller's one TCP listener, in front of tonic: it bounds what a
//! peer can hold before it has proven anything. Connections over the total
//! or per-address cap are closed right after accept, before TLS, and
//! counted ([`admission`]); the TLS handshake has a deadline; a connection
//! without a client certificate is closed a fixed time after accept, and
//! one with a certificate must send its first bytes by then ([`conn`]);
//! accept errors such as EMFILE back off instead of spinning ([`backoff`]).

mod admission;
pub(crate) mod backoff;
mod conn;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

pub use admission::{Admission, Slot};
pub use conn::{Conn, set_socket_options};
pub use tls::{client_verifier, server_config};

use admission::{HandshakeLog, RefusalLog};
use backoff::AcceptBackoff;

/// Connections served at once unless `--max-connections` says otherwise
/// (and the open-file limit allows).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16_384;
/// Connections one source address may hold unless
/// `--max-connections-per-address` says otherwise.
pub const DEFAULT_MAX_PER_ADDRESS: u32 = 512;
/// How long a connection without a client certificate may live unless
/// `--unauthenticated-connection-age` says otherwise.
pub const DEFAULT_UNAUTHENTICATED_AGE: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open files kept free for the store, blobs and logs when the connection
/// cap is derived from the open-file limit.
const RESERVED_FILES: u64 = 256;
/// How often the connection counters are logged when they changed.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What one peer and all peers together may hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections at once in total; `None` derives it from the open-file
    /// limit (at most [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: Option<u32>,
    /// Connections at once from one source address.
    pub max_per_address: u32,
    /// Lifetime of a connection without a client certificate, from accept.
    pub unauthenticated_age: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: None,
            max_per_address: DEFAULT_MAX_PER_ADDRESS,
            unauthenticated_age: DEFAULT_UNAUTHENTICATED_AGE,
        }
    }
}

/// The soft open-file limit of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The total cap: the one asked for (with a warning when the open-file
/// limit cannot hold it), or the default kept under that limit.
fn total_cap(asked: Option<u32>, files: Option<u64>) -> u32 {
    match (asked, files) {
        (Some(asked), Some(files)) if u64::from(asked) + RESERVED_FILES > files => {
            tracing::warn!(
                max_connections = asked,
                open_file_limit = files,
                "--max-connections is above what the open-file limit can hold; accepts will fail and back off at the limit; raise LimitNOFILE or lower --max-connections"
            );
            asked
        }
        (Some(asked), _) => asked,
        (None, None) => DEFAULT_MAX_CONNECTIONS,
        (None, Some(files)) => {
            let room = files.saturating_sub(RESERVED_FILES).max(files / 2);
            u32::try_from(room)
                .unwrap_or(u32::MAX)
                .clamp(1, DEFAULT_MAX_CONNECTIONS)
        }
    }
}

/// Accepts on `listener` until `shutdown`, and yields TLS connections that
/// passed admission and the handshake. The accept loop and the handshakes
/// run on `tasks`.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: &Limits,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> ReceiverStream<std::io::Result<Conn>> {
    let total = total_cap(limits.max_connections, open_file_limit());
    tracing::info!(
        max_connections = total,
        max_per_address = limits.max_per_address,
        unauthenticated_age_s = limits.unauthenticated_age.as_secs_f64(),
        "connection limits"
    );
    let (sender, receiver) = mpsc::channel(64);
    let accept = AcceptLoop {
        listener,
        acceptor: TlsAcceptor::from(tls),
        admission: Arc::new(Admission::new(total, limits.max_per_address)),
        handshakes: Arc::new(HandshakeLog::default()),
        age: limits.unauthenticated_age,
        sender,
        tasks: tasks.clone(),
    };
    tasks.spawn(accept.run(shutdown));
    ReceiverStream::new(receiver)
}

struct AcceptLoop {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    admission: Arc<Admission>,
    handshakes: Arc<HandshakeLog>,
    age: Duration,
    sender: mpsc::Sender<std::io::Result<Conn>>,
    tasks: TaskTracker,
}

impl AcceptLoop {
    async fn run(self, shutdown: CancellationToken) {
        let mut backoff = AcceptBackoff::default();
        let mut refusals = RefusalLog::default();
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.sender.closed() => return,
                _ = report.tick() => {
                    self.admission.report();
                    continue;
                }
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    match self.admission.admit(peer.ip()) {
                        Ok(slot) => self.start(stream, peer, slot, &shutdown),
                        // Dropping the stream closes it before any TLS work.
                        Err(refusal) => refusals.note(peer, refusal, &self.admission),
                    }
                }
                Err(err) if backoff::is_per_connection(&err) => {
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

    /// Runs the TLS handshake of an admitted connection on its own task.
    fn start(&self, stream: TcpStream, peer: SocketAddr, slot: Slot, shutdown: &CancellationToken) {
        let accepted_at = Instant::now();
        conn::set_socket_options(&stream);
        let acceptor = self.acceptor.clone();
        let sender = self.sender.clone();
        let shutdown = shutdown.clone();
        let age = self.age;
        let handshakes = self.handshakes.clone();
        self.tasks.spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = tokio::select! {
                () = shutdown.cancelled() => return,
                tls = handshake => tls,
            };
            let tls = match tls {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    handshakes.note(peer, &berth_shared::text::clip(&err.to_string(), 200));
                    return;
                }
                Err(_) => {
                    handshakes.note(peer, "no handshake within 10s");
                    return;
                }
            };
            let conn = Conn::new(tls, slot, accepted_at + age);
            let _ = sender.send(Ok(conn)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_cap_stays_under_the_open_file_limit() {
        let check = |asked: Option<u32>, files: Option<u64>, cap: u32| {
            assert_eq!(
                total_cap(asked, files),
                cap,
                "asked {asked:?}, files {files:?}"
            );
        };
        check(None, None, DEFAULT_MAX_CONNECTIONS);
        check(None, Some(65_536), DEFAULT_MAX_CONNECTIONS);
        check(None, Some(1024), 768);
        check(None, Some(64), 32);
        check(None, Some(1), 1);
        check(Some(100), Some(64), 100);
        check(Some(100_000), None, 100_000);
    }
}
