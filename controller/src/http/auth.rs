//! Who is calling over HTTP: `Authorization: Bearer <API token>` turned
//! into an `ops::Caller` by `ops::auth::by_api_token`, on every request, so
//! a revoked token or a disabled user is refused from the next request.
//! A missing or unknown credential is 401 with `WWW-Authenticate: Bearer`.
//!
//! [`Streaming`] is a caller allowed one more event stream, whose
//! credential is checked again while the stream lasts.
//!
//! [`Credential`] is the seam for the web login: a session cookie becomes a
//! second kind of credential here, and nothing past this module changes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::Api;
use super::error::ApiError;
use super::sse::StreamPermit;
use crate::ops::{self, Caller, Code, Error};

/// The caller a request authenticated as.
pub struct Authed(pub Caller);

/// A caller with a place for one more event stream.
pub struct Streaming(pub Caller, pub StreamPermit);

/// What a request may present to say who it is.
enum Credential {
    /// An API token (`bta_...`).
    Bearer(String),
}

impl Credential {
    /// The caller this credential stands for now.
    fn caller(&self, api: &Api) -> Result<Caller, Error> {
        match self {
            Credential::Bearer(token) => ops::auth::by_api_token(&api.context.store, token),
        }
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::new(Code::AuthUnauthenticated, message)
}

/// The credential a request presents.
fn credential(parts: &Parts) -> Result<Credential, Error> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthenticated(
            "no credential; send `Authorization: Bearer <token>` with a token from `berth api-tokens create`",
        )
    })?;
    let text = value
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not text"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Credential::Bearer(token.trim().to_string()))
        }
        _ => Err(unauthenticated(
            "the Authorization header must be `Bearer <token>` with a token from `berth api-tokens create`",
        )),
    }
}

impl FromRequestParts<Arc<Api>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Authed, ApiError> {
        let caller = credential(parts)?.caller(api)?;
        tracing::Span::current().record("principal", tracing::field::display(caller.who()));
        Ok(Authed(caller))
    }
}

impl FromRequestParts<Arc<Api>> for Streaming {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Streaming, ApiError> {
        let credential = credential(parts)?;
        let caller = credential.caller(api)?;
        tracing::Span::current().record("principal", tracing::field::display(caller.who()));
        let held = api.clone();
        let recheck = Box::new(move || credential.caller(&held).map(|_| ()));
        let permit = api.streams.acquire(&caller, recheck)?;
        Ok(Streaming(caller, permit))
    }
}
