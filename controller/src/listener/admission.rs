//! Admission: how many connections are open in total and per source
//! address, the [`Slot`] each admitted connection holds until it closes,
//! and the count and rate-limited log of the connections refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` connections are open.
    Total,
    /// Its address holds `--max-connections-per-address` connections.
    Address,
}

#[derive(Default)]
struct Counts {
    open: u32,
    per_address: HashMap<IpAddr, u32>,
    refused_total: u64,
    refused_address: u64,
    /// The refusal counts at the last report.
    reported: (u64, u64),
}

/// The open connections and the caps they are held to.
pub struct Admission {
    max_total: u32,
    max_per_address: u32,
    counts: Mutex<Counts>,
}

/// One admitted connection; its count is given back when it is dropped.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub fn new(max_total: u32, max_per_address: u32) -> Admission {
        Admission {
            max_total,
            max_per_address,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a connection from `address`, or why there is none (the
    /// refusal is counted).
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refusal> {
        let mut counts = self.counts();
        if counts.open >= self.max_total {
            counts.refused_total += 1;
            return Err(Refusal::Total);
        }
        let held = counts.per_address.get(&address).copied().unwrap_or(0);
        if held >= self.max_per_address {
            counts.refused_address += 1;
            return Err(Refusal::Address);
        }
        counts.open += 1;
        counts.per_address.insert(address, held + 1);
        Ok(Slot {
            admission: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.counts().open
    }

    /// Connections refused so far: over the total cap, over an address's.
    pub fn refused(&self) -> (u64, u64) {
        let counts = self.counts();
        (counts.refused_total, counts.refused_address)
    }

    /// Logs the counters when refusals happened since the last report.
    pub fn report(&self) {
        let mut counts = self.counts();
        let now = (counts.refused_total, counts.refused_address);
        if now == counts.reported {
            return;
        }
        counts.reported = now;
        info!(
            open = counts.open,
            addresses = counts.per_address.len(),
            refused_over_total = now.0,
            refused_over_address = now.1,
            "connections refused by the connection limits so far"
        );
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.open = counts.open.saturating_sub(1);
        if let Some(held) = counts.per_address.get_mut(&self.address) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_address.remove(&self.address);
            }
        }
    }
}

/// How often a refused connection is logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs refused connections at most once per [`LOG_EVERY`], saying how many
/// were not logged in between.
#[derive(Default)]
pub struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    pub fn note(&mut self, peer: SocketAddr, refusal: Refusal, admission: &Admission) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let (refused_over_total, refused_over_address) = admission.refused();
        let (cap, limit) = match refusal {
            Refusal::Total => ("--max-connections", admission.max_total),
            Refusal::Address => ("--max-connections-per-address", admission.max_per_address),
        };
        warn!(
            %peer,
            limit,
            not_logged_since_last = self.unlogged,
            refused_over_total,
            refused_over_address,
            "connection refused at accept: {cap} reached; raise it on berth-controller serve if these are real clients"
        );
        self.last = Some(now);
        self.unlogged = 0;
    }
}

/// Logs refused TLS handshakes (a foreign or expired certificate, a
/// scanner, a peer that never finishes) at most once per [`LOG_EVERY`],
/// with the peer and how many were refused in all: each one leaves a
/// trace without a flood being able to fill the log.
#[derive(Default)]
pub struct HandshakeLog {
    state: std::sync::Mutex<HandshakeLogState>,
}

#[derive(Default)]
struct HandshakeLogState {
    last: Option<Instant>,
    unlogged: u64,
    refused: u64,
}

impl HandshakeLog {
    pub fn note(&self, peer: SocketAddr, reason: &str) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.refused += 1;
        let now = Instant::now();
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < LOG_EVERY)
        {
            state.unlogged += 1;
            return;
        }
        warn!(
            %peer,
            refused_in_all = state.refused,
            not_logged_since_last = state.unlogged,
            "TLS handshake refused: {reason}"
        );
        state.last = Some(now);
        state.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_the_total_and_gives_slots_back() {
        let admission = Arc::new(Admission::new(3, 2));
        let one: IpAddr = "127.0.0.1".parse().expect("ip");
        let two: IpAddr = "127.0.0.2".parse().expect("ip");
        let first = admission.admit(one).expect("first");
        let _second = admission.admit(one).expect("second");
        assert_eq!(admission.admit(one).err(), Some(Refusal::Address));
        let _third = admission.admit(two).expect("another address");
        assert_eq!(admission.admit(two).err(), Some(Refusal::Total));
        assert_eq!(admission.open(), 3);
        assert_eq!(admission.refused(), (1, 1));
        drop(first);
        assert_eq!(admission.open(), 2);
        admission
            .admit(one)
            .expect("a closed connection frees its slot");
    }
}
