//! The error responses of the OpenAPI document, one component per status,
//! each with the one error shape of `http/error.rs` ([`ErrorReply`]) and
//! the headers that status carries. Routes name the ones particular to
//! them (`(status = 404, response = NotFound)`); [`common`] lists those
//! every route with a credential may answer, added to each by
//! `openapi::CommonErrors`.

use std::borrow::Cow;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, RefOr};
use utoipa::{PartialSchema, ToResponse, ToSchema};

use super::super::error::ErrorReply;
use crate::ops::Code;

/// The machine code of an error: one of the codes in `docs/errors.md`.
pub struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some(
                "The stable machine code, `thing/reason` (docs/errors.md); match on it, never on the message.",
            ))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// An error response: the error JSON, and `headers` (name, description).
fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name(
            ErrorReply::name(),
        )))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    for (name, about) in headers {
        let header = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(*about))
            .build();
        response = response.header(*name, header);
    }
    RefOr::T(response.build())
}

macro_rules! error_responses {
    ($($name:ident: $description:literal $(, $header:literal = $about:literal)*;)*) => {$(
        #[doc = $description]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response($description, &[$(($header, $about)),*]))
            }
        }
    )*};
}

error_responses! {
    BadRequest: "The request is malformed (`request/invalid` names the field or parameter), or refused as invalid (`deployment/invalid-manifest`, `blob/invalid`, `app/ambiguous-environment`, ...).";
    Unauthorized: "No credential, or one the controller does not know (`auth/unauthenticated`).",
        "WWW-Authenticate" = "`Bearer realm=\"berth\"`";
    Forbidden: "The user is disabled (`auth/disabled`) or its role is too low (`auth/permission-denied`); for an approval, the caller asked for the change itself (`approval/self`) or may not approve it (`approval/forbidden`); a change in a protected environment that cannot wait for one (`approval/required`).";
    NotFound: "The thing the path names does not exist (`deployment/not-found`, `app/not-found`, `agent/not-found`, `host/not-found`, `blob/not-found`, `request/not-found`).";
    Conflict: "The state does not allow it: a conflict (`deployment/already-running`, `deployment/invalid-state`, `approval/not-pending`, ...) or a failed precondition (`agent/offline` with `details.offline_agents`, `deployment/blob-missing`, `target/no-match`, ...).";
    LengthRequired: "A blob upload without `Content-Length` (`request/length-required`).";
    TooLarge: "The body is larger than the controller accepts (`request/too-large`, `blob/too-large`).";
    UnsupportedMediaType: "A body sent with a `Content-Type` other than JSON (`request/unsupported-media-type`).";
    TooManyRequests: "A rate limit (`deployment/rate-limited`, with `details.retry_after_secs` and `Retry-After`) or too many open streams for the credential (`request/too-many-streams`).",
        "Retry-After" = "Seconds to wait, with a rate limit";
    Internal: "A bug (`internal`); see the controller's log.";
    Unavailable: "The store failed or is reopening, the controller is stopping, or the request took too long (`store/failed`, `store/reopening`, `controller/shutting-down`, `request/timed-out`); try again.";
    InsufficientStorage: "The disk of the store or the blob store is full (`store/unwritable`, `blob/unwritable`).";
}

/// The component name of a response.
pub fn name_of<R: for<'r> ToResponse<'r>>() -> &'static str {
    R::response().0
}

/// The statuses every route with a credential may answer, and the
/// components that describe them.
pub fn common() -> [(&'static str, &'static str); 4] {
    [
        ("401", name_of::<Unauthorized>()),
        ("403", name_of::<Forbidden>()),
        ("500", name_of::<Internal>()),
        ("503", name_of::<Unavailable>()),
    ]
}
