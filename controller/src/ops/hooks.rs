//! Git push hooks (`berth hook add|ls|rm`, operators and admins, audited)
//! and the deliveries git hosts send them (`receive`): checked by their
//! signature or token, refused and counted when it does not match or the
//! delivery id came before, and, for a push of a ref the hook takes,
//! recorded for the hooks worker (`hooks.rs`), which has a build agent
//! fetch the commit and deploys what it fetched.

use berth_shared::record::{CreatedHook, GitProvider, HookView, PushState, SecretScope, Timestamp};

use super::{Caller, Code, Error, Result};
use crate::crypto::Place;
use crate::hooks::push::{self, ref_matches};
use crate::hooks::verify::{self, Event, Refusal};
use crate::server::Context;
use crate::store::{Accepted, HookRecord, PushRecord, Role};

/// Most hooks a controller keeps.
const MAX_HOOKS: usize = 200;
/// Pushes a listing shows per hook.
const LISTED_PUSHES: usize = 10;

/// `berth hook add`.
#[derive(Clone, Debug, Default)]
pub struct AddHook {
    pub app: String,
    pub environment: String,
    pub git_ref: String,
    pub repo: String,
    pub path: Option<String>,
    /// `github` (or empty), `gitlab`, `gitea`.
    pub provider: String,
    pub credential: Option<String>,
    pub build_labels: String,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::new(Code::HookInvalid, reason)
}

/// A repository URL git may fetch: https, http, ssh, git or file, or
/// scp-like `user@host:path`; never one that could pass for an option.
fn check_repo(repo: &str) -> Result<()> {
    let known = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|scheme| repo.starts_with(scheme));
    let scp_like = repo.contains('@') && repo.contains(':') && !repo.contains("://");
    if repo.is_empty()
        || repo.len() > 2048
        || repo.starts_with('-')
        || !(known || scp_like)
        || repo.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "`{repo}` is not a repository URL git can fetch; give https://host/owner/repo.git, git@host:owner/repo.git or file:///path"
        )));
    }
    Ok(())
}

fn check_request(request: &AddHook) -> Result<GitProvider> {
    SecretScope::app(&request.app, &request.environment).map_err(invalid)?;
    check_repo(&request.repo)?;
    let git_ref = &request.git_ref;
    if git_ref.is_empty()
        || git_ref.len() > 256
        || git_ref.starts_with('-')
        || git_ref.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "`{git_ref}` is not a ref; give a branch (main), or a ref pattern (refs/tags/v*)"
        )));
    }
    if let Some(path) = &request.path
        && (path.starts_with('/') || path.split('/').any(|part| part == ".." || part.is_empty()))
    {
        return Err(invalid(format!(
            "the path `{path}` must be a directory inside the repository, like deploy/web"
        )));
    }
    if let Some(name) = &request.credential {
        berth_shared::variables::check_name(name).map_err(invalid)?;
    }
    berth_shared::labels::parse_labels(&request.build_labels)
        .map_err(|err| invalid(format!("the build labels: {err}")))?;
    request.provider.parse().map_err(invalid)
}

/// A hook as listed, with its latest pushes.
fn view(context: &Context, record: &HookRecord) -> Result<HookView> {
    let pushes = context.store.pushes(&record.id, LISTED_PUSHES)?;
    Ok(HookView {
        id: record.id.clone(),
        app: record.app.clone(),
        environment: record.environment.clone(),
        git_ref: record.git_ref.clone(),
        repo: record.repo.clone(),
        path: record.path.clone(),
        provider: record.provider,
        credential: record.credential.clone(),
        build_labels: record.build_labels.clone(),
        accepted: record.accepted,
        refused: record.refused,
        pushes: pushes.iter().map(PushRecord::view).collect(),
        created_at: record.created_at,
        created_by: record.created_by.clone(),
    })
}

/// Adds a hook; the answer shows its secret this once.
pub async fn add(context: &Context, caller: &Caller, request: AddHook) -> Result<CreatedHook> {
    caller.require(Role::Operator)?;
    let provider = check_request(&request)?;
    if context.store.list_hooks()?.len() >= MAX_HOOKS {
        return Err(invalid(format!(
            "this controller has {MAX_HOOKS} hooks already; remove one first (`berth hook ls`)"
        )));
    }
    let id = ulid::Ulid::new().to_string();
    // 32 random bytes as hex: every git host takes it as a secret.
    let secret = zeroize::Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
    let record = HookRecord {
        id: id.clone(),
        app: request.app,
        environment: request.environment,
        git_ref: request.git_ref,
        repo: request.repo,
        path: request.path.filter(|path| !path.is_empty()),
        provider,
        sealed: context
            .secret_key
            .seal(&Place::Hook { id: &id }, secret.as_bytes()),
        credential: request.credential,
        build_labels: request.build_labels,
        accepted: 0,
        refused: 0,
        created_at: Timestamp::now(),
        created_by: caller.who(),
    };
    context.store.put_hook(&record)?;
    context.store.audit(
        &caller.who(),
        "hook.add",
        &id,
        &format!(
            "{}/{} {} {}",
            record.app, record.environment, record.git_ref, record.repo
        ),
    )?;
    context.store.flush().await?;
    Ok(CreatedHook {
        hook: view(context, &record)?,
        url: format!("/api/v1/hooks/git/{id}"),
        secret: secret.to_string(),
    })
}

fn find(context: &Context, id: &str) -> Result<HookRecord> {
    context.store.hook(id)?.ok_or_else(|| {
        Error::new(
            Code::HookNotFound,
            format!("no hook has id `{id}`; `berth hook ls` lists them"),
        )
    })
}

/// Every hook with its latest pushes.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<HookView>> {
    caller.require(Role::Viewer)?;
    context
        .store
        .list_hooks()?
        .iter()
        .map(|record| view(context, record))
        .collect()
}

/// Removes a hook; deliveries to it are refused from now on.
pub async fn remove(context: &Context, caller: &Caller, id: &str) -> Result<HookView> {
    caller.require(Role::Operator)?;
    let record = find(context, id)?;
    let shown = view(context, &record)?;
    context.store.remove_hook(id)?;
    context
        .store
        .audit(&caller.who(), "hook.remove", id, "ok")?;
    context.store.flush().await?;
    Ok(shown)
}

/// What a delivery came to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    /// `accepted` (a push to deploy), `ignored` (a ping, another event or
    /// ref, a deleted ref).
    pub outcome: &'static str,
    pub reason: Option<String>,
    /// The push recorded, when accepted.
    pub push: Option<String>,
}

/// Takes a git host's delivery to hook `id` (no caller: the signature is
/// the credential).
pub async fn receive(
    context: &Context,
    id: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Received> {
    // An unknown hook and a bad signature answer alike, so the route says
    // nothing about which hooks exist.
    let refused = |reason: String| Error::new(Code::HookSignature, reason);
    let Some(record) = context.store.hook(id)? else {
        return Err(refused(
            "this hook does not exist or the signature does not match".into(),
        ));
    };
    let secret = context
        .secret_key
        .open_text(&Place::Hook { id }, &record.sealed)
        .map_err(|err| {
            Error::new(
                Code::SecretUnreadable,
                format!("hook {id}'s secret cannot be opened: {err}"),
            )
        })?;
    let checked = match verify::check(record.provider, &secret, header, body) {
        Ok(checked) => checked,
        Err(Refusal::Signature(reason)) => {
            context.store.count_refused(id)?;
            context.store.flush().await?;
            context.metrics.git_delivery("refused");
            tracing::warn!(hook = %id, %reason, "git delivery refused");
            return Err(refused(reason));
        }
        Err(Refusal::Invalid(reason)) => return Err(invalid(reason)),
    };
    let ignored = |reason: String| {
        context.metrics.git_delivery("ignored");
        Received {
            outcome: "ignored",
            reason: Some(reason),
            push: None,
        }
    };
    match checked.event {
        Event::Push => {}
        Event::Ping => return Ok(ignored("ping: the hook is set up".into())),
        Event::Other(name) => {
            return Ok(ignored(format!(
                "`{name}` events are not deployed; send push events"
            )));
        }
    }
    let Some(push) = push::parse(body).map_err(invalid)? else {
        return Ok(ignored("the push deletes its ref".into()));
    };
    if !ref_matches(&record.git_ref, &push.git_ref) {
        return Ok(ignored(format!(
            "{} is not {} (the hook's ref)",
            push.git_ref, record.git_ref
        )));
    }
    let stored = PushRecord {
        id: ulid::Ulid::new().to_string(),
        hook: id.to_string(),
        delivery: checked.delivery.clone(),
        git_ref: push.git_ref,
        commit: push.commit,
        message: push.message,
        author: push.author,
        commit_time: push.commit_time,
        state: PushState::Queued,
        deployment: None,
        error: None,
        received_at: Timestamp::now(),
    };
    let accepted = context.store.accept_push(&stored)?;
    context.store.flush().await?;
    if accepted == Accepted::Replayed {
        context.metrics.git_delivery("replayed");
        tracing::warn!(hook = %id, delivery = %checked.delivery, "git delivery replayed; refused");
        return Err(Error::new(
            Code::HookReplayed,
            format!(
                "delivery {} came before; a replayed delivery deploys nothing",
                checked.delivery
            ),
        ));
    }
    tracing::info!(hook = %id, push = %stored.id, commit = %stored.commit, git_ref = %stored.git_ref, "git push accepted");
    context.store.wake_pushes();
    context.metrics.git_delivery("accepted");
    Ok(Received {
        outcome: "accepted",
        reason: None,
        push: Some(stored.id),
    })
}
