//! Backing off from accept errors: a failing `accept` (EMFILE when the
//! open-file limit is reached, ENFILE, ENOMEM) fails again at once while
//! the connection waits in the backlog, so retrying without a pause spins a
//! core and starves every other task. The loop waits 10 ms, doubling to
//! 1 s, and logs once per episode of errors.

use std::io;
use std::time::{Duration, Instant};

use tracing::{info, warn};

const FIRST_WAIT: Duration = Duration::from_millis(10);
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Whether an accept error concerns only the connection being accepted
/// (it went away), so the next accept may work at once.
pub fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// An episode ends once accepts work and none failed for this long; a
/// limit that frees one file now and then does not start a new episode.
const QUIET: Duration = Duration::from_secs(5);

/// A run of accept errors.
struct Episode {
    started: Instant,
    last_error: Instant,
    errors: u64,
}

/// The wait before the next accept, and the episode of errors under way.
pub struct AcceptBackoff {
    next: Duration,
    episode: Option<Episode>,
}

impl Default for AcceptBackoff {
    fn default() -> AcceptBackoff {
        AcceptBackoff {
            next: FIRST_WAIT,
            episode: None,
        }
    }
}

impl AcceptBackoff {
    /// Notes a failed accept; returns how long to wait before the next.
    pub fn failed(&mut self, err: &io::Error) -> Duration {
        let now = Instant::now();
        match &mut self.episode {
            Some(episode) if now.duration_since(episode.last_error) < QUIET => {
                episode.errors += 1;
                episode.last_error = now;
            }
            _ => {
                warn!(
                    error = %err,
                    "accepting connections failed; retrying with backoff (10ms doubling to 1s) and not logging again until it works; if this is the open-file limit, raise LimitNOFILE or lower --max-connections"
                );
                self.episode = Some(Episode {
                    started: now,
                    last_error: now,
                    errors: 1,
                });
            }
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_WAIT);
        wait
    }

    /// Notes an accept that worked; ends the episode of errors once none
    /// happened for [`QUIET`].
    pub fn succeeded(&mut self) {
        self.next = FIRST_WAIT;
        let Some(episode) = &self.episode else {
            return;
        };
        if episode.last_error.elapsed() < QUIET {
            return;
        }
        info!(
            errors = episode.errors,
            lasted_ms = episode
                .last_error
                .duration_since(episode.started)
                .as_millis() as u64,
            "accepting connections again"
        );
        self.episode = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_a_second_and_start_over_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        let err = io::Error::from_raw_os_error(24);
        let waits: Vec<u64> = (0..10)
            .map(|_| backoff.failed(&err).as_millis() as u64)
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(&err), FIRST_WAIT);
    }

    #[test]
    fn a_success_between_errors_does_not_end_the_episode() {
        let mut backoff = AcceptBackoff::default();
        let err = io::Error::from_raw_os_error(24);
        backoff.failed(&err);
        backoff.succeeded();
        backoff.failed(&err);
        assert_eq!(
            backoff.episode.as_ref().map(|episode| episode.errors),
            Some(2)
        );
    }

    #[test]
    fn only_a_vanished_connection_is_retried_at_once() {
        assert!(is_per_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(!is_per_connection(&io::Error::from_raw_os_error(24)));
        assert!(!is_per_connection(&io::Error::from_raw_os_error(23)));
    }
}
