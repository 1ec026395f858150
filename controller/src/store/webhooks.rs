//! Outgoing webhooks as stored, in three trees:
//!
//! - `webhooks`: endpoint id (ULID, 16 bytes) → [`WebhookRecord`], its URL
//!   and signing secret sealed under the secrets key.
//! - `webhook_outbox`: sequence number → [`OutboxEvent`]. A deployment's
//!   event is written in the same transaction as the change it describes
//!   (see `deployments.rs`), so a change that is durable has its event,
//!   and a crash can lose neither.
//! - `webhook_deliveries`: endpoint id ++ sequence number →
//!   [`DeliveryRecord`]: each endpoint's deliveries in the order of their
//!   events, the pending ones and the last [`KEEP_FINISHED`] finished.
//!
//! Moving an event from the outbox into the queues is one transaction
//! too ([`Store::enqueue_deliveries`]), so a delivery is stored before its
//! first attempt.

use std::sync::atomic::Ordering;

use super::kv::Transactional;
use super::kv::{TxError, TxTree};
use berth_shared::id::DeploymentId;
use berth_shared::record::{
    DeliveryState, DeliveryView, Deployment, Timestamp, WebhookFormat, WebhookView,
};
use berth_shared::state::DeploymentStatus;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};
use crate::crypto::Sealed;

/// Finished deliveries kept per endpoint, newest first.
pub const KEEP_FINISHED: usize = 200;

/// One endpoint, as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: String,
    /// Scheme and host only, for listings.
    pub display_url: String,
    /// `{"url", "secret"}`, sealed for `Place::Webhook` of `id`.
    pub sealed: Sealed,
    pub events: Vec<String>,
    pub app: Option<String>,
    pub environment: Option<String>,
    pub format: WebhookFormat,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("display_url", &self.display_url)
            .finish_non_exhaustive()
    }
}

impl WebhookRecord {
    pub fn view(&self, pending: u64) -> WebhookView {
        WebhookView {
            id: self.id.clone(),
            url: self.display_url.clone(),
            events: self.events.clone(),
            app: self.app.clone(),
            environment: self.environment.clone(),
            format: self.format,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            failing_since: self.failing_since,
            pending,
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }

    /// True when this endpoint gets `event`: it is enabled, asked for the
    /// event (or for all), and its app and environment filters match (an
    /// event about no app, an agent's, reaches only unfiltered endpoints).
    pub fn wants(&self, event: &OutboxEvent) -> bool {
        let matches = |filter: &Option<String>, value: &Option<String>| {
            filter.is_none() || filter.as_deref() == value.as_deref()
        };
        self.enabled
            && (self.events.is_empty() || self.events.contains(&event.event))
            && matches(&self.app, &event.app)
            && matches(&self.environment, &event.environment)
    }

    fn key(&self) -> Result<[u8; 16], StoreError> {
        endpoint_key(&self.id)
    }
}

/// An endpoint id's key.
pub fn endpoint_key(id: &str) -> Result<[u8; 16], StoreError> {
    super::keys::ulid_key(
        id,
        super::Thing::Webhook,
        &format!("webhook `{id}` (an id looks like 01JF3Z8Q9V0000000000000000)"),
    )
}

/// One event waiting to be delivered to the endpoints that want it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub event: String,
    pub at: Timestamp,
    pub app: Option<String>,
    pub environment: Option<String>,
    pub deployment: Option<DeploymentId>,
    /// The payload's `data`: the record the event is about, as it was.
    pub data: serde_json::Value,
}

/// One delivery, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub event: String,
    pub deployment: Option<String>,
    /// The exact body every attempt sends.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

impl DeliveryRecord {
    pub fn view(&self, webhook: &str) -> DeliveryView {
        DeliveryView {
            id: self.id.clone(),
            webhook: webhook.to_string(),
            event: self.event.clone(),
            deployment: self.deployment.clone(),
            state: self.state,
            attempts: self.attempts,
            created_at: self.created_at,
            next_attempt_at: self.next_attempt_at,
            finished_at: self.finished_at,
            last_status: self.last_status,
            last_error: self.last_error.clone(),
        }
    }
}

/// The events a deployment's change makes: `before` is its status before
/// the change, `None` when it was just created.
pub fn deployment_events(
    before: Option<DeploymentStatus>,
    deployment: &Deployment,
) -> Vec<&'static str> {
    use DeploymentStatus::*;
    let Some(before) = before else {
        let mut events = vec!["deployment.created"];
        if deployment.status == PendingApproval {
            events.push("deployment.pending_approval");
        }
        return events;
    };
    if before == deployment.status {
        return Vec::new();
    }
    let event = match deployment.status {
        PendingApproval => "deployment.pending_approval",
        Deployed if deployment.trigger == "rollback" => "deployment.rolled_back",
        Deployed => "deployment.succeeded",
        Failed | TimedOut => "deployment.failed",
        Canceled => "deployment.canceled",
        Stopped => "deployment.stopped",
        _ => return Vec::new(),
    };
    vec![event]
}

/// Writes the events of a deployment's change into the outbox, inside the
/// transaction that makes the change.
pub(super) fn note_change(
    outbox: &TxTree<'_>,
    before: Option<DeploymentStatus>,
    deployment: &Deployment,
) -> Result<bool, TxError> {
    let events = deployment_events(before, deployment);
    for event in &events {
        let entry = OutboxEvent {
            event: (*event).to_string(),
            at: Timestamp::now(),
            app: Some(deployment.app.clone()),
            environment: Some(deployment.environment.clone()),
            deployment: Some(deployment.id),
            data: serde_json::json!({ "deployment": deployment }),
        };
        outbox.insert(outbox.generate_id()?.to_be_bytes(), encode(&entry))?;
    }
    Ok(!events.is_empty())
}

impl Store {
    /// True when some endpoint exists, so changes write their events.
    pub(super) fn webhooks_active(&self) -> bool {
        self.shared.webhooks_active.load(Ordering::SeqCst)
    }

    /// Wakes the delivery worker: the outbox or a queue has something new.
    pub fn wake_webhooks(&self) {
        self.shared.webhook_wake.notify_one();
    }

    /// Wakes the worker after a change that may have written events.
    pub(super) fn woke_webhooks(&self, hooks: bool) {
        if hooks {
            self.wake_webhooks();
        }
    }

    /// What the delivery worker waits on.
    pub fn webhook_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.shared.webhook_wake.clone()
    }

    pub(super) fn note_webhooks_present(&self) -> Result<(), StoreError> {
        let present = !self.t()?.webhooks.is_empty()?;
        self.shared.webhooks_active.store(present, Ordering::SeqCst);
        Ok(())
    }

    pub fn put_webhook(&self, record: &WebhookRecord) -> Result<(), StoreError> {
        self.t()?.webhooks.insert(record.key()?, encode(record))?;
        self.note_webhooks_present()
    }

    pub fn webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        self.t()?
            .webhooks
            .get(endpoint_key(id)?)?
            .map(|bytes| decode("webhooks", &bytes))
            .transpose()
    }

    pub fn list_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        self.t()?
            .webhooks
            .iter()
            .values()
            .map(|value| decode("webhooks", &value?))
            .collect()
    }

    /// Removes an endpoint and its deliveries; the record it had.
    pub fn remove_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        let key = endpoint_key(id)?;
        let t = self.t()?;
        let removed = t
            .webhooks
            .remove(key)?
            .map(|bytes| decode("webhooks", &bytes))
            .transpose()?;
        for entry in t.webhook_deliveries.scan_prefix(key) {
            t.webhook_deliveries.remove(entry?.0)?;
        }
        self.note_webhooks_present()?;
        Ok(removed)
    }

    /// Writes an event about no deployment (an agent's) into the outbox.
    pub fn note_event(&self, event: OutboxEvent) -> Result<(), StoreError> {
        if !self.webhooks_active() {
            return Ok(());
        }
        let t = self.t()?;
        t.webhook_outbox
            .insert(t.db.generate_id()?.to_be_bytes(), encode(&event))?;
        self.wake_webhooks();
        Ok(())
    }

    /// The oldest events of the outbox, at most `limit`.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(super::kv::IVec, OutboxEvent)>, StoreError> {
        self.t()?
            .webhook_outbox
            .iter()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key, decode("webhook_outbox", &value)?))
            })
            .collect()
    }

    /// Takes an event out of the outbox and queues its deliveries, in one
    /// transaction; `outbox_key` `None` queues without one (a test event).
    pub fn enqueue_deliveries(
        &self,
        outbox_key: Option<&[u8]>,
        deliveries: &[(String, DeliveryRecord)],
    ) -> Result<(), StoreError> {
        let t = self.t()?;
        let mut rows = Vec::with_capacity(deliveries.len());
        for (endpoint, record) in deliveries {
            let mut key = endpoint_key(endpoint)?.to_vec();
            key.extend_from_slice(&t.db.generate_id()?.to_be_bytes());
            rows.push((key, encode(record)));
        }
        (&t.webhook_outbox, &t.webhook_deliveries).transaction(|(outbox, queue)| {
            if let Some(key) = outbox_key {
                outbox.remove(key)?;
            }
            for (key, value) in &rows {
                queue.insert(key.as_slice(), value.as_slice())?;
            }
            Ok::<_, TxError>(())
        })?;
        Ok(())
    }

    /// An endpoint's oldest pending delivery, and how many are pending.
    pub fn queue_head(
        &self,
        endpoint: &str,
    ) -> Result<(Option<(super::kv::IVec, DeliveryRecord)>, u64), StoreError> {
        let mut head = None;
        let mut pending = 0;
        for entry in self
            .t()?
            .webhook_deliveries
            .scan_prefix(endpoint_key(endpoint)?)
        {
            let (key, value) = entry?;
            let record: DeliveryRecord = decode("webhook_deliveries", &value)?;
            if record.state == DeliveryState::Pending {
                pending += 1;
                if head.is_none() {
                    head = Some((key, record));
                }
            }
        }
        Ok((head, pending))
    }

    /// Writes a delivery back after an attempt; once it is finished, the
    /// endpoint's finished deliveries past [`KEEP_FINISHED`] go.
    pub fn put_delivery(
        &self,
        endpoint: &str,
        key: &[u8],
        record: &DeliveryRecord,
    ) -> Result<(), StoreError> {
        let t = self.t()?;
        t.webhook_deliveries.insert(key, encode(record))?;
        if record.state == DeliveryState::Pending {
            return Ok(());
        }
        let mut finished = 0;
        for entry in t
            .webhook_deliveries
            .scan_prefix(endpoint_key(endpoint)?)
            .rev()
        {
            let (key, value) = entry?;
            let stored: DeliveryRecord = decode("webhook_deliveries", &value)?;
            if stored.state != DeliveryState::Pending {
                finished += 1;
                if finished > KEEP_FINISHED {
                    t.webhook_deliveries.remove(key)?;
                }
            }
        }
        Ok(())
    }

    /// An endpoint's deliveries, newest first, at most `limit`.
    pub fn deliveries(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.t()?
            .webhook_deliveries
            .scan_prefix(endpoint_key(endpoint)?)
            .rev()
            .take(limit)
            .map(|entry| decode("webhook_deliveries", &entry?.1))
            .collect()
    }
}
