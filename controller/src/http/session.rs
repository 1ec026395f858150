//! Web sign-in over the API: `POST /api/v1/session` (name and password)
//! starts a session and sets its cookie, `GET /api/v1/session` tells a
//! signed-in page who it is and its CSRF token, `DELETE /api/v1/session`
//! signs out. The work is in `ops::sessions`; this only speaks HTTP.
//!
//! The cookie is `HttpOnly` (no script reads it), `Secure` (browsers send
//! it over HTTPS, and to `localhost` over plain HTTP), `SameSite=Strict`
//! (no other site's page makes a browser send it) and expires with its
//! session.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_shared::record::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::Api;
use super::auth::{ClientAddress, SESSION_COOKIE, SessionAuthed};
use super::decode::JsonBody;
use super::error::ApiError;
use super::openapi::responses::{
    BadRequest, Forbidden, Internal, TooManyRequests, Unauthorized, Unavailable,
};
use super::reply;
use crate::ops;
use crate::ops::sessions::{Login, SessionInfo, Started};

type Reply = Result<Response, ApiError>;

/// The session a page may know (never the cookie's value).
#[derive(Serialize, ToSchema)]
pub struct SessionReply {
    /// The signed-in user.
    pub user: String,
    /// Its role now: viewer, operator or admin.
    pub role: String,
    /// Send it back as `X-CSRF-Token` with every change made with the
    /// session cookie.
    pub csrf_token: String,
    /// When the session ends (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

fn reply_of(session: &SessionInfo) -> SessionReply {
    SessionReply {
        user: session.user.clone(),
        role: session.role.as_str().to_string(),
        csrf_token: session.csrf_token.clone(),
        expires_at: session.expires_at,
    }
}

/// The `Set-Cookie` value that hands `cookie` to the browser for `max_age`
/// seconds (0 removes it).
pub fn cookie_header(cookie: &str, max_age: u64) -> HeaderValue {
    let text = format!(
        "{SESSION_COOKIE}={cookie}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    );
    // The value is `bts_`, letters, digits, `-` and `_`: always a header.
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("berth_session=; Max-Age=0"))
}

/// A session just started, as a response: its cookie and what a page may
/// know of it.
pub fn started(started: &Started, status: StatusCode) -> Response {
    with_cookie(reply::json(status, &reply_of(&started.session)), started)
}

/// `response` handing a just-started session's cookie to the browser, for
/// as long as the session lasts.
pub fn with_cookie(mut response: Response, started: &Started) -> Response {
    let now = berth_shared::record::Timestamp::now();
    let left_ms = started.session.expires_at.0 - now.0;
    let max_age = u64::try_from((left_ms + 999) / 1000).unwrap_or(0);
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, cookie_header(&started.cookie, max_age));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Signs in with a web password: the session cookie is set, and the
/// answer carries the CSRF token changes made with it must send.
#[utoipa::path(post, path = "/api/v1/session", tag = "people", security(()),
    request_body(content = super::openapi::requests::SignIn, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in; the cookie `berth_session` is set (HttpOnly, Secure, SameSite=Strict)", body = SessionReply,
            headers(("Set-Cookie" = String, description = "berth_session=...; Path=/; Max-Age=...; HttpOnly; Secure; SameSite=Strict"))),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ))]
pub async fn login(
    State(api): State<Arc<Api>>,
    ClientAddress(address): ClientAddress,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let name = body.required_string("name")?;
    let password = body.required_string("password")?;
    body.finish()?;
    let login = Login {
        name,
        password,
        address,
    };
    let session = ops::sessions::login(&api.context, login).await?;
    Ok(started(&session, StatusCode::OK))
}

/// The signed-in user, its role, the session's CSRF token and its end;
/// only with the session cookie.
#[utoipa::path(get, path = "/api/v1/session", tag = "people", security(("session" = [])),
    responses(
        (status = 200, description = "The session", body = SessionReply),
        (status = 400, response = BadRequest),
    ))]
pub async fn current(SessionAuthed(_, session): SessionAuthed) -> Reply {
    let mut response = reply::ok(&reply_of(&session));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Signs out: the session ends and the cookie is removed. Needs the
/// session's `X-CSRF-Token`.
#[utoipa::path(delete, path = "/api/v1/session", tag = "people", security(("session" = [])),
    responses(
        (status = 204, description = "Signed out",
            headers(("Set-Cookie" = String, description = "berth_session=; Max-Age=0"))),
        (status = 400, response = BadRequest),
    ))]
pub async fn logout(State(api): State<Arc<Api>>, SessionAuthed(caller, _): SessionAuthed) -> Reply {
    ops::sessions::logout(&api.context, &caller).await?;
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0));
    Ok(response)
}
