//! Blob uploads (bundles, image archives, build results) into the blob
//! store, verified against the digest and size they declare, and lookups.

use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::Role;

/// A blob now in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub digest: String,
    pub size: u64,
}

/// `berth deploy` uploading its bundle (or image archive): stores the
/// chunks as the blob `digest` of `size` bytes, audited.
pub async fn put(
    context: &Context,
    caller: &Caller,
    digest: &str,
    size: u64,
    chunks: impl Stream<Item = Result<Vec<u8>>> + Unpin,
) -> Result<Stored> {
    caller.require(Role::Operator)?;
    let stored = receive(context, digest, size, chunks, &CancellationToken::new()).await?;
    context
        .store
        .audit(&caller.who(), "blob.put", &stored.digest, "ok")?;
    context.store.flush().await?;
    info!(digest = %stored.digest, size = stored.size, "blob stored");
    Ok(stored)
}

/// The size of a blob the store holds (its record and its file), if any.
pub fn stat(context: &Context, caller: &Caller, digest: &str) -> Result<Option<u64>> {
    caller.require(Role::Viewer)?;
    let size = context.store.blob_size(digest)?;
    let present = size.is_some() && context.blobs.path(digest)?.exists();
    Ok(size.filter(|_| present))
}

/// Writes an upload into the blob store, verified against `digest` and
/// `size`; gives up, keeping nothing, once `cancel` fires (an agent's
/// upload when the agent is revoked) or the chunks fail.
pub async fn receive(
    context: &Context,
    digest: &str,
    size: u64,
    mut chunks: impl Stream<Item = Result<Vec<u8>>> + Unpin,
    cancel: &CancellationToken,
) -> Result<Stored> {
    let mut upload = context.blobs.begin(digest, size).await?;
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Error::new(
                Code::AuthRevoked,
                "the uploader was revoked; the upload is discarded",
            )),
            next = chunks.next() => next.transpose(),
        };
        let written = match next {
            Ok(Some(data)) => upload.write(&data).await.map_err(Error::from),
            Ok(None) => break,
            Err(err) => Err(err),
        };
        if let Err(err) = written {
            context.blobs.abort(upload).await;
            return Err(err);
        }
    }
    let (digest, size) = context.blobs.commit(upload).await?;
    context.store.put_blob_meta(&digest, size)?;
    Ok(Stored { digest, size })
}
