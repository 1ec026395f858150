//! A delivery's body, by the endpoint's format: Standard Webhooks
//! (`{"type", "timestamp", "data"}`, the record as it was at the event), or
//! one line of text for Slack (`{"text"}`) and Discord (`{"content"}`).

use berth_shared::record::{Deployment, WebhookFormat};
use serde_json::{Value, json};

use crate::store::OutboxEvent;

/// Longest error message quoted in a chat line, in characters.
const CHAT_ERROR_CHARS: usize = 300;

/// The body of a delivery of `event` in `format`.
pub fn body(format: WebhookFormat, event: &OutboxEvent) -> String {
    let value = match format {
        WebhookFormat::Standard => json!({
            "type": event.event,
            "timestamp": event.at,
            "data": event.data,
        }),
        WebhookFormat::Slack => json!({ "text": line(event) }),
        WebhookFormat::Discord => json!({ "content": line(event) }),
    };
    value.to_string()
}

/// One line saying what happened, for people.
pub fn line(event: &OutboxEvent) -> String {
    if let Some(deployment) = event
        .data
        .get("deployment")
        .and_then(|value| serde_json::from_value::<Deployment>(value.clone()).ok())
    {
        return deployment_line(&event.event, &deployment);
    }
    let agent = event.data.get("agent").and_then(Value::as_str);
    match (event.event.as_str(), agent) {
        ("agent.offline", Some(agent)) => format!("berth: agent {agent} went offline"),
        ("agent.online", Some(agent)) => format!("berth: agent {agent} is online"),
        (berth_shared::record::TEST_EVENT, _) => {
            "berth: a test delivery; this endpoint receives berth's events".into()
        }
        (other, _) => format!("berth: {other}"),
    }
}

fn deployment_line(event: &str, deployment: &Deployment) -> String {
    let what = match event {
        "deployment.created" => "started",
        "deployment.pending_approval" => "waits for approval",
        "deployment.succeeded" => "succeeded",
        "deployment.failed" => "FAILED",
        "deployment.canceled" => "was canceled",
        "deployment.rolled_back" => "rolled back",
        "deployment.stopped" => "stopped",
        other => other,
    };
    let mut line = format!(
        "berth: {} {} to {} {what} (deployment {}, by {})",
        deployment.app,
        deployment.version,
        deployment.environment,
        deployment.id,
        deployment.triggered_by
    );
    if event == "deployment.failed" {
        let step = deployment.error_step.as_deref().unwrap_or("?");
        let message: String = deployment
            .error_message
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(CHAT_ERROR_CHARS)
            .collect();
        line.push_str(&format!(" at {step}: {message}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use berth_shared::record::Timestamp;

    use super::*;

    fn agent_event(event: &str) -> OutboxEvent {
        OutboxEvent {
            event: event.into(),
            at: Timestamp(1_700_000_000_000),
            app: None,
            environment: None,
            deployment: None,
            data: json!({ "agent": "edge-1" }),
        }
    }

    #[test]
    fn standard_bodies_carry_the_type_time_and_record() {
        let body: Value = serde_json::from_str(&body(
            WebhookFormat::Standard,
            &agent_event("agent.offline"),
        ))
        .expect("json");
        assert_eq!(body["type"], "agent.offline");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(body["data"]["agent"], "edge-1");
    }

    #[test]
    fn chat_formats_say_it_in_one_line() {
        let slack: Value =
            serde_json::from_str(&body(WebhookFormat::Slack, &agent_event("agent.offline")))
                .expect("json");
        assert_eq!(slack, json!({ "text": "berth: agent edge-1 went offline" }));
        let discord: Value =
            serde_json::from_str(&body(WebhookFormat::Discord, &agent_event("agent.online")))
                .expect("json");
        assert_eq!(
            discord,
            json!({ "content": "berth: agent edge-1 is online" })
        );
    }
}
