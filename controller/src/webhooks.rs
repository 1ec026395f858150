//! The webhook delivery worker. Events wait in the store's outbox, written
//! with the change they describe (`store/webhooks.rs`); the worker moves
//! each into the queues of the endpoints that want it (durable before the
//! first attempt), then sends every endpoint's queue in order, one
//! delivery in flight per endpoint, signed the Standard Webhooks way
//! (`sign.rs`). A failed attempt is tried again after an exponential
//! backoff with jitter; an endpoint that fails for longer than
//! [`Settings::give_up`] (24 h) is disabled, its delivery given up, and an
//! audit entry says so. Nothing here runs on a deployment's path: a slow
//! endpoint only delays its own queue.

mod format;
mod send;
pub mod sign;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_shared::record::{DeliveryState, Timestamp};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use zeroize::Zeroizing;

pub use format::{body, line};
pub use send::Sender;

use crate::crypto::{Place, SecretKey};
use crate::store::{DeliveryRecord, OutboxEvent, Store, WebhookRecord};

/// The retry period unless `serve --webhook-give-up` says otherwise.
pub const DEFAULT_GIVE_UP: Duration = Duration::from_secs(24 * 3600);
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often the worker looks even when nothing woke it.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Events moved from the outbox per transaction batch.
const FAN_OUT_BATCH: usize = 100;

/// How deliveries are retried.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long an endpoint may fail before it is disabled.
    pub give_up: Duration,
}

/// What an endpoint's sealed value holds.
#[derive(Serialize, Deserialize)]
pub struct Target {
    pub url: String,
    pub secret: String,
}

/// Opens an endpoint's URL and signing secret.
pub fn open_target(key: &SecretKey, record: &WebhookRecord) -> Result<Zeroizing<Target>, String> {
    let text = key
        .open_text(&Place::Webhook { id: &record.id }, &record.sealed)
        .map_err(|err| {
            format!(
                "webhook {}'s URL and secret cannot be opened: {err}",
                record.id
            )
        })?;
    serde_json::from_str(&text)
        .map(Zeroizing::new)
        .map_err(|err| format!("webhook {}'s sealed value is damaged: {err}", record.id))
}

impl zeroize::Zeroize for Target {
    fn zeroize(&mut self) {
        self.url.zeroize();
        self.secret.zeroize();
    }
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones:
/// doubling from [`FIRST_RETRY`] up to [`MAX_BACKOFF`], then spread by
/// ±20 % so endpoints that failed together do not retry together.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let doubling = FIRST_RETRY.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    doubling.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.8, 1.2))
}

/// A new delivery id, the `webhook-id` of every attempt.
pub fn delivery_id() -> String {
    format!("msg_{}", ulid::Ulid::new())
}

/// A pending delivery of `event` to an endpoint in `format`.
pub fn delivery(record: &WebhookRecord, event: &OutboxEvent) -> DeliveryRecord {
    DeliveryRecord {
        id: delivery_id(),
        event: event.event.clone(),
        deployment: event.deployment.map(|id| id.to_string()),
        body: body(record.format, event),
        state: DeliveryState::Pending,
        attempts: 0,
        created_at: Timestamp::now(),
        next_attempt_at: None,
        finished_at: None,
        last_status: None,
        last_error: None,
    }
}

/// Writes an agent's `agent.offline` or `agent.online` event (no-op
/// without endpoints).
pub fn agent_event(
    store: &Store,
    event: &str,
    agent: berth_shared::id::AgentId,
    name: &str,
) -> Result<(), crate::store::StoreError> {
    store.note_event(OutboxEvent {
        event: event.to_string(),
        at: Timestamp::now(),
        app: None,
        environment: None,
        deployment: None,
        data: serde_json::json!({ "agent": name, "agent_id": agent.to_string() }),
    })
}

/// The worker; one per controller.
pub struct Worker {
    store: Store,
    key: Arc<SecretKey>,
    settings: Settings,
    sender: Sender,
    in_flight: Mutex<HashSet<String>>,
    tasks: TaskTracker,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Worker {
    pub fn new(
        store: Store,
        key: Arc<SecretKey>,
        settings: Settings,
        tasks: TaskTracker,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            store,
            key,
            settings,
            sender: Sender::new(),
            in_flight: Mutex::new(HashSet::new()),
            tasks,
            metrics,
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let wake = self.store.webhook_wake();
        loop {
            let next = match self.round().await {
                Ok(next) => next,
                Err(err) => {
                    warn!(error = %err, "webhook deliveries could not be read; trying again");
                    Some(tokio::time::Instant::now() + Duration::from_secs(1))
                }
            };
            let until = next.unwrap_or_else(|| tokio::time::Instant::now() + IDLE_CHECK);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Moves the outbox into the queues, then starts every endpoint's due
    /// delivery; when the next one not yet due is.
    async fn round(self: &Arc<Self>) -> Result<Option<tokio::time::Instant>, String> {
        self.fan_out().await?;
        let now = Timestamp::now();
        let mut next: Option<Timestamp> = None;
        for record in self.store.list_webhooks().map_err(|err| err.to_string())? {
            if !record.enabled || self.in_flight().contains(&record.id) {
                continue;
            }
            let (head, _) = self
                .store
                .queue_head(&record.id)
                .map_err(|err| err.to_string())?;
            let Some((key, delivery)) = head else {
                continue;
            };
            match delivery.next_attempt_at {
                Some(at) if at > now => {
                    next = Some(next.map_or(at, |next| next.min(at)));
                }
                _ => {
                    self.in_flight().insert(record.id.clone());
                    let worker = self.clone();
                    self.tasks.spawn(async move {
                        let id = record.id.clone();
                        worker.attempt(record, key.to_vec(), delivery).await;
                        worker.in_flight().remove(&id);
                        worker.store.wake_webhooks();
                    });
                }
            }
        }
        Ok(next.map(|at| {
            let wait = u64::try_from(at.0 - now.0).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(wait)
        }))
    }

    /// Queues each outbox event for the endpoints that want it, then makes
    /// that durable.
    async fn fan_out(&self) -> Result<(), String> {
        loop {
            let events = self
                .store
                .outbox(FAN_OUT_BATCH)
                .map_err(|err| err.to_string())?;
            if events.is_empty() {
                return Ok(());
            }
            let endpoints = self.store.list_webhooks().map_err(|err| err.to_string())?;
            for (key, event) in &events {
                let deliveries: Vec<(String, DeliveryRecord)> = endpoints
                    .iter()
                    .filter(|endpoint| endpoint.wants(event))
                    .map(|endpoint| (endpoint.id.clone(), delivery(endpoint, event)))
                    .collect();
                self.store
                    .enqueue_deliveries(Some(key), &deliveries)
                    .map_err(|err| err.to_string())?;
            }
            self.store.flush().await.map_err(|err| err.to_string())?;
        }
    }

    /// One attempt of an endpoint's head delivery, and its outcome stored.
    async fn attempt(&self, endpoint: WebhookRecord, key: Vec<u8>, mut delivery: DeliveryRecord) {
        let outcome = match open_target(&self.key, &endpoint) {
            Ok(target) => {
                let timestamp = Timestamp::now().0 / 1000;
                match sign::sign(&target.secret, &delivery.id, timestamp, &delivery.body) {
                    Some(signature) => {
                        let headers = [
                            ("webhook-id", delivery.id.clone()),
                            ("webhook-timestamp", timestamp.to_string()),
                            ("webhook-signature", signature),
                        ];
                        self.sender
                            .post(&target.url, &headers, delivery.body.clone())
                            .await
                    }
                    None => Err("the endpoint's signing secret is damaged; add it again".into()),
                }
            }
            Err(reason) => Err(reason),
        };
        let now = Timestamp::now();
        delivery.attempts += 1;
        let delivered = matches!(outcome, Ok(status) if (200..300).contains(&status));
        self.metrics.webhook_delivery(delivered);
        delivery.last_status = outcome.as_ref().ok().copied();
        delivery.last_error = match &outcome {
            Ok(status) if delivered => {
                let _ = status;
                None
            }
            Ok(status) => Some(format!("the endpoint answered HTTP {status}")),
            Err(reason) => Some(reason.clone()),
        };
        // The endpoint as it is now: it may have been removed or changed
        // while the attempt ran.
        let Ok(Some(mut current)) = self.store.webhook(&endpoint.id) else {
            return;
        };
        let mut disabled = None;
        if delivered {
            delivery.state = DeliveryState::Delivered;
            delivery.finished_at = Some(now);
            delivery.next_attempt_at = None;
            current.failing_since = None;
        } else {
            let since = *current.failing_since.get_or_insert(now);
            let failing_for = Duration::from_millis(u64::try_from(now.0 - since.0).unwrap_or(0));
            if failing_for >= self.settings.give_up {
                delivery.state = DeliveryState::Failed;
                delivery.finished_at = Some(now);
                delivery.next_attempt_at = None;
                let reason = format!(
                    "its deliveries failed for {} (last: {}); `berth webhook enable {}` sends what waits again",
                    humantime::format_duration(Duration::from_secs(failing_for.as_secs())),
                    delivery.last_error.as_deref().unwrap_or("?"),
                    current.id
                );
                current.enabled = false;
                current.disabled_reason = Some(reason.clone());
                disabled = Some(reason);
            } else {
                let wait = backoff(delivery.attempts, rand::rng().random_range(0.8..=1.2));
                delivery.next_attempt_at = Some(Timestamp(
                    now.0 + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                ));
            }
        }
        let stored = self
            .store
            .put_delivery(&current.id, &key, &delivery)
            .and_then(|()| self.store.put_webhook(&current))
            .and_then(|()| match &disabled {
                Some(reason) => self
                    .store
                    .audit("berth", "webhook.disabled", &current.id, reason),
                None => Ok(()),
            });
        if let Err(err) = stored {
            warn!(webhook = %current.id, delivery = %delivery.id, error = %err, "a webhook attempt's outcome could not be stored; it is tried again");
            return;
        }
        if let Err(err) = self.store.flush().await {
            warn!(webhook = %current.id, error = %err, "a webhook attempt's outcome could not be flushed");
        }
        match (delivered, &disabled) {
            (true, _) => {
                info!(webhook = %current.id, delivery = %delivery.id, event = %delivery.event, attempts = delivery.attempts, "webhook delivered")
            }
            (false, Some(reason)) => {
                warn!(webhook = %current.id, delivery = %delivery.id, %reason, "webhook endpoint disabled")
            }
            (false, None) => {
                info!(webhook = %current.id, delivery = %delivery.id, attempts = delivery.attempts, error = delivery.last_error.as_deref().unwrap_or(""), "webhook attempt failed; it is tried again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_within_its_jitter() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(13, 1.0), Duration::from_secs(3600));
        assert_eq!(backoff(500, 1.0), Duration::from_secs(3600));
        assert_eq!(backoff(3, 0.8), Duration::from_millis(3200));
        assert_eq!(backoff(3, 5.0), Duration::from_millis(4800));
    }
}
