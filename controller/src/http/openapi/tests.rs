//! The checked-in document is the generated one, the document and the
//! router agree on the routes, and the decoders take what it names.

use std::path::PathBuf;

use berth_shared::id::DeploymentId;
use serde_json::{Value, json};

use super::super::decode::Fields;
use super::super::query::Params;
use super::super::{codec, environments};
use super::*;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// `docs/openapi.json` is what the code generates; refresh it with
/// `BERTH_UPDATE_OPENAPI=1 cargo test -p berth-controller --lib openapi`.
#[test]
fn docs_openapi_json_is_the_generated_document() {
    let generated = document();
    let path = checked_in_path();
    if std::env::var_os("BERTH_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not the document the code generates; refresh it with \
         `BERTH_UPDATE_OPENAPI=1 cargo test -p berth-controller --lib openapi` and review the diff"
    );
}

/// Every `.route(...)` of `http::router` under `/api/v1` is a path of the
/// document (pages, like the setup link's, are HTML for people).
#[test]
fn every_route_of_the_router_is_documented() {
    let router = include_str!("../../http.rs");
    let document: Value = serde_json::from_str(&document()).expect("JSON");
    let paths = document["paths"].as_object().expect("paths");
    let routes: Vec<&str> = router
        .split(".route(\n")
        .skip(1)
        .chain(router.split(".route(").skip(1))
        .filter_map(|rest| rest.trim_start().strip_prefix('"'))
        .filter_map(|rest| rest.split('"').next())
        .filter(|route| route.starts_with("/api/v1/"))
        .collect();
    assert!(routes.len() >= 25, "found only {routes:?} in http.rs");
    for route in routes {
        assert!(paths.contains_key(route), "{route} is not in the document");
    }
}

/// A value the schema allows: an enum's first, a ref's, a pattern's id.
fn sample(document: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return sample(document, &document["components"]["schemas"][name]);
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    if let Some(items) = schema["oneOf"].as_array() {
        let item = items.iter().find(|item| item["type"] != "null");
        return sample(document, item.unwrap_or(&Value::Null));
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|kind| *kind != "null").cloned(),
        kind => Some(kind.clone()),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("string") if schema["pattern"].is_string() => json!(DeploymentId::new().to_string()),
        Some("string") if schema["format"] == "date-time" => json!("2026-05-01T12:00:00Z"),
        Some("string") => json!("1000"),
        Some("integer") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([sample(document, &schema["items"])]),
        Some("object") => json!({"key": "value"}),
        other => panic!("no sample for a schema of type {other:?}: {schema}"),
    }
}

/// Every field the document gives a body, filled in, as its decoder takes it.
fn full_body(document: &Value, schema_name: &str) -> Fields {
    let properties = document["components"]["schemas"][schema_name]["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let body: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.clone(), sample(document, schema)))
        .collect();
    Fields::parse(Value::Object(body).to_string().as_bytes()).expect("an object")
}

/// Every query parameter the document gives an operation, filled in.
fn full_query(document: &Value, path: &str) -> Params {
    let parameters = document["paths"][path]["get"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for parameter in parameters
        .iter()
        .filter(|parameter| parameter["in"] == "query")
    {
        let value = match sample(document, &parameter["schema"]) {
            Value::Array(items) => items.first().cloned().unwrap_or_default(),
            value => value,
        };
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        query.append_pair(parameter["name"].as_str().unwrap_or_default(), &text);
    }
    Params::parse(&query.finish()).expect("a query")
}

/// A body's decoder, its result dropped.
type Decode = fn(Fields) -> Result<(), crate::ops::Error>;

/// The decoders take every body field and query parameter the document
/// names, so a request written from the document is not refused as
/// malformed (the decoders refuse names the document does not give).
#[test]
fn the_decoders_take_everything_the_document_names() {
    let document: Value = serde_json::from_str(&document()).expect("JSON");
    let bodies: [(&str, Decode); 10] = [
        ("NewDeploymentBody", |body| {
            codec::new_deployment(body).map(drop)
        }),
        ("ExternalEventBody", |body| {
            codec::external_event(body).map(drop)
        }),
        ("ClaimBody", |body| codec::claim(body).map(drop)),
        ("AppBody", |body| {
            codec::app_ref("web".into(), Params::default(), body).map(drop)
        }),
        ("RollbackBody", |body| {
            codec::rollback("web".into(), Params::default(), body).map(drop)
        }),
        ("RatingBody", |body| codec::rating(body).map(drop)),
        ("NewEnvironmentBody", |body| {
            environments::new_environment("web".into(), body).map(drop)
        }),
        ("EnvironmentChangeBody", |body| {
            environments::environment_change(body).map(drop)
        }),
        ("SecretBody", |body| {
            super::super::secrets::value(body).map(drop)
        }),
        ("EmptyBody", Fields::finish),
    ];
    for (name, decode) in bodies {
        let decoded = decode(full_body(&document, name));
        assert!(decoded.is_ok(), "{name}: {decoded:?}");
    }
    let list = codec::list_request(full_query(&document, "/api/v1/deployments"));
    assert!(list.is_ok(), "{list:?}");
    let logs = full_query(&document, "/api/v1/deployments/{id}/logs");
    let logs = super::super::logs::logs_request(DeploymentId::new(), logs, &Default::default());
    assert!(logs.is_ok(), "{:?}", logs.err());
}
