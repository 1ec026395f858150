//! The page a setup link opens (`GET /setup?token=...`): a form to choose
//! a web password, posted back to `POST /setup`, which sets it, uses the
//! link up and signs the browser in (`ops::setup_links`).
//!
//! The page is plain HTML with no script; its one style block is allowed
//! by hash in a strict Content-Security-Policy. The link's token is the
//! form's only authority (no one else knows it), and the page is never
//! cached nor named in a `Referer`. Every value is HTML-escaped.

use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::Api;
use super::auth::ClientAddress;
use super::query::Params;
use super::session::with_cookie;
use crate::ops::{self, Error};

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}\
label{display:block;margin-top:1rem;font-weight:600}\
input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box;border:1px solid #767676;border-radius:4px}\
button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;background:#0b5cad;color:#fff;border:0;border-radius:4px}\
.error{color:#a4000f;font-weight:600}a{color:#0b5cad}";

/// Longest form body accepted.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// `STYLE`'s hash for the Content-Security-Policy.
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · berth</title><style>{STYLE}</style></head>\
<body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title),
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let set = |name, value: &'static str| (name, HeaderValue::from_static(value));
    for (name, value) in [
        set(header::CONTENT_TYPE, "text/html; charset=utf-8"),
        set(header::CACHE_CONTROL, "no-store"),
        set(header::REFERRER_POLICY, "no-referrer"),
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        set(header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy()),
    );
    response
}

fn refusal(err: &Error) -> Response {
    let status = super::error::status_of(err.code);
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p><p>Error code: <code>{}</code></p>",
        escape(&err.message),
        escape(err.code.as_str())
    );
    html_page(status, "This link cannot be used", &body)
}

fn form(user: &str, token: &str, problem: Option<&str>) -> String {
    let problem = problem.map_or(String::new(), |text| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text))
    });
    format!(
        "<p>Choose the password <strong>{user}</strong> signs in to berth with: at least 12 characters.</p>{problem}\
<form method=\"post\" action=\"/setup\">\
<input type=\"hidden\" name=\"token\" value=\"{token}\">\
<input type=\"hidden\" name=\"user\" value=\"{user}\" autocomplete=\"username\">\
<label for=\"password\">New password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" required>\
<label for=\"confirm\">The same password again</label>\
<input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" required>\
<button type=\"submit\">Set password and sign in</button></form>",
        user = escape(user),
        token = escape(token),
    )
}

/// `GET /setup?token=...`: the form, or why the link cannot be used.
pub async fn page(
    State(api): State<Arc<Api>>,
    ClientAddress(address): ClientAddress,
    mut params: Params,
) -> Response {
    let token = params.one("token").ok().flatten().unwrap_or_default();
    match ops::setup_links::peek(&api.context, &token, address) {
        Ok(user) => html_page(
            StatusCode::OK,
            "Set your password",
            &form(&user, &token, None),
        ),
        Err(err) => refusal(&err),
    }
}

/// `POST /setup` (a form): sets the password and signs the browser in.
pub async fn submit(
    State(api): State<Arc<Api>>,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Response {
    if body.len() > MAX_FORM_BYTES {
        return refusal(&Error::new(
            ops::Code::RequestTooLarge,
            "the form is larger than 8 KiB",
        ));
    }
    let mut fields = match Params::parse(&String::from_utf8_lossy(&body)) {
        Ok(fields) => fields,
        Err(err) => return refusal(&err),
    };
    let mut field = |name: &str| fields.one(name).ok().flatten().unwrap_or_default();
    let (token, password, confirm) = (field("token"), field("password"), field("confirm"));
    if password != confirm {
        return match ops::setup_links::peek(&api.context, &token, address) {
            Ok(user) => html_page(
                StatusCode::BAD_REQUEST,
                "Set your password",
                &form(
                    &user,
                    &token,
                    Some("The two passwords differ; type the same one twice."),
                ),
            ),
            Err(err) => refusal(&err),
        };
    }
    match ops::setup_links::redeem(&api.context, &token, &password, address).await {
        Ok(started) => {
            let body = format!(
                "<p>The password of <strong>{}</strong> is set, and this browser is signed in.</p><p><a href=\"/\">Open berth</a></p>",
                escape(&started.session.user)
            );
            with_cookie(html_page(StatusCode::OK, "Password set", &body), &started)
        }
        Err(err) if err.code == ops::Code::RequestInvalid => {
            match ops::setup_links::peek(&api.context, &token, address) {
                Ok(user) => html_page(
                    StatusCode::BAD_REQUEST,
                    "Set your password",
                    &form(&user, &token, Some(&err.message)),
                ),
                Err(err) => refusal(&err),
            }
        }
        Err(err) => refusal(&err),
    }
}
