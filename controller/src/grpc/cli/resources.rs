//! `Cli` methods of `berth resource`: the snapshots of an app's resources,
//! and putting one back.

use std::sync::Arc;

use berth_proto::v1::{ListSnapshotsRequest, RestoreReply, RestoreSnapshotRequest, SnapshotList};
use tonic::{Request, Response, Status};

use super::records::resources as records;
use crate::grpc::auth::caller;
use crate::ops;
use crate::server::Context;

pub async fn list_snapshots(
    context: &Arc<Context>,
    request: Request<ListSnapshotsRequest>,
) -> Result<Response<SnapshotList>, Status> {
    let caller = caller(&request)?;
    let ListSnapshotsRequest {
        app,
        environment,
        resource,
    } = request.into_inner();
    let query = ops::resources::SnapshotQuery {
        app,
        environment,
        resource,
    };
    let list = ops::resources::snapshots(context, &caller, &query).await?;
    Ok(Response::new(records::snapshot_list(list)))
}

pub async fn restore_snapshot(
    context: &Arc<Context>,
    request: Request<RestoreSnapshotRequest>,
) -> Result<Response<RestoreReply>, Status> {
    let caller = caller(&request)?;
    let RestoreSnapshotRequest {
        app,
        environment,
        resource,
        host,
        snapshot,
    } = request.into_inner();
    let restore = ops::resources::Restore {
        app,
        environment,
        resource,
        host,
        snapshot,
    };
    let restored = ops::resources::restore(context, &caller, &restore).await?;
    Ok(Response::new(records::restore_reply(restored)))
}
