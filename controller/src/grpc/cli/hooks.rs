//! `Cli` methods of git push hooks (`berth hook ...`): decode, call
//! `ops::hooks`, encode.

use std::sync::Arc;

use berth_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::records::hooks as records;
use crate::grpc::auth::caller;
use crate::ops;
use crate::ops::hooks::AddHook;
use crate::server::Context;

type Reply<T> = Result<Response<T>, Status>;

pub async fn add(
    context: &Arc<Context>,
    request: Request<pb::AddHookRequest>,
) -> Reply<pb::CreatedHookReply> {
    let caller = caller(&request)?;
    let pb::AddHookRequest {
        app,
        environment,
        git_ref,
        repo,
        path,
        provider,
        credential,
        build_labels,
    } = request.into_inner();
    let request = AddHook {
        app,
        environment,
        git_ref,
        repo,
        path,
        provider,
        credential,
        build_labels,
    };
    let created = ops::hooks::add(context, &caller, request).await?;
    Ok(Response::new(records::created(created)))
}

pub async fn list(
    context: &Arc<Context>,
    request: Request<pb::ListHooksRequest>,
) -> Reply<pb::HookList> {
    let hooks = ops::hooks::list(context, &caller(&request)?)?;
    Ok(Response::new(records::list(hooks)))
}

pub async fn remove(
    context: &Arc<Context>,
    request: Request<pb::HookIdRequest>,
) -> Reply<pb::HookReply> {
    let removed = ops::hooks::remove(context, &caller(&request)?, &request.get_ref().id).await?;
    Ok(Response::new(records::reply(removed)))
}
