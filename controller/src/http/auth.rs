//! Who is calling over HTTP, on every request, so a revoked token, an
//! ended session or a disabled user is refused from the next request. A
//! request may present, in this order of precedence:
//! - `Authorization: Bearer <API token>` (`ops::auth::by_api_token`);
//! - on HTTPS, the client certificate of a user's CLI bundle
//!   (`ops::auth::by_certificate`, as the gRPC API does);
//! - the web session cookie [`SESSION_COOKIE`] (`ops::sessions`). A change
//!   (any method but GET and HEAD) sent with the cookie must also carry
//!   the session's `X-CSRF-Token`, or it is refused with `auth/csrf-failed`.
//!
//! A missing or unknown credential is 401 with `WWW-Authenticate: Bearer`.
//! [`Streaming`] is a caller allowed one more event stream, whose
//! credential is checked again while the stream lasts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::Api;
use super::error::ApiError;
use super::sse::StreamPermit;
use crate::ops::sessions::SessionInfo;
use crate::ops::{self, Caller, Code, Error};
use crate::store::PrincipalKind;

/// The name of the web session cookie.
pub const SESSION_COOKIE: &str = "berth_session";
/// The header a change sent with the session cookie carries its CSRF
/// token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the connection a request came on knows of its peer; put on every
/// request by the accept loop (`serve.rs`).
#[derive(Clone, Debug)]
pub struct Peer {
    pub address: SocketAddr,
    /// The peer is a trusted proxy (`serve --trusted-proxy`): the client
    /// is the last address its `X-Forwarded-For` names.
    pub proxy: bool,
    /// The serial of a client certificate berth's CA issued, on HTTPS.
    pub certificate_serial: Option<String>,
}

/// The client's address: the peer's, or the one a trusted proxy put last
/// in `X-Forwarded-For`; unspecified when the request did not come
/// through the accept loop (the router driven in process by unit tests).
pub fn peer_address(parts: &Parts) -> IpAddr {
    let Some(peer) = parts.extensions.get::<Peer>() else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let forwarded = || {
        let last = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()?;
        last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
    };
    match peer.proxy {
        true => forwarded().unwrap_or(peer.address.ip()),
        false => peer.address.ip(),
    }
}

/// The address a request came from.
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddress, ApiError> {
        Ok(ClientAddress(peer_address(parts)))
    }
}

/// The caller a request authenticated as.
pub struct Authed(pub Caller);

/// A caller signed in with the session cookie, and its session.
pub struct SessionAuthed(pub Caller, pub SessionInfo);

/// A caller with a place for one more event stream.
pub struct Streaming(pub Caller, pub StreamPermit);

/// What a request may present to say who it is.
enum Credential {
    /// An API token (`bta_...`).
    Bearer(String),
    /// A user's client certificate, by serial.
    Certificate(String),
    /// A web session cookie (`bts_...`).
    Session(String),
}

impl Credential {
    /// The caller this credential stands for now, and its session if it
    /// is one.
    fn caller(&self, api: &Api) -> Result<(Caller, Option<SessionInfo>), Error> {
        let store = &api.context.store;
        match self {
            Credential::Bearer(token) => Ok((ops::auth::by_api_token(store, token)?, None)),
            Credential::Certificate(serial) => Ok((
                ops::auth::by_certificate(store, serial, PrincipalKind::User)?,
                None,
            )),
            Credential::Session(cookie) => {
                let (caller, session) = ops::sessions::by_session(store, cookie)?;
                Ok((caller, Some(session)))
            }
        }
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::new(Code::AuthUnauthenticated, message)
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// The credential a request presents.
fn credential(parts: &Parts) -> Result<Credential, Error> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| unauthenticated("the Authorization header is not text"))?;
        return match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Credential::Bearer(token.trim().to_string()))
            }
            _ => Err(unauthenticated(
                "the Authorization header must be `Bearer <token>` with a token from `berth api-tokens create`",
            )),
        };
    }
    let certified = parts
        .extensions
        .get::<Peer>()
        .and_then(|peer| peer.certificate_serial.clone());
    if let Some(serial) = certified {
        return Ok(Credential::Certificate(serial));
    }
    if let Some(cookie) = session_cookie(parts) {
        return Ok(Credential::Session(cookie));
    }
    Err(unauthenticated(
        "no credential; send `Authorization: Bearer <token>` with a token from `berth api-tokens create`, or sign in (POST /api/v1/session)",
    ))
}

/// Authenticates a request; a change made with a session must carry its
/// CSRF token.
fn authenticate(
    parts: &Parts,
    api: &Api,
) -> Result<(Credential, Caller, Option<SessionInfo>), Error> {
    let credential = credential(parts)?;
    let (caller, session) = credential.caller(api)?;
    if let Some(session) = &session
        && !matches!(parts.method, Method::GET | Method::HEAD)
    {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok());
        ops::sessions::check_csrf(session, presented)?;
    }
    tracing::Span::current().record("principal", tracing::field::display(caller.who()));
    Ok((credential, caller, session))
}

impl FromRequestParts<Arc<Api>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Authed, ApiError> {
        let (_, caller, _) = authenticate(parts, api)?;
        Ok(Authed(caller))
    }
}

impl FromRequestParts<Arc<Api>> for SessionAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &Arc<Api>,
    ) -> Result<SessionAuthed, ApiError> {
        match authenticate(parts, api)? {
            (_, caller, Some(session)) => Ok(SessionAuthed(caller, session)),
            _ => Err(ApiError(Error::invalid(
                "this request's credential is not a web session; GET /api/v1/whoami says who it is",
            ))),
        }
    }
}

impl FromRequestParts<Arc<Api>> for Streaming {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Streaming, ApiError> {
        let (credential, caller, _) = authenticate(parts, api)?;
        let held = api.clone();
        let recheck = Box::new(move || credential.caller(&held).map(|_| ()));
        let permit = api.streams.acquire(&caller, recheck)?;
        Ok(Streaming(caller, permit))
    }
}
