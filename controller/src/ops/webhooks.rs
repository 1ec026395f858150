//! Outgoing webhooks (`berth webhook add|ls|rm|enable|test|deliveries`),
//! admin only, audited. The URL (which may carry a token) and the signing
//! secret are sealed under the secrets key; the secret is shown once, in
//! the answer to `add`. Delivery itself is the worker's (`webhooks.rs`).

use berth_shared::record::{
    CreatedWebhook, DeliveryView, TEST_EVENT, Timestamp, WEBHOOK_EVENTS, WebhookFormat, WebhookView,
};
use zeroize::Zeroizing;

use super::{Caller, Code, Error, Result};
use crate::crypto::Place;
use crate::server::Context;
use crate::store::{OutboxEvent, Role, WebhookRecord};
use crate::webhooks::{delivery, sign};

/// Most endpoints a controller keeps.
const MAX_WEBHOOKS: usize = 100;
/// Longest URL, in bytes.
const MAX_URL_BYTES: usize = 2048;
/// Most deliveries `deliveries` lists.
pub const MAX_LISTED: usize = 200;

/// `berth webhook add`.
#[derive(Clone, Debug, Default)]
pub struct AddWebhook {
    pub url: String,
    /// Empty for every event.
    pub events: Vec<String>,
    pub app: Option<String>,
    pub environment: Option<String>,
    /// `standard` (or empty), `slack` or `discord`.
    pub format: String,
}

fn invalid(reason: String) -> Error {
    Error::new(Code::WebhookInvalid, reason)
}

/// Checks a URL and returns what listings show of it (scheme and host).
fn check_url(url: &str) -> Result<String> {
    let refuse = |why: &str| {
        invalid(format!(
            "the webhook URL {why}; give one like https://hooks.example.com/berth"
        ))
    };
    if url.len() > MAX_URL_BYTES {
        return Err(refuse(&format!("is longer than {MAX_URL_BYTES} bytes")));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| refuse("is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(refuse("must start with https:// or http://"));
    }
    let Some(authority) = uri.authority() else {
        return Err(refuse("names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(refuse(
            "holds a user or password (put a token in the path or query instead)",
        ));
    }
    let rest = uri.path_and_query().map_or("", |path| path.as_str());
    let more = if rest.is_empty() || rest == "/" {
        ""
    } else {
        "/…"
    };
    Ok(format!("{scheme}://{authority}{more}"))
}

fn check_request(request: &AddWebhook) -> Result<()> {
    for event in &request.events {
        if !WEBHOOK_EVENTS.contains(&event.as_str()) {
            return Err(invalid(format!(
                "`{event}` is not a webhook event; use some of {}",
                WEBHOOK_EVENTS.join(", ")
            )));
        }
    }
    for (what, name) in [("app", &request.app), ("environment", &request.environment)] {
        if let Some(name) = name {
            berth_shared::manifest::check_environment(name)
                .map_err(|reason| invalid(format!("the {what} filter `{name}` {reason}")))?;
        }
    }
    Ok(())
}

/// Adds an endpoint; the answer shows its signing secret this once.
pub async fn add(
    context: &Context,
    caller: &Caller,
    request: AddWebhook,
) -> Result<CreatedWebhook> {
    caller.require(Role::Admin)?;
    let display_url = check_url(request.url.trim())?;
    check_request(&request)?;
    let format: WebhookFormat = request.format.parse().map_err(invalid)?;
    if context.store.list_webhooks()?.len() >= MAX_WEBHOOKS {
        return Err(invalid(format!(
            "this controller has {MAX_WEBHOOKS} webhooks already; remove one first (`berth webhook ls`)"
        )));
    }
    let id = ulid::Ulid::new().to_string();
    let secret = sign::new_secret();
    let target = Zeroizing::new(
        serde_json::json!({ "url": request.url.trim(), "secret": secret.as_str() }).to_string(),
    );
    let mut events = request.events;
    events.sort();
    events.dedup();
    let record = WebhookRecord {
        id: id.clone(),
        display_url,
        sealed: context
            .secret_key
            .seal(&Place::Webhook { id: &id }, target.as_bytes()),
        events,
        app: request.app,
        environment: request.environment,
        format,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: Timestamp::now(),
        created_by: caller.who(),
    };
    context.store.put_webhook(&record)?;
    context.store.audit(
        &caller.who(),
        "webhook.add",
        &id,
        &format!("{} {}", record.display_url, record.format),
    )?;
    context.store.flush().await?;
    Ok(CreatedWebhook {
        webhook: record.view(0),
        secret: secret.to_string(),
    })
}

fn find(context: &Context, id: &str) -> Result<WebhookRecord> {
    context.store.webhook(id)?.ok_or_else(|| {
        Error::new(
            Code::WebhookNotFound,
            format!("no webhook has id `{id}`; `berth webhook ls` lists them"),
        )
    })
}

fn view(context: &Context, record: &WebhookRecord) -> Result<WebhookView> {
    let (_, pending) = context.store.queue_head(&record.id)?;
    Ok(record.view(pending))
}

/// Every endpoint, oldest first.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<WebhookView>> {
    caller.require(Role::Admin)?;
    context
        .store
        .list_webhooks()?
        .iter()
        .map(|record| view(context, record))
        .collect()
}

/// Removes an endpoint and what waits for it.
pub async fn remove(context: &Context, caller: &Caller, id: &str) -> Result<WebhookView> {
    caller.require(Role::Admin)?;
    let record = find(context, id)?;
    let shown = view(context, &record)?;
    context.store.remove_webhook(id)?;
    context
        .store
        .audit(&caller.who(), "webhook.remove", id, &record.display_url)?;
    context.store.flush().await?;
    Ok(shown)
}

/// Enables an endpoint again (after it was disabled for failing): what
/// waits for it is sent, oldest first.
pub async fn enable(context: &Context, caller: &Caller, id: &str) -> Result<WebhookView> {
    caller.require(Role::Admin)?;
    let mut record = find(context, id)?;
    record.enabled = true;
    record.disabled_reason = None;
    record.failing_since = None;
    context.store.put_webhook(&record)?;
    context
        .store
        .audit(&caller.who(), "webhook.enable", id, "ok")?;
    context.store.flush().await?;
    context.store.wake_webhooks();
    view(context, &record)
}

/// Queues a `webhook.test` delivery to one endpoint (behind what already
/// waits for it).
pub async fn test(context: &Context, caller: &Caller, id: &str) -> Result<DeliveryView> {
    caller.require(Role::Admin)?;
    let record = find(context, id)?;
    let event = OutboxEvent {
        event: TEST_EVENT.into(),
        at: Timestamp::now(),
        app: None,
        environment: None,
        deployment: None,
        data: serde_json::json!({ "webhook": id, "requested_by": caller.who() }),
    };
    let queued = delivery(&record, &event);
    context
        .store
        .enqueue_deliveries(None, &[(record.id.clone(), queued.clone())])?;
    context.store.flush().await?;
    context.store.wake_webhooks();
    Ok(queued.view(&record.id))
}

/// An endpoint's deliveries, newest first.
pub fn deliveries(
    context: &Context,
    caller: &Caller,
    id: &str,
    limit: usize,
) -> Result<Vec<DeliveryView>> {
    caller.require(Role::Admin)?;
    let record = find(context, id)?;
    let limit = if limit == 0 {
        50
    } else {
        limit.min(MAX_LISTED)
    };
    Ok(context
        .store
        .deliveries(&record.id, limit)?
        .iter()
        .map(|delivery| delivery.view(&record.id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_show_only_their_scheme_and_host() {
        assert_eq!(
            check_url("https://hooks.slack.com/services/T0/B0/secret").expect("ok"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            check_url("http://127.0.0.1:9000/").expect("ok"),
            "http://127.0.0.1:9000"
        );
        for bad in [
            "ftp://example.com/x",
            "hooks.example.com/x",
            "https://user:pw@example.com/x",
            "not a url",
        ] {
            let err = check_url(bad).expect_err(bad);
            assert_eq!(err.code.as_str(), "webhook/invalid", "{bad}");
        }
    }
}
