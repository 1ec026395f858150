//! `Agent.GetBlob` and `Agent.PutBuildResult`: an agent's downloads and its
//! build's upload. Both end at once when the agent is revoked
//! (`Registry::disconnect` cancels the agent's transfer token), so a
//! revoked agent gets no more bytes and stores none.

use berth_proto::BLOB_CHUNK_BYTES;
use berth_proto::v1::{BlobChunk, GetBlobRequest, PutBlobChunk, PutBlobResponse};
use berth_shared::id::{AgentId, TaskId};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::info;

use crate::grpc::BoxStream;
use crate::ops::{Code, Error};
use crate::server::Context;

/// The token that a revocation of `agent_id` cancels, or a refusal if the
/// agent is revoked already. Taken before the check, so a revocation
/// landing between authentication and here is not missed.
fn revocation_token(context: &Context, agent_id: AgentId) -> Result<CancellationToken, Status> {
    let token = context.registry.transfers.token(agent_id);
    if context.store.get_agent(agent_id)?.is_revoked() {
        return Err(revoked(agent_id));
    }
    Ok(token)
}

fn revoked(agent_id: AgentId) -> Status {
    Error::new(
        Code::AuthRevoked,
        format!(
            "agent {agent_id} was revoked; this transfer is cut off; join again with a new token"
        ),
    )
    .into()
}

/// Streams a granted blob from `offset`, until its end or a revocation.
pub async fn get_blob(
    context: &Context,
    agent_id: AgentId,
    request: GetBlobRequest,
) -> Result<BoxStream<BlobChunk>, Status> {
    if !context.store.is_blob_granted(agent_id, &request.digest)? {
        return Err(Error::new(
            Code::AuthPermissionDenied,
            format!(
                "blob {} was not sent to this agent by any deployment",
                request.digest
            ),
        )
        .into());
    }
    let cancel = revocation_token(context, agent_id)?;
    context.store.touch_blob(&request.digest)?;
    let path = context.blobs.path(&request.digest)?;
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| {
        Error::new(
            Code::BlobNotFound,
            format!("blob {} not found", request.digest),
        )
    })?;
    file.seek(std::io::SeekFrom::Start(request.offset))
        .await
        .map_err(|err| Error::new(Code::Internal, format!("seek blob: {err}")))?;
    let stream = futures_util::stream::unfold(Some(file), move |file| {
        let cancel = cancel.clone();
        async move {
            let mut file = file?;
            let mut buffer = vec![0u8; BLOB_CHUNK_BYTES];
            let read = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    info!(%agent_id, "download cut off: the agent was revoked");
                    return Some((Err(revoked(agent_id)), None));
                }
                read = file.read(&mut buffer) => read,
            };
            match read {
                Ok(0) => None,
                Ok(read) => {
                    buffer.truncate(read);
                    Some((Ok(BlobChunk { data: buffer }), Some(file)))
                }
                Err(err) => {
                    let err = Error::new(Code::Internal, format!("read blob: {err}"));
                    Some((Err(err.into()), None))
                }
            }
        }
    });
    Ok(Box::pin(stream))
}

/// Stores a build task's result, unless the agent is revoked meanwhile.
pub async fn put_build_result(
    context: &Context,
    agent_id: AgentId,
    mut chunks: Streaming<PutBlobChunk>,
) -> Result<PutBlobResponse, Status> {
    let first = crate::grpc::cli::first_chunk(&mut chunks).await?;
    if first.task_id.is_empty() && first.fetch_request_id != 0 {
        // A git fetch's bundle: only from the agent asked, while it is asked.
        // Or asked by another controller, through this one.
        let asked = context
            .registry
            .holds_fetch(agent_id, first.fetch_request_id)
            || context
                .registry
                .relayed_to(agent_id, first.fetch_request_id, false)
                .is_some();
        if !asked {
            return Err(Error::new(
                Code::AuthPermissionDenied,
                format!(
                    "fetch {} is not waiting for this agent; only the agent asked may upload its bundle",
                    first.fetch_request_id
                ),
            )
            .into());
        }
        let cancel = revocation_token(context, agent_id)?;
        let data = crate::grpc::cli::chunks(first.data, chunks);
        let stored =
            crate::ops::blobs::receive(context, &first.digest, first.size, data, &cancel).await?;
        context.store.flush().await?;
        info!(fetch = first.fetch_request_id, digest = %stored.digest, size = stored.size, "fetched bundle stored");
        return Ok(PutBlobResponse {
            digest: stored.digest,
            size: stored.size,
        });
    }
    let task_id: TaskId = first
        .task_id
        .parse()
        .map_err(|_| Error::invalid("a build result names its build task"))?;
    if !context.dispatcher.holds_build_task(agent_id, task_id)? {
        return Err(Error::new(
            Code::AuthPermissionDenied,
            format!(
                "task {task_id} is not a running build task of this agent; only the build may upload its result"
            ),
        )
        .into());
    }
    let cancel = revocation_token(context, agent_id)?;
    let data = crate::grpc::cli::chunks(first.data, chunks);
    let stored =
        crate::ops::blobs::receive(context, &first.digest, first.size, data, &cancel).await?;
    if cancel.is_cancelled() {
        return Err(revoked(agent_id));
    }
    context.store.flush().await?;
    info!(%task_id, digest = %stored.digest, size = stored.size, "build result stored");
    Ok(PutBlobResponse {
        digest: stored.digest,
        size: stored.size,
    })
}
