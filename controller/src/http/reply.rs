//! Responses: a value as a JSON body with its status. Records are written
//! as their serde form, the same JSON `berth -o json` prints.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use tracing::error;

/// `value` as the JSON body of a `status` response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => {
            // Records serialize infallibly; this is a bug, said as JSON.
            error!(error = %err, "could not encode a reply");
            let mut response = Response::new(Body::from(
                "{\"error\":{\"code\":\"internal\",\"message\":\"the reply could not be encoded; see the controller's log\"}}\n",
            ));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

/// `value` as a `200 OK` JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Response {
    json(StatusCode::OK, value)
}
