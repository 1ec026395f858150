//! The Webhooks page (`/webhooks`, admins): every endpoint with its
//! filters, state and waiting deliveries, its latest deliveries, and the
//! forms to add, test, enable and remove one. Lists are
//! `ops::webhooks::list` and `deliveries`, as for the API; the script
//! (`assets/webhooks.js`) sends each change to the API's webhook routes
//! with the session's CSRF token and shows a new endpoint's signing secret
//! once, in a dialog. No URL path or secret is ever on the page.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{DeliveryState, DeliveryView, WEBHOOK_EVENTS, WebhookView};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav};
use crate::http::Api;
use crate::ops;

/// Deliveries shown per endpoint.
const DELIVERIES: usize = 10;

/// `GET /webhooks`.
pub async fn page(State(api): State<Arc<Api>>, browser: Browser) -> Response {
    let webhooks = ops::webhooks::list(&api.context, &browser.caller);
    let main = html! {
        h1 { "Webhooks" }
        p class="muted" { "berth POSTs each event to these endpoints, one at a time and in order, signed the "
            a href="https://www.standardwebhooks.com/" { "Standard Webhooks" } " way; a refused delivery is tried again for 24 hours." }
        @match &webhooks {
            Err(err) => (layout::refusal(err)),
            Ok(webhooks) => {
                @if webhooks.is_empty() { p class="empty" { "No webhook yet." } }
                @for webhook in webhooks {
                    (endpoint(webhook, ops::webhooks::deliveries(&api.context, &browser.caller, &webhook.id, DELIVERIES)))
                }
                (add_form())
            }
        }
    };
    layout::page("Webhooks", Some(&browser.session), Nav::Webhooks, main)
}

fn endpoint(webhook: &WebhookView, deliveries: ops::Result<Vec<DeliveryView>>) -> Markup {
    let events = if webhook.events.is_empty() {
        "every event".to_string()
    } else {
        webhook.events.join(", ")
    };
    html! {
        section class="webhook" data-webhook=(webhook.id) aria-labelledby=(format!("w-{}", webhook.id)) {
            h2 id=(format!("w-{}", webhook.id)) { (webhook.url) " "
                @if !webhook.enabled { span class="status s-failed" { "disabled" } }
                @else if webhook.failing_since.is_some() { span class="status s-timed_out" { "failing" } }
                @else { span class="status s-done" { "ok" } } }
            p { (events)
                @if let Some(app) = &webhook.app { " · app " strong { (app) } }
                @if let Some(environment) = &webhook.environment { " · environment " strong { (environment) } }
                " · " (webhook.format.as_str()) " · " (webhook.pending) " waiting · added " (layout::time(webhook.created_at)) " by " (webhook.created_by)
                br; span class="muted" { "id " code { (webhook.id) } } }
            @if let Some(reason) = &webhook.disabled_reason { p class="warn" { "Disabled: " (reason) } }
            @if let Some(since) = webhook.failing_since { p class="warn" { "Failing since " (layout::time(since)) "." } }
            div class="actions" {
                button type="button" data-action="test" { "Send a test" }
                @if !webhook.enabled { button type="button" data-action="enable" { "Enable" } }
                button type="button" class="danger" data-action="remove" { "Remove" }
            }
            @match deliveries {
                Err(err) => (layout::refusal(&err)),
                Ok(deliveries) if deliveries.is_empty() => p class="empty" { "No delivery yet." },
                Ok(deliveries) => div class="scroll" role="region" tabindex="0" aria-label=(format!("Deliveries to {}", webhook.url)) {
                    table class="stages deliveries" {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "State" } th scope="col" { "Attempts" }
                            th scope="col" { "Last answer" } th scope="col" { "Queued" } th scope="col" { "Delivery id" } } }
                        tbody { @for delivery in &deliveries { (delivery_row(delivery)) } }
                    } },
            }
        }
    }
}

fn delivery_row(delivery: &DeliveryView) -> Markup {
    let state = match delivery.state {
        DeliveryState::Delivered => "done",
        DeliveryState::Pending => "pending",
        DeliveryState::Failed => "failed",
    };
    html! {
        tr {
            td { (delivery.event) @if let Some(id) = &delivery.deployment { br; a href=(format!("/deployments/{id}")) { "deployment" } } }
            td { span class=(format!("status s-{state}")) { (delivery.state.as_str()) } }
            td { (delivery.attempts) }
            td { @match (&delivery.last_error, delivery.last_status) {
                (Some(error), _) => (error),
                (None, Some(status)) => { "HTTP " (status) },
                (None, None) => span class="muted" { "not tried yet" },
            } }
            td { (layout::time(delivery.created_at)) }
            td { code { (delivery.id) } }
        }
    }
}

fn add_form() -> Markup {
    html! {
        h2 { "Add a webhook" }
        form id="add-webhook" class="filters" {
            div { label for="hook-url" { "URL" }
                input id="hook-url" name="url" type="url" required maxlength="2048" autocomplete="off" placeholder="https://hooks.example.com/berth"; }
            div { label for="hook-format" { "Format" }
                select id="hook-format" name="format" {
                    option value="standard" selected { "Standard Webhooks (signed JSON)" }
                    option value="slack" { "Slack" } option value="discord" { "Discord" } } }
            div { label for="hook-app" { "Only app (optional)" }
                input id="hook-app" name="app" maxlength="63" pattern="[a-z0-9\\-]+" autocomplete="off"; }
            div { label for="hook-env" { "Only environment (optional)" }
                input id="hook-env" name="environment" maxlength="63" pattern="[a-z0-9\\-]+" autocomplete="off"; }
            fieldset { legend { "Events (none ticked: all)" }
                @for event in WEBHOOK_EVENTS {
                    label class="check" { input type="checkbox" name="events" value=(event); " " (event) } } }
            div { button type="submit" class="primary" { "Add webhook" } }
        }
    }
}
