//! In-process fan-out of changes to live followers (`berth deploy`'s live
//! view, `berth logs -f`). Events are published only after the change they
//! describe is durable. A follower that falls behind re-reads the store.
//!
//! Followers of log lines come first: each `berth logs -f` has a
//! [`FollowGauge`] counting the lines published to it that it has not
//! passed on yet, and the agents' events of a followed deployment are
//! acknowledged only once its followers are within [`FOLLOW_SLACK`] lines
//! (waiting at most [`FOLLOW_WAIT`] per batch). On a busy controller a
//! flood of output is thus taken in at the pace its followers show it,
//! instead of the follower falling seconds behind. A follower that cannot
//! keep up (a slow or suspended terminal) holds things up for
//! [`GIVE_UP_AFTER`] at most; after that it no longer holds anything up
//! until it has caught up again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use berth_shared::id::{DeploymentId, TaskId};
use tokio::sync::{Notify, broadcast};

use crate::store::StoredLine;

/// Capacity of the broadcast ring; a follower lagging further re-reads.
const CAPACITY: usize = 8192;

/// One published change.
#[derive(Clone, Debug)]
pub enum HubEvent {
    /// New durable log lines of one task.
    Lines {
        deployment: DeploymentId,
        task: TaskId,
        lines: Arc<Vec<(u64, StoredLine)>>,
    },
    /// The deployment record changed.
    Changed { deployment: DeploymentId },
}

impl HubEvent {
    pub fn deployment(&self) -> DeploymentId {
        match self {
            HubEvent::Lines { deployment, .. } | HubEvent::Changed { deployment } => *deployment,
        }
    }
}

/// Lines a follower may be behind before the events of its deployment
/// wait for it.
pub const FOLLOW_SLACK: u64 = 2048;
/// Longest wait for followers per batch of events.
pub const FOLLOW_WAIT: Duration = Duration::from_millis(100);
/// How long a follower may stay behind while it is waited for.
const GIVE_UP_AFTER: Duration = Duration::from_secs(1);

/// The broadcast hub.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<HubEvent>,
    gauges: Arc<Mutex<HashMap<DeploymentId, Vec<Weak<FollowGauge>>>>>,
    forward: Arc<std::sync::OnceLock<Forward>>,
}

/// How far one log follower is behind what was published to it.
#[derive(Default)]
pub struct FollowGauge {
    behind: AtomicU64,
    caught_up: Notify,
    /// Since when waits for this follower have been running out, until
    /// it catches up.
    stuck_since: Mutex<Option<tokio::time::Instant>>,
}

impl FollowGauge {
    /// The follower passed `lines` on (or skipped them).
    pub fn passed(&self, lines: u64) {
        let before = self
            .behind
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |behind| {
                Some(behind.saturating_sub(lines))
            })
            .unwrap_or(0);
        if before.saturating_sub(lines) <= FOLLOW_SLACK {
            *self.lock_stuck() = None;
            self.caught_up.notify_waiters();
        }
    }

    /// The follower reads the store from now on: it owes nothing
    /// published so far.
    pub fn reset(&self) {
        self.behind.store(0, Ordering::SeqCst);
        self.caught_up.notify_waiters();
    }

    /// Behind and still waited for.
    fn is_behind(&self) -> bool {
        self.behind.load(Ordering::SeqCst) > FOLLOW_SLACK
            && self
                .lock_stuck()
                .is_none_or(|since| since.elapsed() < GIVE_UP_AFTER)
    }

    /// A wait for this follower ran out.
    fn missed(&self) {
        self.lock_stuck()
            .get_or_insert_with(tokio::time::Instant::now);
    }

    fn lock_stuck(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        self.stuck_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A log follower's registration; dropping it ends the follower's say.
pub struct Following {
    pub gauge: Arc<FollowGauge>,
    hub: Hub,
    deployment: DeploymentId,
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut gauges = self.hub.lock_gauges();
        if let Some(list) = gauges.get_mut(&self.deployment) {
            list.retain(|gauge| {
                gauge.strong_count() > 0 && !std::ptr::eq(gauge.as_ptr(), Arc::as_ptr(&self.gauge))
            });
            if list.is_empty() {
                gauges.remove(&self.deployment);
            }
        }
        drop(gauges);
        self.gauge.reset();
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            sender: broadcast::channel(CAPACITY).0,
            gauges: Arc::default(),
            forward: Arc::default(),
        }
    }
}

/// Where a change published here goes besides this controller's
/// followers (`cluster.rs`: the other controllers of the store).
pub type Forward = Arc<dyn Fn(&HubEvent) + Send + Sync>;

impl Hub {
    /// Sends every later change published here to `forward` too.
    pub fn forward_to(&self, forward: Forward) {
        let _ = self.forward.set(forward);
    }

    /// Publishes a durable change to this controller's followers and to
    /// the other controllers.
    pub fn publish(&self, event: HubEvent) {
        if let Some(forward) = self.forward.get() {
            forward(&event);
        }
        self.publish_here(event);
    }

    /// Publishes a change to this controller's followers only (one another
    /// controller made).
    pub fn publish_here(&self, event: HubEvent) {
        if let HubEvent::Lines {
            deployment, lines, ..
        } = &event
        {
            for gauge in self.live_gauges(*deployment) {
                gauge.behind.fetch_add(lines.len() as u64, Ordering::SeqCst);
            }
        }
        // No receivers is normal: nobody is following.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.sender.subscribe()
    }

    /// Subscribes a log follower of `deployment` whose pace counts (see
    /// the module documentation).
    pub fn follow(&self, deployment: DeploymentId) -> (broadcast::Receiver<HubEvent>, Following) {
        // Subscribed first: every line the gauge counts reaches the receiver.
        let receiver = self.sender.subscribe();
        let gauge = Arc::new(FollowGauge::default());
        self.lock_gauges()
            .entry(deployment)
            .or_default()
            .push(Arc::downgrade(&gauge));
        let following = Following {
            gauge,
            hub: self.clone(),
            deployment,
        };
        (receiver, following)
    }

    /// Waits until every follower of `deployment` is within
    /// [`FOLLOW_SLACK`] lines, at most `limit`.
    pub async fn wait_for_followers(&self, deployment: DeploymentId, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let Some(gauge) = self
                .live_gauges(deployment)
                .into_iter()
                .find(|gauge| gauge.is_behind())
            else {
                return;
            };
            let caught_up = gauge.caught_up.notified();
            tokio::pin!(caught_up);
            caught_up.as_mut().enable();
            if !gauge.is_behind() {
                continue;
            }
            if tokio::time::timeout_at(deadline, caught_up).await.is_err() {
                gauge.missed();
                return;
            }
        }
    }

    /// True while someone here follows `deployment`'s log lines.
    pub fn is_followed(&self, deployment: DeploymentId) -> bool {
        !self.live_gauges(deployment).is_empty()
    }

    fn live_gauges(&self, deployment: DeploymentId) -> Vec<Arc<FollowGauge>> {
        self.lock_gauges()
            .get(&deployment)
            .map(|list| list.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }

    fn lock_gauges(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<DeploymentId, Vec<Weak<FollowGauge>>>> {
        self.gauges.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use berth_shared::id::{DeploymentId, TaskId};

    use super::{FOLLOW_SLACK, Hub, HubEvent};
    use crate::store::StoredLine;

    fn lines(hub: &Hub, deployment: DeploymentId, count: u64) {
        let line = StoredLine {
            stage: "setup".into(),
            stream: "stdout".into(),
            ts_ms: 1,
            line: "x".into(),
        };
        hub.publish(HubEvent::Lines {
            deployment,
            task: TaskId::new(),
            lines: Arc::new((1..=count).map(|seq| (seq, line.clone())).collect()),
        });
    }

    #[tokio::test]
    async fn events_of_a_followed_deployment_wait_for_a_follower_that_is_behind() {
        let hub = Hub::default();
        let (followed, other) = (DeploymentId::new(), DeploymentId::new());
        let (_events, following) = hub.follow(followed);
        lines(&hub, followed, FOLLOW_SLACK + 10);
        lines(&hub, other, FOLLOW_SLACK * 4);

        // Another deployment's events never wait.
        tokio::time::timeout(
            Duration::from_secs(5),
            hub.wait_for_followers(other, Duration::from_secs(60)),
        )
        .await
        .expect("no follower of `other`");

        // Behind: the wait lasts until the follower catches up.
        let waiter = tokio::spawn({
            let hub = hub.clone();
            async move {
                hub.wait_for_followers(followed, Duration::from_secs(60))
                    .await
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while the follower is behind");
        following.gauge.passed(5);
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "still {} lines behind",
            FOLLOW_SLACK + 5
        );
        following.gauge.passed(5);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("caught up")
            .expect("waiter");

        // A follower that does not catch up holds events only up to the
        // limit each time, and for GIVE_UP_AFTER in all.
        lines(&hub, followed, FOLLOW_SLACK * 2);
        let stuck = std::time::Instant::now();
        let wait = Duration::from_millis(20);
        loop {
            let started = std::time::Instant::now();
            hub.wait_for_followers(followed, wait).await;
            if started.elapsed() < wait {
                break;
            }
            assert!(
                stuck.elapsed() < super::GIVE_UP_AFTER * 5,
                "never given up on"
            );
        }
        assert!(
            stuck.elapsed() >= super::GIVE_UP_AFTER,
            "given up on after {:?}",
            stuck.elapsed()
        );
        // Caught up, it is waited for again.
        following.gauge.passed(FOLLOW_SLACK * 2);
        lines(&hub, followed, FOLLOW_SLACK + 1);
        let started = std::time::Instant::now();
        hub.wait_for_followers(followed, Duration::from_millis(20))
            .await;
        assert!(started.elapsed() >= Duration::from_millis(20));

        // A follower that went away holds nothing.
        drop(following);
        tokio::time::timeout(
            Duration::from_secs(5),
            hub.wait_for_followers(followed, Duration::from_secs(60)),
        )
        .await
        .expect("no follower left");
        assert!(hub.lock_gauges().is_empty(), "registrations are cleaned up");
    }
}
