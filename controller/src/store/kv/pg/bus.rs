//! LISTEN/NOTIFY: the signals the controllers of one store send each
//! other (`cluster.rs` says which). One connection listens, on a thread of
//! its own; another sends, in the order the signals were given, on a
//! second thread. A signal is only ever a hint to read the store again:
//! it is sent after the change it names is committed, and a listener that
//! lost its connection says so ([`Heard::Reconnected`]) so its controller
//! reads everything it may have missed.

use std::sync::mpsc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use tracing::warn;

use super::{Pool, Settings, failed};

/// How long a thread waits before it connects again after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// The most bytes PostgreSQL takes in one notification's payload (8000),
/// less a margin.
pub const MAX_PAYLOAD: usize = 7900;

/// What the listening thread hands on.
#[derive(Debug)]
pub enum Heard {
    /// A notification's payload.
    Signal(String),
    /// The listening connection was lost and is back: notifications of
    /// the gap are gone.
    Reconnected,
}

/// Sends payloads on the store's channel, in order; never blocks.
#[derive(Clone)]
pub struct BusSender {
    queue: mpsc::Sender<(String, bool)>,
}

impl BusSender {
    /// Queues `payload` (at most [`MAX_PAYLOAD`] bytes; a longer one is
    /// dropped with a warning, so callers split what may grow).
    pub fn send(&self, payload: String) {
        self.queue_payload(payload, false);
    }

    /// Queues `payload`, which may be sent once for several equal ones
    /// queued together (a hint to read the store again).
    pub fn send_coalesced(&self, payload: String) {
        self.queue_payload(payload, true);
    }

    fn queue_payload(&self, payload: String, coalesce: bool) {
        if payload.len() > MAX_PAYLOAD {
            warn!(
                bytes = payload.len(),
                "a signal to the other controllers was too long and was dropped"
            );
            return;
        }
        let _ = self.queue.send((payload, coalesce));
    }
}

impl Pool {
    /// The store's channel: one per schema, like the lock ids.
    fn channel(&self) -> String {
        format!("berth_{:016x}", self.lock_id("bus", b"").cast_unsigned())
    }

    /// Starts listening and sending on the store's channel. The threads
    /// end when both the sender and the receiver are dropped.
    pub fn bus(&self) -> (BusSender, tokio::sync::mpsc::UnboundedReceiver<Heard>) {
        let channel = self.channel();
        let (heard, receiver) = tokio::sync::mpsc::unbounded_channel();
        let listen = self.settings.named("berth-bus listen");
        let name = channel.clone();
        std::thread::spawn(move || listen_loop(&listen, &name, &heard));
        let (queue, queued) = mpsc::channel();
        let send = self.settings.named("berth-bus send");
        std::thread::spawn(move || send_loop(&send, &channel, &queued));
        (BusSender { queue }, receiver)
    }
}

fn listen_loop(
    settings: &Settings,
    channel: &str,
    heard: &tokio::sync::mpsc::UnboundedSender<Heard>,
) {
    let mut first = true;
    while !heard.is_closed() {
        let mut conn = match settings.connect() {
            Ok(conn) => conn,
            Err(err) => {
                warn!(error = %err, "cannot listen for the other controllers' signals; trying again");
                std::thread::sleep(RETRY);
                continue;
            }
        };
        if let Err(err) = conn.batch_execute(&format!("LISTEN \"{channel}\"")) {
            warn!(error = %failed(err), "cannot listen for the other controllers' signals; trying again");
            std::thread::sleep(RETRY);
            continue;
        }
        if !first && heard.send(Heard::Reconnected).is_err() {
            return;
        }
        first = false;
        loop {
            let next = conn.notifications().timeout_iter(RETRY).next();
            match next {
                Ok(Some(notification)) => {
                    if heard
                        .send(Heard::Signal(notification.payload().to_string()))
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) if heard.is_closed() => return,
                Ok(None) if conn.is_closed() => break,
                Ok(None) => {}
                Err(err) => {
                    warn!(error = %failed(err), "lost the connection that listens for the other controllers' signals; listening again");
                    break;
                }
            }
        }
    }
}

fn send_loop(settings: &Settings, channel: &str, queued: &mpsc::Receiver<(String, bool)>) {
    let mut conn: Option<postgres::Client> = None;
    while let Ok(first) = queued.recv() {
        // What queued up meanwhile goes in the same round; hints once.
        let mut batch = vec![first];
        while let Ok(next) = queued.try_recv() {
            if !(next.1 && batch.contains(&next)) {
                batch.push(next);
            }
        }
        for (payload, _) in batch {
            for attempt in 0..2 {
                let client = match conn.as_mut() {
                    Some(client) if !client.is_closed() => client,
                    _ => match settings.connect() {
                        Ok(client) => conn.insert(client),
                        Err(err) => {
                            warn!(error = %err, "cannot signal the other controllers");
                            std::thread::sleep(RETRY);
                            continue;
                        }
                    },
                };
                match client.execute("SELECT pg_notify($1, $2)", &[&channel, &payload]) {
                    Ok(_) => break,
                    Err(err) => {
                        conn = None;
                        if attempt == 1 {
                            warn!(error = %failed(err), "a signal to the other controllers was lost; they read the store again when their own link breaks");
                        }
                    }
                }
            }
        }
    }
}
