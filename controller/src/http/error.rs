//! The single mapping from errors to HTTP responses: the status from the
//! error's [`Kind`] (and, where one kind covers several statuses, from its
//! code), and one JSON shape,
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`, with
//! `details` left out when there is nothing in it. A 401 says
//! `WWW-Authenticate: Bearer`; a rate limit says `Retry-After` in seconds.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tracing::debug;
use utoipa::ToSchema;

use crate::ops::{self, Code, Kind};

/// An operation's error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError(pub ops::Error);

impl From<ops::Error> for ApiError {
    fn from(err: ops::Error) -> ApiError {
        ApiError(err)
    }
}

/// The HTTP status of each error. A failed precondition (agents offline, a
/// blob missing) is 409, like a conflict: 412 is for conditional request
/// headers, which this API does not use; the code tells them apart.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::RequestMethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Code::RequestLengthRequired => StatusCode::LENGTH_REQUIRED,
        Code::RequestUnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::RequestTooLarge | Code::BlobTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Code::StoreUnwritable | Code::BlobUnwritable => StatusCode::INSUFFICIENT_STORAGE,
        code => match code.kind() {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict | Kind::Precondition | Kind::Aborted => StatusCode::CONFLICT,
            // The rest of this kind are rate limits.
            Kind::Exhausted => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::PermissionDenied => StatusCode::FORBIDDEN,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// The JSON body of every error: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorReply {
    pub error: ErrorBody,
}

/// What went wrong: the machine code, a message for people naming the
/// thing, the reason and the fix, and details when there are any.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(value_type = super::openapi::ErrorCode)]
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub details: Option<ErrorDetails>,
}

/// Facts a client can act on; only those that apply are present.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ErrorDetails {
    /// With `agent/offline`: the target's agents that are offline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offline_agents: Vec<String>,
    /// With a rate limit: seconds to wait (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after_secs: Option<u64>,
}

/// The reply to an error.
pub fn reply_of(err: &ops::Error) -> ErrorReply {
    let details = ErrorDetails {
        offline_agents: err.offline_agents.clone(),
        retry_after_secs: err.retry_after.map(|wait| wait.as_secs()),
    };
    let empty = details.offline_agents.is_empty() && details.retry_after_secs.is_none();
    ErrorReply {
        error: ErrorBody {
            code: err.code.as_str(),
            message: err.message.clone(),
            details: (!empty).then_some(details),
        },
    }
}

/// The JSON body of an error, as a value.
pub fn body_of(err: &ops::Error) -> Value {
    serde_json::to_value(reply_of(err)).unwrap_or(Value::Null)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = status_of(err.code);
        debug!(
            code = err.code.as_str(),
            status = status.as_u16(),
            "request refused"
        );
        let mut response = super::reply::json(status, &reply_of(&err));
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth\""),
            );
        }
        if let Some(wait) = err.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn every_exhausted_code_is_a_rate_limit_a_size_or_a_full_disk() {
        for code in Code::ALL
            .iter()
            .filter(|code| code.kind() == Kind::Exhausted)
        {
            let status = status_of(*code);
            let rate_limit =
                code.as_str().contains("rate-limited") || *code == Code::RequestTooManyStreams;
            let expected = if rate_limit {
                StatusCode::TOO_MANY_REQUESTS
            } else if code.as_str().contains("too-large") {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::INSUFFICIENT_STORAGE
            };
            assert_eq!(status, expected, "{}", code.as_str());
        }
    }

    /// The HTTP column of `docs/errors.md` says what this module answers.
    #[test]
    fn docs_errors_md_names_each_code_s_status() {
        let docs = include_str!("../../../docs/errors.md");
        let mut seen = 0;
        for line in docs.lines().filter(|line| line.starts_with("| `")) {
            let cells: Vec<&str> = line.split(" | ").collect();
            let code = cells[0].trim_start_matches("| `").trim_end_matches('`');
            let code = Code::ALL
                .iter()
                .find(|known| known.as_str() == code)
                .unwrap_or_else(|| panic!("{code} is not a code"));
            assert_eq!(cells[3], status_of(*code).as_str(), "{line}");
            seen += 1;
        }
        assert_eq!(seen, Code::ALL.len());
    }

    #[test]
    fn details_carry_offline_agents_and_the_wait_and_are_left_out_when_empty() {
        let plain = body_of(&ops::Error::new(Code::DeploymentNotFound, "gone"));
        assert_eq!(
            plain,
            json!({"error": {"code": "deployment/not-found", "message": "gone"}})
        );
        let mut offline = ops::Error::new(Code::AgentOffline, "web-2 is offline");
        offline.offline_agents = vec!["web-2".into()];
        assert_eq!(
            body_of(&offline)["error"]["details"],
            json!({"offline_agents": ["web-2"]})
        );
        let mut limited = ops::Error::new(Code::DeploymentRateLimited, "slow down");
        limited.retry_after = Some(Duration::from_secs(42));
        let response = ApiError(limited).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let response = ApiError(ops::Error::new(Code::AuthUnauthenticated, "who?")).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
