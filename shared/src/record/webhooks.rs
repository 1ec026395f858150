//! Records of outgoing webhooks: an endpoint as `berth webhook ls` shows
//! it ([`WebhookView`]: its URL cut to scheme and host, never its signing
//! secret), the answer to `add` that shows the secret once
//! ([`CreatedWebhook`]), and one delivery with its attempts
//! ([`DeliveryView`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The events an endpoint may ask for (`--events`); none asked means all.
pub const WEBHOOK_EVENTS: [&str; 9] = [
    "deployment.created",
    "deployment.pending_approval",
    "deployment.succeeded",
    "deployment.failed",
    "deployment.canceled",
    "deployment.rolled_back",
    "deployment.stopped",
    "agent.offline",
    "agent.online",
];

/// The event `berth webhook test` sends to one endpoint.
pub const TEST_EVENT: &str = "webhook.test";

/// How a delivery's body is shaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Standard Webhooks: `{"type", "timestamp", "data"}`, signed.
    #[default]
    Standard,
    /// A Slack incoming webhook: `{"text"}`.
    Slack,
    /// A Discord webhook: `{"content"}`.
    Discord,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
        }
    }
}

impl fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<WebhookFormat, String> {
        match text {
            "standard" | "" => Ok(WebhookFormat::Standard),
            "slack" => Ok(WebhookFormat::Slack),
            "discord" => Ok(WebhookFormat::Discord),
            other => Err(format!(
                "`{other}` is not a webhook format; use standard, slack or discord"
            )),
        }
    }
}

/// One webhook endpoint, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookView {
    pub id: String,
    /// The URL's scheme and host (its path and query may carry a token,
    /// so they are never shown).
    pub url: String,
    /// The events it gets; empty for every event.
    pub events: Vec<String>,
    /// Only this app's events, when set.
    pub app: Option<String>,
    /// Only this environment's events, when set.
    pub environment: Option<String>,
    pub format: WebhookFormat,
    pub enabled: bool,
    /// Why it was disabled (it failed for too long), when it is.
    pub disabled_reason: Option<String>,
    /// Since when its deliveries fail, while they do.
    pub failing_since: Option<Timestamp>,
    /// Deliveries waiting for it.
    pub pending: u64,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// What `berth webhook add` answers: the endpoint and its signing secret,
/// shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    pub webhook: WebhookView,
    /// `whsec_` and the base64 of the key receivers verify signatures with.
    pub secret: String,
}

/// Where a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: the endpoint failed for longer than the retry period.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One delivery of one event to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    /// The `webhook-id` header: the same on every attempt, so receivers
    /// can drop a repeat.
    pub id: String,
    pub webhook: String,
    pub event: String,
    /// The deployment the event is about, if any.
    pub deployment: Option<String>,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}
