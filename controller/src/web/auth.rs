//! Who looks at a page: the browser's session cookie, checked on every
//! request like every other credential (`ops::sessions::by_session`). A
//! browser without a live session is sent to the sign-in page, which
//! brings it back where it was going.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::http::Api;
use crate::http::auth::session_cookie;
use crate::ops::Caller;
use crate::ops::sessions::{self, SessionInfo};

/// A signed-in browser.
pub struct Browser {
    pub caller: Caller,
    pub session: SessionInfo,
}

/// A redirect to the sign-in page, coming back to `next` afterwards.
pub fn to_sign_in(next: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let location = format!("/login?next={next}");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl FromRequestParts<Arc<Api>> for Browser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Browser, Response> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_string();
        let cookie = session_cookie(parts).ok_or_else(|| to_sign_in(&next))?;
        let (caller, session) =
            sessions::by_session(&api.context.store, &cookie).map_err(|_| to_sign_in(&next))?;
        tracing::Span::current().record("principal", tracing::field::display(caller.who()));
        Ok(Browser { caller, session })
    }
}
