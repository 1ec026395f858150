//! Git push hooks' messages as the berth-shared records.

use berth_proto::v1 as pb;
use berth_shared::record::{CreatedHook, HookView, PushState, PushView};

use super::{all, parse, required, ts, ts_opt, unreadable};
use crate::Failure;

pub fn hooks(reply: pb::HookList) -> Result<Vec<HookView>, Failure> {
    all(reply.hooks, view)
}

pub fn hook(reply: pb::HookReply) -> Result<HookView, Failure> {
    view(required(reply.hook, "hook")?)
}

pub fn created_hook(reply: pb::CreatedHookReply) -> Result<CreatedHook, Failure> {
    let pb::CreatedHookReply { hook, url, secret } = reply;
    Ok(CreatedHook {
        hook: view(required(hook, "hook")?)?,
        url,
        secret,
    })
}

fn view(message: pb::HookView) -> Result<HookView, Failure> {
    let pb::HookView {
        id,
        app,
        environment,
        git_ref,
        repo,
        path,
        provider,
        credential,
        build_labels,
        accepted,
        refused,
        pushes,
        created_at_ms,
        created_by,
    } = message;
    Ok(HookView {
        id,
        app,
        environment,
        git_ref,
        repo,
        path,
        provider: parse(&provider, "the hook's git host")?,
        credential,
        build_labels,
        accepted,
        refused,
        pushes: all(pushes, push)?,
        created_at: ts(created_at_ms),
        created_by,
    })
}

fn push(message: pb::PushView) -> Result<PushView, Failure> {
    let pb::PushView {
        id,
        delivery,
        git_ref,
        commit,
        message,
        author,
        commit_time_ms,
        state,
        deployment,
        error,
        received_at_ms,
    } = message;
    let state = match state.as_str() {
        "queued" => PushState::Queued,
        "fetching" => PushState::Fetching,
        "deployed" => PushState::Deployed,
        "failed" => PushState::Failed,
        other => return Err(unreadable(format!("the push state `{other}`"))),
    };
    Ok(PushView {
        id,
        delivery,
        git_ref,
        commit,
        message,
        author,
        commit_time: ts_opt(commit_time_ms),
        state,
        deployment,
        error,
        received_at: ts(received_at_ms),
    })
}
