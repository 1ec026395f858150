//! Outgoing webhooks' messages as the berth-shared records.

use berth_proto::v1 as pb;
use berth_shared::record::{CreatedWebhook, DeliveryState, DeliveryView, WebhookView};

use super::{all, parse, required, ts, ts_opt, unreadable};
use crate::Failure;

pub fn webhooks(reply: pb::WebhookList) -> Result<Vec<WebhookView>, Failure> {
    all(reply.webhooks, view)
}

pub fn webhook(reply: pb::WebhookReply) -> Result<WebhookView, Failure> {
    view(required(reply.webhook, "webhook")?)
}

pub fn created_webhook(reply: pb::CreatedWebhookReply) -> Result<CreatedWebhook, Failure> {
    let pb::CreatedWebhookReply { webhook, secret } = reply;
    Ok(CreatedWebhook {
        webhook: view(required(webhook, "webhook")?)?,
        secret,
    })
}

pub fn deliveries(reply: pb::DeliveryList) -> Result<Vec<DeliveryView>, Failure> {
    all(reply.deliveries, delivery)
}

pub fn delivery_reply(reply: pb::DeliveryReply) -> Result<DeliveryView, Failure> {
    delivery(required(reply.delivery, "delivery")?)
}

fn view(message: pb::WebhookView) -> Result<WebhookView, Failure> {
    let pb::WebhookView {
        id,
        url,
        events,
        app,
        environment,
        format,
        enabled,
        disabled_reason,
        failing_since_ms,
        pending,
        created_at_ms,
        created_by,
    } = message;
    Ok(WebhookView {
        id,
        url,
        events,
        app,
        environment,
        format: parse(&format, "the webhook format")?,
        enabled,
        disabled_reason,
        failing_since: ts_opt(failing_since_ms),
        pending,
        created_at: ts(created_at_ms),
        created_by,
    })
}

fn delivery(message: pb::DeliveryView) -> Result<DeliveryView, Failure> {
    let pb::DeliveryView {
        id,
        webhook,
        event,
        deployment,
        state,
        attempts,
        created_at_ms,
        next_attempt_at_ms,
        finished_at_ms,
        last_status,
        last_error,
    } = message;
    let state = match state.as_str() {
        "pending" => DeliveryState::Pending,
        "delivered" => DeliveryState::Delivered,
        "failed" => DeliveryState::Failed,
        other => return Err(unreadable(format!("the delivery state `{other}`"))),
    };
    Ok(DeliveryView {
        id,
        webhook,
        event,
        deployment,
        state,
        attempts,
        created_at: ts(created_at_ms),
        next_attempt_at: ts_opt(next_attempt_at_ms),
        finished_at: ts_opt(finished_at_ms),
        last_status: last_status.and_then(|status| u16::try_from(status).ok()),
        last_error,
    })
}
