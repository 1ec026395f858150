//! `Cli` methods about deployments: create, read, follow, and the
//! lifecycle actions on them.

use std::sync::Arc;

use berth_proto::v1::{
    CreateDeploymentRequest, DeleteDeploymentRequest, DeploymentList, DeploymentReply,
    GetDeploymentRequest, GetLogsRequest, ListDeploymentsRequest, ListDeploymentsResponse,
    LogRecord, PurgeReply, PutBlobChunk, PutBlobResponse, RerunRequest, ResolveDeploymentRequest,
    RollbackRequest, StatBlobRequest, StatBlobResponse, StopAppRequest, StopSelectedRequest,
};
use tonic::{Request, Response, Status, Streaming};

use super::claim;
use super::codec::{self, chunks, first_chunk, stream_of};
use super::records;
use crate::grpc::BoxStream;
use crate::grpc::auth::caller;
use crate::ops::{self, parse_deployment_id};
use crate::server::Context;

pub async fn put_blob(
    context: &Arc<Context>,
    request: Request<Streaming<PutBlobChunk>>,
) -> Result<Response<PutBlobResponse>, Status> {
    let caller = caller(&request)?;
    let mut rest = request.into_inner();
    let first = first_chunk(&mut rest).await?;
    let data = chunks(first.data, rest);
    let stored = ops::blobs::put(context, &caller, &first.digest, first.size, data).await?;
    Ok(Response::new(PutBlobResponse {
        digest: stored.digest,
        size: stored.size,
    }))
}

pub async fn stat_blob(
    context: &Arc<Context>,
    request: Request<StatBlobRequest>,
) -> Result<Response<StatBlobResponse>, Status> {
    let size = ops::blobs::stat(context, &caller(&request)?, &request.get_ref().digest)?;
    Ok(Response::new(StatBlobResponse {
        present: size.is_some(),
        size: size.unwrap_or(0),
    }))
}

pub async fn create_deployment(
    context: &Arc<Context>,
    request: Request<CreateDeploymentRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let caller = caller(&request)?;
    let new = codec::new_deployment(request.into_inner());
    let created = ops::create::create(context, &caller, new).await?;
    let mut response = Response::new(records::deployment_reply(created.deployment)?);
    if created.existing {
        response.metadata_mut().insert(
            berth_proto::EXISTING_DEPLOYMENT_METADATA,
            tonic::metadata::MetadataValue::from_static("1"),
        );
    }
    Ok(response)
}

pub async fn get_deployment(
    context: &Arc<Context>,
    request: Request<GetDeploymentRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let found = ops::deployments::get(context, &caller(&request)?, id)?;
    Ok(Response::new(records::deployment_reply(found)?))
}

pub async fn list_deployments(
    context: &Arc<Context>,
    request: Request<ListDeploymentsRequest>,
) -> Result<Response<ListDeploymentsResponse>, Status> {
    let caller = caller(&request)?;
    let list = codec::list_request(request.into_inner());
    let found = ops::deployments::list(context, &caller, list).await?;
    Ok(Response::new(ListDeploymentsResponse {
        deployments: records::deployments(found)?,
    }))
}

pub async fn watch_deployment(
    context: &Arc<Context>,
    request: Request<GetDeploymentRequest>,
) -> Result<Response<BoxStream<DeploymentReply>>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let snapshots = ops::watch::watch(context.clone(), &caller(&request)?, id)?;
    Ok(Response::new(stream_of(
        snapshots,
        records::deployment_reply,
    )))
}

pub async fn get_logs(
    context: &Arc<Context>,
    request: Request<GetLogsRequest>,
) -> Result<Response<BoxStream<LogRecord>>, Status> {
    let caller = caller(&request)?;
    let logs = codec::logs_request(request.into_inner())?;
    let lines = ops::follow::logs(context.clone(), &caller, logs)?;
    Ok(Response::new(stream_of(lines, codec::log_record)))
}

pub async fn stop_app(
    context: &Arc<Context>,
    request: Request<StopAppRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let caller = caller(&request)?;
    let StopAppRequest {
        app,
        environment,
        with_resources,
    } = request.into_inner();
    let stopped = ops::stop::stop(
        context,
        &caller,
        &codec::app_ref(app, environment),
        with_resources,
    )
    .await?;
    Ok(Response::new(records::deployment_reply(stopped)?))
}

pub async fn stop_selected(
    context: &Arc<Context>,
    request: Request<StopSelectedRequest>,
) -> Result<Response<DeploymentList>, Status> {
    let caller = caller(&request)?;
    let StopSelectedRequest { selector, app } = request.into_inner();
    let stopped = ops::stop::stop_selected(context, &caller, &selector, &app).await?;
    Ok(Response::new(DeploymentList {
        deployments: records::deployments(stopped)?,
    }))
}

pub async fn delete_deployment(
    context: &Arc<Context>,
    request: Request<DeleteDeploymentRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let caller = caller(&request)?;
    let DeleteDeploymentRequest {
        id,
        with_resources,
        purge_volumes,
        confirm,
    } = request.into_inner();
    let id = parse_deployment_id(&id)?;
    let teardown = ops::stop::Teardown {
        with_resources,
        purge_volumes,
        confirm,
    };
    let deleted = ops::stop::delete(context, &caller, id, &teardown).await?;
    Ok(Response::new(records::deployment_reply(deleted)?))
}

pub async fn cancel_deployment(
    context: &Arc<Context>,
    request: Request<GetDeploymentRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let canceled = ops::deployments::cancel(context, &caller(&request)?, id).await?;
    Ok(Response::new(records::deployment_reply(canceled)?))
}

pub async fn approve_deployment(
    context: &Arc<Context>,
    request: Request<GetDeploymentRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let approved = ops::approvals::approve(context, &caller(&request)?, id).await?;
    Ok(Response::new(records::deployment_reply(approved)?))
}

pub async fn retry_deployment(
    context: &Arc<Context>,
    request: Request<RerunRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let made = ops::rerun::retry(context, &caller(&request)?, id, claim(request.get_ref())).await?;
    Ok(Response::new(records::deployment_reply(made)?))
}

pub async fn redeploy_deployment(
    context: &Arc<Context>,
    request: Request<RerunRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let made =
        ops::rerun::redeploy(context, &caller(&request)?, id, claim(request.get_ref())).await?;
    Ok(Response::new(records::deployment_reply(made)?))
}

pub async fn start_app(
    context: &Arc<Context>,
    request: Request<StopAppRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let caller = caller(&request)?;
    let StopAppRequest {
        app, environment, ..
    } = request.into_inner();
    let started = ops::rerun::start(context, &caller, &codec::app_ref(app, environment)).await?;
    Ok(Response::new(records::deployment_reply(started)?))
}

pub async fn rollback(
    context: &Arc<Context>,
    request: Request<RollbackRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let caller = caller(&request)?;
    let rollback = codec::rollback(request.into_inner())?;
    let made = ops::rerun::rollback(context, &caller, &rollback).await?;
    Ok(Response::new(records::deployment_reply(made)?))
}

pub async fn purge_deployment(
    context: &Arc<Context>,
    request: Request<GetDeploymentRequest>,
) -> Result<Response<PurgeReply>, Status> {
    let id = parse_deployment_id(&request.get_ref().id)?;
    let purged = ops::deployments::purge(context, &caller(&request)?, id).await?;
    Ok(Response::new(records::purged(purged)))
}

pub async fn resolve_deployment(
    context: &Arc<Context>,
    request: Request<ResolveDeploymentRequest>,
) -> Result<Response<DeploymentReply>, Status> {
    let ResolveDeploymentRequest { app, environment } = request.get_ref();
    let found = ops::deployments::current(context, &caller(&request)?, app, environment)?;
    Ok(Response::new(records::deployment_reply(found)?))
}
