//! Outgoing webhooks' records as messages: endpoints (their URL cut to
//! scheme and host) and deliveries; the signing secret only in the answer
//! to `AddWebhook`.

use berth_proto::v1 as pb;
use berth_shared::record::{CreatedWebhook, DeliveryView, WebhookView};

pub fn list(records: Vec<WebhookView>) -> pb::WebhookList {
    pb::WebhookList {
        webhooks: records.into_iter().map(view).collect(),
    }
}

pub fn reply(record: WebhookView) -> pb::WebhookReply {
    pb::WebhookReply {
        webhook: Some(view(record)),
    }
}

pub fn created(created: CreatedWebhook) -> pb::CreatedWebhookReply {
    pb::CreatedWebhookReply {
        webhook: Some(view(created.webhook)),
        secret: created.secret,
    }
}

fn view(record: WebhookView) -> pb::WebhookView {
    let WebhookView {
        id,
        url,
        events,
        app,
        environment,
        format,
        enabled,
        disabled_reason,
        failing_since,
        pending,
        created_at,
        created_by,
    } = record;
    pb::WebhookView {
        id,
        url,
        events,
        app,
        environment,
        format: format.to_string(),
        enabled,
        disabled_reason,
        failing_since_ms: failing_since.map(|at| at.0),
        pending,
        created_at_ms: created_at.0,
        created_by,
    }
}

pub fn delivery(record: DeliveryView) -> pb::DeliveryView {
    let DeliveryView {
        id,
        webhook,
        event,
        deployment,
        state,
        attempts,
        created_at,
        next_attempt_at,
        finished_at,
        last_status,
        last_error,
    } = record;
    pb::DeliveryView {
        id,
        webhook,
        event,
        deployment,
        state: state.as_str().to_string(),
        attempts,
        created_at_ms: created_at.0,
        next_attempt_at_ms: next_attempt_at.map(|at| at.0),
        finished_at_ms: finished_at.map(|at| at.0),
        last_status: last_status.map(u32::from),
        last_error,
    }
}

#[cfg(test)]
mod tests {
    use berth_cli::wire;
    use berth_shared::record::{DeliveryState, Timestamp, WebhookFormat};

    use super::*;
    use crate::grpc::cli::records::tests::round_trip;

    fn endpoint() -> WebhookView {
        WebhookView {
            id: "01JF3Z8Q9V0000000000000000".into(),
            url: "https://hooks.example.com/…".into(),
            events: vec!["deployment.failed".into()],
            app: Some("web".into()),
            environment: Some("prod".into()),
            format: WebhookFormat::Slack,
            enabled: true,
            disabled_reason: Some("failed for 24h".into()),
            failing_since: Some(Timestamp(1_700_000_000_123)),
            pending: 3,
            created_at: Timestamp(1_600_000_000_456),
            created_by: "admin".into(),
        }
    }

    #[test]
    fn webhooks_round_trip_through_the_wire() {
        round_trip(&endpoint(), reply, wire::webhook);
        round_trip(&vec![endpoint()], list, wire::webhooks);
        let made = CreatedWebhook {
            webhook: endpoint(),
            secret: "whsec_c2VjcmV0".into(),
        };
        round_trip(&made, created, wire::created_webhook);
        let sent = DeliveryView {
            id: "msg_01JF3Z8Q9V0000000000000000".into(),
            webhook: "01JF3Z8Q9V0000000000000000".into(),
            event: "deployment.failed".into(),
            deployment: Some("01JF3Z8Q9V0000000000000001".into()),
            state: DeliveryState::Failed,
            attempts: 7,
            created_at: Timestamp(1_700_000_000_000),
            next_attempt_at: Some(Timestamp(1_700_000_001_000)),
            finished_at: Some(Timestamp(1_700_000_002_000)),
            last_status: Some(503),
            last_error: Some("the endpoint answered HTTP 503".into()),
        };
        round_trip(
            &sent,
            |record| pb::DeliveryReply {
                delivery: Some(delivery(record)),
            },
            wire::delivery_reply,
        );
    }
}
