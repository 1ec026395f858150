//! The git push worker: each accepted push (`ops::hooks::receive`) is
//! fetched by a build agent (`FetchRequest` on its stream: `git fetch` of
//! the commit, `git archive` of the tree or the hook's path, uploaded as a
//! bundle), then deployed through `ops::create` like a bundle from the
//! CLI, as the hook (an operator: protected environments and deploy
//! windows apply), recording the commit, ref, message, author and trigger
//! `webhook`. Pushes are taken one at a time, oldest first; one left
//! queued or fetching by a stop is taken again at start, and its
//! idempotency key (`push:ID`) keeps a second attempt from deploying
//! twice.

pub mod push;
pub mod verify;

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::FetchRequest;
use berth_shared::record::PushState;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ops::Caller;
use crate::ops::create::NewDeployment;
use crate::ops::provenance::{Provenance, Trigger};
use crate::server::Context;
use crate::store::{HookRecord, Principal, PrincipalKind, PushRecord, Role};

/// The longest a build agent may take to fetch a commit.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How often queued pushes are looked at when nothing woke the worker
/// (a push waiting for a build agent to come online).
const IDLE_CHECK: Duration = Duration::from_secs(10);
/// The largest `berth.toml` read from a fetched bundle.
const MAX_MANIFEST: u64 = 1 << 20;

/// Runs until `shutdown`.
pub async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let wake = context.store.push_wake();
    loop {
        match context.store.unfinished_pushes() {
            Ok(pushes) => {
                for push in pushes {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    take(&context, push).await;
                }
            }
            Err(err) => warn!(error = %err, "the git pushes could not be read"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(IDLE_CHECK) => {}
        }
    }
}

/// The caller a hook's deployments are made as.
fn hook_caller(hook: &HookRecord) -> Caller {
    let name = format!("hook:{}", hook.id);
    Caller {
        principal: Principal {
            kind: PrincipalKind::User,
            id: name.clone(),
            name: name.clone(),
            role: Role::Operator,
            revoked: false,
        },
        serial: name,
        via_token: None,
    }
}

/// Fetches and deploys one push, recording how it went.
async fn take(context: &Context, mut push: PushRecord) {
    let outcome = match context.store.hook(&push.hook) {
        Ok(Some(hook)) => deploy(context, &hook, &mut push).await,
        Ok(None) => Err("the hook was removed".to_string()),
        Err(err) => Err(err.to_string()),
    };
    match outcome {
        Ok(Some(deployment)) => {
            info!(push = %push.id, %deployment, "git push deployed");
            push.state = PushState::Deployed;
            push.deployment = Some(deployment);
            push.error = None;
        }
        // No build agent online yet: it stays queued.
        Ok(None) => return,
        Err(error) => {
            warn!(push = %push.id, %error, "git push not deployed");
            push.state = PushState::Failed;
            push.error = Some(error);
        }
    }
    if let Err(err) = context.store.put_push(&push) {
        warn!(push = %push.id, error = %err, "a git push's outcome could not be stored");
    }
    let _ = context.store.flush().await;
}

/// The deployment's id; `None` while no build agent is online.
async fn deploy(
    context: &Context,
    hook: &HookRecord,
    push: &mut PushRecord,
) -> Result<Option<String>, String> {
    let candidates = crate::ops::target::select_agents(context, &hook.build_labels)
        .map_err(|err| err.message)?;
    if candidates.is_empty() {
        return Err(format!(
            "no agent has the hook's build labels `{}`; label a build machine so (berth agents label NAME {})",
            hook.build_labels, hook.build_labels
        ));
    }
    let Some(agent) = candidates
        .into_iter()
        // Connected here or to another controller of the store (which
        // relays the fetch); this one's own are preferred when free.
        .filter(|agent| context.is_online(agent.id))
        .max_by_key(|agent| context.registry.free_slots(agent.id))
    else {
        return Ok(None);
    };
    push.state = PushState::Fetching;
    context
        .store
        .put_push(push)
        .map_err(|err| err.to_string())?;
    let mut request = FetchRequest {
        url: hook.repo.clone(),
        commit: push.commit.clone(),
        path: hook.path.clone().unwrap_or_default(),
        ..FetchRequest::default()
    };
    if let Some(name) = &hook.credential {
        let value = credential(context, hook, name)?;
        if value.trim_start().starts_with("-----BEGIN") {
            request.ssh_key = value.to_string();
        } else {
            request.token = value.trim().to_string();
        }
    }
    let fetched = context
        .registry
        .fetch(agent.id, request, FETCH_TIMEOUT)
        .await?;
    if !fetched.error.is_empty() {
        return Err(format!(
            "{} could not fetch {}: {}",
            agent.name, push.commit, fetched.error
        ));
    }
    let manifest_toml = manifest_of(context, &fetched.digest)?;
    let manifest: toml::Table = manifest_toml
        .parse()
        .map_err(|err| format!("the commit's berth.toml is not TOML: {err}"))?;
    match manifest.get("app").and_then(toml::Value::as_str) {
        Some(app) if app == hook.app => {}
        other => {
            return Err(format!(
                "the commit's berth.toml deploys app `{}`, and the hook is for `{}`",
                other.unwrap_or("(none)"),
                hook.app
            ));
        }
    }
    let short = &push.commit[..push.commit.len().min(12)];
    let request = NewDeployment {
        manifest_toml,
        environment: hook.environment.clone(),
        version: if manifest.contains_key("version") {
            String::new()
        } else {
            short.to_string()
        },
        bundle_digest: fetched.digest,
        bundle_size: fetched.size,
        idempotency_key: format!("push:{}", push.id),
        // Pushes in a row deploy in turn rather than being refused while
        // the one before runs.
        queue: true,
        provenance: Provenance {
            message: push.message.clone(),
            source_ref: Some(push::short_ref(&push.git_ref).to_string()),
            commit_sha: Some(push.commit.clone()),
            commit_time: push.commit_time,
            commit_author: push.author.clone(),
            build_url: None,
        },
        trigger: Trigger::Webhook,
        ..NewDeployment::default()
    };
    let created = crate::ops::create::create(context, &hook_caller(hook), request)
        .await
        .map_err(|err| err.message)?;
    Ok(Some(created.deployment.id.to_string()))
}

/// The value of the hook's credential secret: its app and environment's,
/// or the fleet's (as a deployment's secrets are chosen), opened by
/// `ops::secrets::reveal`.
fn credential(
    context: &Context,
    hook: &HookRecord,
    name: &str,
) -> Result<zeroize::Zeroizing<String>, String> {
    let refs =
        crate::ops::secrets::current(context, &hook.app, &hook.environment, &[name.to_string()])
            .map_err(|err| format!("the hook's credential: {}", err.message))?;
    let wanted: Vec<_> = refs.into_iter().filter(|r| r.name == name).collect();
    crate::ops::secrets::reveal(&context.store, &wanted)
        .map_err(|err| format!("the hook's credential: {}", err.message))?
        .into_iter()
        .next()
        .map(|(_, value)| value)
        .ok_or_else(|| format!("the hook's credential `{name}` has no current version"))
}

/// `berth.toml` at the root of a fetched bundle.
fn manifest_of(context: &Context, digest: &str) -> Result<String, String> {
    let path = context.blobs.path(digest).map_err(|err| err.to_string())?;
    let file =
        std::fs::File::open(&path).map_err(|err| format!("open the fetched bundle: {err}"))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|err| format!("read the fetched bundle: {err}"))?;
    for entry in entries {
        let entry = entry.map_err(|err| format!("read the fetched bundle: {err}"))?;
        let name = entry
            .path()
            .map_err(|err| err.to_string())?
            .to_string_lossy()
            .into_owned();
        if name.trim_start_matches("./") == "berth.toml" {
            let mut text = String::new();
            entry
                .take(MAX_MANIFEST)
                .read_to_string(&mut text)
                .map_err(|err| format!("read berth.toml: {err}"))?;
            return Ok(text);
        }
    }
    Err("the commit has no berth.toml (at the hook's path)".into())
}
