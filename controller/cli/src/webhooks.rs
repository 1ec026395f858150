//! `berth webhook add|ls|rm|enable|test|deliveries`: outgoing webhooks
//! (admins). `add` prints the endpoint's signing secret this once.

use berth_proto::v1::{
    AddWebhookRequest, ListDeliveriesRequest, ListWebhooksRequest, WebhookIdRequest,
};
use berth_shared::exit;
use berth_shared::record::{DeliveryView, WEBHOOK_EVENTS, WebhookView};
use clap::Subcommand;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Send events to a URL: `berth webhook add --url
    /// https://hooks.example.com/berth --events deployment.failed --app
    /// web --env production`. Prints the signing secret once.
    Add {
        /// Where to POST (https://, or http:// on a trusted network).
        #[arg(long)]
        url: String,
        /// Comma-separated events (default: all): deployment.created,
        /// deployment.pending_approval, deployment.succeeded,
        /// deployment.failed, deployment.canceled, deployment.rolled_back,
        /// deployment.stopped, agent.offline, agent.online.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Only this app's events.
        #[arg(long)]
        app: Option<String>,
        /// Only this environment's events.
        #[arg(long = "env")]
        environment: Option<String>,
        /// standard (Standard Webhooks JSON, signed), slack or discord.
        #[arg(long, default_value = "standard")]
        format: String,
    },
    /// List the endpoints (URLs cut to scheme and host).
    Ls,
    /// Remove an endpoint and the deliveries waiting for it.
    Rm { id: String },
    /// Enable an endpoint disabled for failing; what waits is sent again.
    Enable { id: String },
    /// Queue a webhook.test delivery to an endpoint.
    Test { id: String },
    /// An endpoint's deliveries, newest first.
    Deliveries {
        id: String,
        /// How many (default 50, at most 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

pub async fn run(session: &mut Session, command: WebhookCommand) -> Outcome {
    match command {
        WebhookCommand::Add {
            url,
            events,
            app,
            environment,
            format,
        } => {
            let request = AddWebhookRequest {
                url,
                events: events
                    .into_iter()
                    .filter(|event| !event.is_empty())
                    .collect(),
                app,
                environment,
                format,
            };
            let reply = session.client.add_webhook(request).await?;
            let created = wire::created_webhook(reply.into_inner())?;
            emit(session.format, &created, || {
                format!(
                    "webhook {} added for {} ({}).\nsigning secret (shown only now; receivers verify webhook-signature with it):\n{}",
                    created.webhook.id,
                    events_text(&created.webhook),
                    created.webhook.url,
                    created.secret
                )
            });
        }
        WebhookCommand::Ls => {
            let reply = session.client.list_webhooks(ListWebhooksRequest {}).await?;
            let webhooks = wire::webhooks(reply.into_inner())?;
            emit(session.format, &webhooks, || table(session, &webhooks));
        }
        WebhookCommand::Rm { id } => {
            let reply = session
                .client
                .remove_webhook(WebhookIdRequest { id })
                .await?;
            let webhook = wire::webhook(reply.into_inner())?;
            emit(session.format, &webhook, || {
                format!("webhook {} ({}) removed", webhook.id, webhook.url)
            });
        }
        WebhookCommand::Enable { id } => {
            let reply = session
                .client
                .enable_webhook(WebhookIdRequest { id })
                .await?;
            let webhook = wire::webhook(reply.into_inner())?;
            emit(session.format, &webhook, || {
                format!(
                    "webhook {} enabled; {} deliveries wait for it",
                    webhook.id, webhook.pending
                )
            });
        }
        WebhookCommand::Test { id } => {
            let reply = session.client.test_webhook(WebhookIdRequest { id }).await?;
            let delivery = wire::delivery_reply(reply.into_inner())?;
            emit(session.format, &delivery, || {
                format!(
                    "test delivery {} queued; `berth webhook deliveries {}` shows how it went",
                    delivery.id, delivery.webhook
                )
            });
        }
        WebhookCommand::Deliveries { id, limit } => {
            let reply = session
                .client
                .list_deliveries(ListDeliveriesRequest { id, limit })
                .await?;
            let deliveries = wire::deliveries(reply.into_inner())?;
            emit(session.format, &deliveries, || {
                delivery_table(session, &deliveries)
            });
        }
    }
    Ok(exit::OK)
}

fn events_text(webhook: &WebhookView) -> String {
    let mut text = if webhook.events.is_empty() {
        format!("every event ({})", WEBHOOK_EVENTS.len())
    } else {
        webhook.events.join(",")
    };
    if let Some(app) = &webhook.app {
        text.push_str(&format!(" of app {app}"));
    }
    if let Some(environment) = &webhook.environment {
        text.push_str(&format!(" in {environment}"));
    }
    text
}

fn table(session: &Session, webhooks: &[WebhookView]) -> String {
    if webhooks.is_empty() {
        return "no webhooks: add one with `berth webhook add --url URL`".into();
    }
    let mut rows = grid(
        session.format,
        &[
            Column::Text("ID"),
            Column::Text("URL"),
            Column::Text("EVENTS"),
            Column::Text("FORMAT"),
            Column::Text("STATE"),
            Column::Text("PENDING"),
            Column::Wide("CREATED BY"),
        ],
    );
    for webhook in webhooks {
        let state = match (&webhook.disabled_reason, webhook.failing_since) {
            (Some(reason), _) => format!("disabled: {reason}"),
            (None, Some(since)) => format!("failing for {}", ago(since)),
            (None, None) => "ok".into(),
        };
        rows.row(vec![
            webhook.id.clone(),
            webhook.url.clone(),
            events_text(webhook),
            webhook.format.to_string(),
            state,
            webhook.pending.to_string(),
            webhook.created_by.clone(),
        ]);
    }
    rows.to_string()
}

fn delivery_table(session: &Session, deliveries: &[DeliveryView]) -> String {
    if deliveries.is_empty() {
        return "no deliveries yet".into();
    }
    let mut rows = grid(
        session.format,
        &[
            Column::Text("ID"),
            Column::Text("EVENT"),
            Column::Text("STATE"),
            Column::Text("ATTEMPTS"),
            Column::Text("LAST"),
            Column::Text("CREATED"),
            Column::Wide("DEPLOYMENT"),
        ],
    );
    for delivery in deliveries {
        let last = match (delivery.last_status, &delivery.last_error) {
            (_, Some(error)) => error.clone(),
            (Some(status), None) => format!("HTTP {status}"),
            (None, None) => "-".into(),
        };
        rows.row(vec![
            delivery.id.clone(),
            delivery.event.clone(),
            delivery.state.as_str().to_string(),
            delivery.attempts.to_string(),
            last,
            ago(delivery.created_at),
            delivery.deployment.clone().unwrap_or_default(),
        ]);
    }
    rows.to_string()
}
