//! Reading requests: a JSON body (at most [`MAX_JSON_BYTES`], an object
//! whose fields are taken one by one so a refusal names the field, and
//! whose unknown fields are refused), and the path's id or name. Every
//! refusal is an [`ApiError`] with a code, never a panic.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use berth_shared::id::DeploymentId;
use berth_shared::text::clip;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::ops::{self, Code, Error};

/// Largest JSON request body.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// The fields of a JSON object body, taken one at a time.
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
}

fn field_error(name: &str, expected: &str, got: &Value) -> Error {
    let shown = clip(&got.to_string(), 60);
    Error::invalid(format!("field `{name}`: expected {expected}, got {shown}"))
}

impl Fields {
    /// Parses a body: empty means `{}`; anything else must be one object.
    pub fn parse(bytes: &[u8]) -> Result<Fields, Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Fields { map }),
            // The body is not repeated: it may hold a secret's value.
            Ok(other) => Err(Error::invalid(format!(
                "the body must be a JSON object, not {}",
                json_kind(&other)
            ))),
            Err(err) => Err(Error::invalid(format!("the body is not valid JSON: {err}"))),
        }
    }

    /// A string field; absent or `null` is `None`.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, Error> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(field_error(name, "a string", &other)),
        }
    }

    /// A string field that must be there.
    pub fn required_string(&mut self, name: &str) -> Result<String, Error> {
        self.string(name)?
            .ok_or_else(|| Error::invalid(format!("field `{name}` is missing")))
    }

    /// A string field that must be there and whose content a refusal
    /// never repeats (a secret's value): a field of another type is
    /// refused naming only its type.
    pub fn required_secret(&mut self, name: &str) -> Result<Zeroizing<String>, Error> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Err(Error::invalid(format!("field `{name}` is missing"))),
            Some(Value::String(text)) => Ok(Zeroizing::new(text)),
            Some(other) => Err(Error::invalid(format!(
                "field `{name}`: expected a string, got {}",
                json_kind(&other)
            ))),
        }
    }

    /// A whole number field (not negative); absent or `null` is `None`.
    pub fn u64(&mut self, name: &str) -> Result<Option<u64>, Error> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) if number.as_u64().is_some() => Ok(number.as_u64()),
            Some(other) => Err(field_error(name, "a whole number of at least 0", &other)),
        }
    }

    /// A true/false field; absent or `null` is `false`.
    pub fn flag(&mut self, name: &str) -> Result<bool, Error> {
        Ok(self.optional_flag(name)?.unwrap_or(false))
    }

    /// A true/false field that may be left out (`None`).
    pub fn optional_flag(&mut self, name: &str) -> Result<Option<bool>, Error> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(value)),
            Some(other) => Err(field_error(name, "true or false", &other)),
        }
    }

    /// An object of string values; absent or `null` is empty.
    pub fn string_map(
        &mut self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(Default::default()),
            Some(Value::Object(entries)) => entries
                .into_iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key, text)),
                    // Numbers and flags are kept as their JSON text.
                    Value::Number(_) | Value::Bool(_) => Ok((key, value.to_string())),
                    other => Err(field_error(name, "an object of strings", &other)),
                })
                .collect(),
            Some(other) => Err(field_error(name, "an object of strings", &other)),
        }
    }

    /// An array of strings; absent or `null` is empty.
    pub fn string_list(&mut self, name: &str) -> Result<Vec<String>, Error> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    other => Err(field_error(name, "an array of strings", &other)),
                })
                .collect(),
            Some(other) => Err(field_error(name, "an array of strings", &other)),
        }
    }

    /// Refuses fields no one took (a typo would otherwise pass unnoticed).
    pub fn finish(self) -> Result<(), Error> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => Err(Error::invalid(format!(
                "unknown field `{}`; docs/http-api.md lists each route's fields",
                clip(name, 60)
            ))),
        }
    }
}

/// What kind of JSON value `value` is, for a refusal that must not show it.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object body; no body at all reads as `{}`.
pub struct JsonBody(pub Fields);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<JsonBody, ApiError> {
        let headers = request.headers();
        if let Some(kind) = headers.get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = kind.split(';').next().unwrap_or_default().trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(Error::new(
                    Code::RequestUnsupportedMediaType,
                    format!(
                        "the body is `{}`; send JSON with `Content-Type: application/json` (curl --json)",
                        clip(essence, 60)
                    ),
                )
                .into());
            }
        }
        let bytes = read_limited(request.into_body(), MAX_JSON_BYTES).await?;
        Ok(JsonBody(Fields::parse(&bytes)?))
    }
}

/// The whole body, refused past `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, Error> {
    let too_large = || {
        Error::new(
            Code::RequestTooLarge,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(Error::invalid(format!("the body broke off: {err}"))),
    }
}

/// The one path parameter of a route, as text (at most 256 characters).
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathText, ApiError> {
        let PathTexts(texts) = PathTexts::from_request_parts(parts, state).await?;
        match <[String; 1]>::try_from(texts) {
            Ok([text]) => Ok(PathText(text)),
            Err(_) => Err(Error::invalid("the path names more or fewer than one thing").into()),
        }
    }
}

/// The two path parameters of a route (an app and one of its
/// environments), as text: [`PathTexts`] with exactly two.
pub struct PathPair(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathPair, ApiError> {
        let PathTexts(texts) = PathTexts::from_request_parts(parts, state).await?;
        match <[String; 2]>::try_from(texts) {
            Ok([first, second]) => Ok(PathPair(first, second)),
            Err(_) => Err(Error::invalid("the path names more or fewer than two things").into()),
        }
    }
}

/// Every path parameter of a route that has several, as text in the
/// route's order (each at most 256 characters).
pub struct PathTexts(pub Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for PathTexts {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathTexts, ApiError> {
        let Path(texts) = Path::<Vec<String>>::from_request_parts(parts, state)
            .await
            .map_err(|err| Error::invalid(format!("the path is malformed: {err}")))?;
        if texts.iter().any(|text| text.chars().count() > 256) {
            return Err(Error::invalid("a path segment is longer than 256 characters").into());
        }
        Ok(PathTexts(texts))
    }
}

/// The deployment id a route's path names; noted in the request's span.
pub struct PathId(pub DeploymentId);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathId, ApiError> {
        let PathText(text) = PathText::from_request_parts(parts, state).await?;
        let id = ops::parse_deployment_id(&clip(&text, 40))?;
        tracing::Span::current().record("deployment_id", tracing::field::display(id));
        Ok(PathId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Fields {
        Fields::parse(text.as_bytes()).expect("an object")
    }

    #[test]
    fn fields_are_taken_by_name_and_refusals_name_them() {
        let mut body = fields(r#"{"manifest": "app = 1", "size": 12, "force": true, "v": null}"#);
        assert_eq!(body.required_string("manifest").as_deref(), Ok("app = 1"));
        assert_eq!(body.u64("size"), Ok(Some(12)));
        assert_eq!(body.flag("force"), Ok(true));
        assert_eq!(body.string("v"), Ok(None));
        assert_eq!(body.flag("queue"), Ok(false));
        assert!(body.finish().is_ok());
        let mut body = fields(r#"{"unset": ["A", "B"], "none": null}"#);
        assert_eq!(body.string_list("unset"), Ok(vec!["A".into(), "B".into()]));
        assert_eq!(body.string_list("none"), Ok(Vec::new()));

        let check = |text: &str, take: fn(&mut Fields) -> Result<(), Error>, says: &str| {
            let mut body = fields(text);
            let err = take(&mut body).expect_err(text);
            assert_eq!(err.code, Code::RequestInvalid);
            assert!(err.message.contains(says), "{text}: {}", err.message);
        };
        check(
            r#"{"size": -1}"#,
            |b| b.u64("size").map(|_| ()),
            "field `size`",
        );
        check(
            r#"{"size": 1.5}"#,
            |b| b.u64("size").map(|_| ()),
            "field `size`",
        );
        check(
            r#"{"force": "yes"}"#,
            |b| b.flag("force").map(|_| ()),
            "field `force`",
        );
        check(r#"{"m": 3}"#, |b| b.string("m").map(|_| ()), "field `m`");
        check(
            r#"{"unset": ["A", 1]}"#,
            |b| b.string_list("unset").map(|_| ()),
            "field `unset`: expected an array of strings",
        );
        check(
            r#"{"unset": "A"}"#,
            |b| b.string_list("unset").map(|_| ()),
            "field `unset`",
        );
        check(
            "{}",
            |b| b.required_string("manifest").map(|_| ()),
            "`manifest` is missing",
        );
        check(
            r#"{"enviroment": "x"}"#,
            |b| std::mem::take(b).finish(),
            "unknown field `enviroment`",
        );
    }

    #[test]
    fn a_secret_field_or_body_is_never_repeated_in_a_refusal() {
        let mut body = fields(r#"{"value": "hunter2"}"#);
        assert_eq!(
            body.required_secret("value").map(|value| value.to_string()),
            Ok("hunter2".into())
        );
        for (text, says) in [
            (r#"{"value": 4711}"#, "got a number"),
            (r#"{"value": ["hunter2"]}"#, "got an array"),
            ("{}", "`value` is missing"),
        ] {
            let err = fields(text).required_secret("value").expect_err("refused");
            assert!(err.message.contains(says), "{text}: {}", err.message);
            assert!(!err.message.contains("4711") && !err.message.contains("hunter2"));
        }
        let err = Fields::parse(br#""hunter2""#).expect_err("not an object");
        assert_eq!(err.message, "the body must be a JSON object, not a string");
    }

    #[test]
    fn bodies_that_are_not_one_object_are_refused() {
        assert!(Fields::parse(b"").is_ok());
        assert!(Fields::parse(b"  \n").is_ok());
        for junk in [
            "[1]",
            "\"x\"",
            "{",
            "{\"a\":",
            "nul",
            "{\"a\":1}{}",
            "\u{0}",
        ] {
            let err = Fields::parse(junk.as_bytes()).expect_err(junk);
            assert_eq!(err.code, Code::RequestInvalid, "{junk}");
        }
    }
}
