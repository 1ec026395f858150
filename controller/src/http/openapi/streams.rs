//! The events of the API's event streams (`text/event-stream`), as
//! schemas. Before OpenAPI 3.2 (`itemSchema`), the schema of an event
//! stream describes one event: its `event` name, its `data` (one line of
//! JSON, whose type the description names) and, for log lines, its `id`.
//! `http/sse.rs` writes these frames; comments (`: keep-alive`) are not
//! events.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// One kind of event: its name, what its data holds, and whether it
/// carries an `id`.
struct Kind {
    name: &'static str,
    data: &'static str,
    has_id: bool,
}

const END: Kind = Kind {
    name: "end",
    data: "`{}`: the deployment is quiet (every task final, status settled); the stream closes.",
    has_id: false,
};

const ERROR: Kind = Kind {
    name: "error",
    data: "An `ErrorReply`; the stream closes.",
    has_id: false,
};

fn event(kind: &Kind) -> ObjectBuilder {
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([kind.name]));
    let data = ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/json")
        .description(Some(kind.data));
    let mut event = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("event", name)
        .required("event")
        .property("data", data)
        .required("data");
    if kind.has_id {
        let id = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A cursor: `<task_id>:<seq>` for every task that has sent a line on this stream, joined by commas; send it back as `Last-Event-ID` to resume after this line.",
            ));
        event = event.property("id", id).required("id");
    }
    event
}

fn one_of(kinds: &[Kind], description: &str) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(description));
    for kind in kinds {
        one_of = one_of.item(event(kind));
    }
    one_of.into()
}

/// An event of a deployment's or of every deployment's event stream.
pub struct DeploymentEvent;

impl PartialSchema for DeploymentEvent {
    fn schema() -> RefOr<Schema> {
        let deployment = Kind {
            name: "deployment",
            data: "A `Deployment`: the record of `GET /api/v1/deployments/{id}`.",
            has_id: false,
        };
        one_of(
            &[deployment, END, ERROR],
            "One event of a stream of deployment snapshots.",
        )
    }
}

impl ToSchema for DeploymentEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DeploymentEvent")
    }
}

/// An event of a logs stream.
pub struct LogEvent;

impl PartialSchema for LogEvent {
    fn schema() -> RefOr<Schema> {
        let line = Kind {
            name: "line",
            data: "A `LogEntry`.",
            has_id: true,
        };
        let expired = Kind {
            name: "expired",
            data: "An `Expired` notice, before any line: lines the filters could have matched were deleted by the retention sweeper.",
            has_id: false,
        };
        one_of(&[line, expired, END, ERROR], "One event of a logs stream.")
    }
}

impl ToSchema for LogEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LogEvent")
    }
}
