//! Sending the outbox in batches: everything not yet acknowledged, a
//! bounded number of batches in flight per task, resent after a silence.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use berth_proto::v1::agent_message::Kind as Outgoing;

use berth_shared::id::TaskId;

use super::{Ended, Pump};

/// Most events sent in one batch.
pub(super) const BATCH_EVENTS: usize = 512;
/// Most encoded bytes in one batch, well under the message size limit.
pub(super) const BATCH_BYTES: usize = 1024 * 1024;
/// Batches sent before the pump turns to incoming messages again.
pub(super) const BATCHES_PER_TURN: usize = 8;
/// Unacknowledged batches of one task on the wire before the pump waits
/// for an ack. Meanwhile new events gather in the outbox and leave in the
/// next batch, so a task printing line by line costs the controller one
/// transaction and flush per round trip, not one per line.
pub(super) const BATCHES_IN_FLIGHT: usize = 4;
/// A batch unacknowledged this long (the controller could not store it) is
/// sent again, with everything after it.
pub(super) const ACK_TIMEOUT: Duration = Duration::from_secs(10);

impl Pump {
    /// Sends events not yet sent on this connection, a bounded number of
    /// batches per turn; returns true when more are waiting.
    pub(super) async fn flush_outbox(&mut self) -> Result<bool, Ended> {
        let mut sent = 0;
        loop {
            let mut sent_any = false;
            let tasks = self.agent.outbox.acked();
            self.in_flight
                .retain(|task, _| tasks.iter().any(|(listed, _)| listed == task));
            for (task_id, acked) in tasks {
                if !self.may_send(task_id, acked) {
                    continue;
                }
                let after = self.sent.get(&task_id).copied().unwrap_or(acked).max(acked);
                if let Some(batch) =
                    self.agent
                        .outbox
                        .batch(task_id, after, BATCH_EVENTS, BATCH_BYTES)
                {
                    let last = batch.events.last().map_or(after, |event| event.seq);
                    self.send(Outgoing::Events(batch)).await?;
                    self.sent.insert(task_id, last);
                    self.in_flight
                        .entry(task_id)
                        .or_default()
                        .push_back((last, Instant::now()));
                    sent_any = true;
                    sent += 1;
                    if sent >= BATCHES_PER_TURN {
                        return Ok(true);
                    }
                }
            }
            if !sent_any {
                return Ok(false);
            }
        }
    }

    /// Whether another batch of `task_id` may go out: fewer than
    /// [`BATCHES_IN_FLIGHT`] are unacknowledged. A batch unacknowledged past
    /// [`ACK_TIMEOUT`] is given up on, and everything after `acked` is sent
    /// again (the controller drops what it already has).
    fn may_send(&mut self, task_id: TaskId, acked: u64) -> bool {
        let window = self.in_flight.entry(task_id).or_default();
        if prune_in_flight(window, acked, Instant::now()) {
            // Resend from the last ack.
            self.sent.insert(task_id, acked);
        }
        window.len() < BATCHES_IN_FLIGHT
    }
}

/// Drops the batches `acked` covers from a task's in-flight window; when
/// the oldest left has waited past [`ACK_TIMEOUT`], empties the window and
/// returns true: everything after `acked` must be sent again.
pub(super) fn prune_in_flight(
    window: &mut VecDeque<(u64, Instant)>,
    acked: u64,
    now: Instant,
) -> bool {
    while window.front().is_some_and(|(last, _)| *last <= acked) {
        window.pop_front();
    }
    let expired = window
        .front()
        .is_some_and(|(_, sent_at)| now.duration_since(*sent_at) > ACK_TIMEOUT);
    if expired {
        window.clear();
    }
    expired
}
