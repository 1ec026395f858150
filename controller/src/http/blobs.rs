//! `PUT /api/v1/blobs/sha256:HEX` streams a blob (a bundle, an image
//! archive) into the blob store through `ops::blobs::put`, verified against
//! the digest in the path and the declared `Content-Length`, never held in
//! memory; `HEAD` says whether the store has it (`ops::blobs::stat`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::{Stream, StreamExt};

use super::Api;
use super::auth::Authed;
use super::decode::PathText;
use super::error::ApiError;
use super::openapi::requests::{Blob, DigestPath};
use super::openapi::responses::{InsufficientStorage, LengthRequired, TooLarge};
use super::reply::{self, StoredBlob};
use crate::ops::{self, Code, Error};

/// How long an upload may send nothing before it is given up.
pub const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// The declared size of an upload: `Content-Length`, which must be there.
fn declared_size(headers: &HeaderMap) -> Result<u64, Error> {
    let value = headers.get(header::CONTENT_LENGTH).ok_or_else(|| {
        Error::new(
            Code::RequestLengthRequired,
            "a blob upload needs Content-Length (curl --data-binary @FILE sends it; chunked uploads are refused)",
        )
    })?;
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| Error::invalid("Content-Length is not a number"))
}

/// The body as the chunks an upload is made of; a pause longer than
/// [`UPLOAD_IDLE`] or a broken connection ends it with an error.
fn chunks(body: Body) -> impl Stream<Item = ops::Result<Vec<u8>>> + Unpin + Send {
    let frames = body.into_data_stream();
    Box::pin(futures_util::stream::unfold(
        Some(frames),
        |frames| async move {
            let mut frames = frames?;
            match tokio::time::timeout(UPLOAD_IDLE, frames.next()).await {
                Ok(None) => None,
                Ok(Some(Ok(data))) => Some((Ok(data.to_vec()), Some(frames))),
                Ok(Some(Err(err))) => Some((
                    Err(Error::invalid(format!("the upload broke off: {err}"))),
                    None,
                )),
                Err(_) => Some((
                    Err(Error::new(
                        Code::RequestTimedOut,
                        format!("the upload sent nothing for {}s", UPLOAD_IDLE.as_secs()),
                    )),
                    None,
                )),
            }
        },
    ))
}

/// Uploads a blob (a bundle, an image archive).
///
/// Verified against the digest and `Content-Length`; chunked uploads are
/// refused.
#[utoipa::path(put, path = "/api/v1/blobs/{digest}", tag = "blobs", params(DigestPath),
    request_body(content = Blob, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "The blob is stored", body = StoredBlob),
        (status = 411, response = LengthRequired),
        (status = 413, response = TooLarge),
        (status = 507, response = InsufficientStorage),
    ))]
pub async fn put(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(digest): PathText,
    request: Request,
) -> Result<Response, ApiError> {
    let size = declared_size(request.headers())?;
    let data = chunks(request.into_body());
    let stored = ops::blobs::put(&api.context, &caller, &digest, size, data).await?;
    Ok(reply::ok(&StoredBlob {
        digest: stored.digest,
        size: stored.size,
    }))
}

/// Whether the controller has a blob, and its size.
#[utoipa::path(head, path = "/api/v1/blobs/{digest}", tag = "blobs", params(DigestPath),
    responses(
        (status = 200, description = "The blob is stored",
            headers(("Content-Length" = u64, description = "Its size in bytes"))),
        (status = 404, description = "The blob is not stored (no body)"),
    ))]
pub async fn stat(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(digest): PathText,
) -> Result<Response, ApiError> {
    let size = ops::blobs::stat(&api.context, &caller, &digest)?.ok_or_else(|| {
        Error::new(
            Code::BlobNotFound,
            format!(
                "the blob store has no {}",
                berth_shared::text::clip(&digest, 80)
            ),
        )
    })?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(response)
}
