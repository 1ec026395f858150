//! `GET /api/v1/deployments/{id}/logs`: the `berth logs` filters over
//! `ops::follow::logs`. A finished read is one JSON object,
//! `{"expired": {...}, "lines": [...]}`, written as the lines are read so
//! memory stays bounded however long the logs are. With `follow=true` (or
//! `Accept: text/event-stream`) it is an event stream: `event: line` per
//! line, whose `id:` is the stream's [`Cursor`] (so a client reconnecting
//! with `Last-Event-ID` gets no line twice), `event: expired` for the
//! retention notice, and `event: end` once the deployment is quiet.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::record::{LogEntry, Timestamp};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::Api;
use super::auth::Streaming;
use super::decode::PathId;
use super::error::ApiError;
use super::openapi::requests::{DeploymentPath, LogsParams, ResumeHeader};
use super::openapi::responses::{NotFound, TooManyRequests};
use super::openapi::streams::LogEvent;
use super::query::Params;
use super::sse::{self, Event, StreamPermit};
use crate::ops::follow::{LogFilters, LogItem, LogLine, LogsRequest};
use crate::ops::{self, Error};

/// Most tasks a `Last-Event-ID` may name.
const MAX_CURSOR_TASKS: usize = 1000;
/// Most lines `tail` may ask for (the operation's own bound).
const MAX_TAIL: u64 = 100_000;

/// Per task, the highest sequence number a stream has sent: written as
/// `<task_id>:<seq>` pairs joined by commas (one pair for a one-host
/// deployment), the `id:` of each line event. Each task's id is kept
/// written out beside its number: every line of a flood carries the whole
/// cursor, and writing the ids anew for each took a tenth of the
/// controller's time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<TaskId, (String, u64)>);

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, Error> {
        let refused = || {
            Error::invalid(format!(
                "Last-Event-ID `{}` is not a logs cursor (task_id:seq pairs joined by commas, as the stream's ids are)",
                berth_shared::text::clip(text, 80)
            ))
        };
        let mut cursor = Cursor::default();
        for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
            let (task, seq) = pair.trim().split_once(':').ok_or_else(refused)?;
            let task: TaskId = task.parse().map_err(|_| refused())?;
            let seq: u64 = seq.parse().map_err(|_| refused())?;
            cursor.0.insert(task, (task.to_string(), seq));
            if cursor.0.len() > MAX_CURSOR_TASKS {
                return Err(refused());
            }
        }
        Ok(cursor)
    }

    fn of(seqs: impl IntoIterator<Item = (TaskId, u64)>) -> Cursor {
        let tasks = seqs
            .into_iter()
            .map(|(task, seq)| (task, (task.to_string(), seq)));
        Cursor(tasks.collect())
    }

    /// Per task, the highest sequence number.
    fn seqs(self) -> impl Iterator<Item = (TaskId, u64)> {
        self.0.into_iter().map(|(task, (_, seq))| (task, seq))
    }

    fn advance(&mut self, task: TaskId, seq: u64) {
        let (_, last) = self
            .0
            .entry(task)
            .or_insert_with(|| (task.to_string(), seq));
        *last = (*last).max(seq);
    }

    fn id(&self) -> String {
        let mut id = String::with_capacity(self.0.len() * 48);
        for (index, (task, seq)) in self.0.values().enumerate() {
            if index > 0 {
                id.push(',');
            }
            id.push_str(task);
            // Writing to a String cannot fail.
            let _ = write!(id, ":{seq}");
        }
        id
    }
}

/// A stored line as `berth logs -o json` prints it.
fn entry(line: LogLine) -> LogEntry {
    LogEntry {
        host: line.host,
        stage: line.stage,
        stream: line.stream,
        seq: line.seq,
        ts: Timestamp(line.ts_ms),
        line: line.line,
    }
}

/// The retention notice: lines before `before` that the filters could
/// have matched were deleted by the retention sweeper.
#[derive(Serialize, ToSchema)]
pub struct Expired {
    pub before: Timestamp,
    /// How long lines are kept, in milliseconds.
    pub retention_ms: u64,
}

fn expired(before_ms: i64, retention_ms: u64) -> Expired {
    Expired {
        before: Timestamp(before_ms),
        retention_ms,
    }
}

/// A finished logs read (`berth logs -o json`), written as the lines are
/// read: a store failure part-way cuts the body off.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "the body is written by hand as lines are read; this type only describes it"
)]
pub struct LogsReply {
    #[schema(nullable = false)]
    pub expired: Option<Expired>,
    pub lines: Vec<LogEntry>,
}

/// `since`: an RFC 3339 time or Unix milliseconds.
fn since_ms(text: &str) -> Result<i64, Error> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    berth_shared::time::parse_rfc3339(text)
        .map(berth_shared::time::unix_ms)
        .ok_or_else(|| {
            Error::invalid(format!(
                "parameter `since`: `{}` is neither an RFC 3339 time (2026-10-23T02:00:00Z) nor Unix milliseconds",
                berth_shared::text::clip(text, 40)
            ))
        })
}

/// The request, and whether to answer with an event stream.
pub(super) fn logs_request(
    deployment_id: DeploymentId,
    mut params: Params,
    headers: &HeaderMap,
) -> Result<(LogsRequest, bool), Error> {
    let filters = LogFilters {
        host: params.one("host")?.unwrap_or_default(),
        stage: params.one("stage")?.unwrap_or_default(),
        stream: params.one("stream")?.unwrap_or_default(),
        level: params.one("level")?.unwrap_or_default(),
        since_ms: params
            .one("since")?
            .map(|text| since_ms(&text))
            .transpose()?
            .unwrap_or(0),
    };
    let follow = params.flag("follow")? || sse::is_wanted(headers);
    let mut tail = params.number("tail", MAX_TAIL)?.unwrap_or(0) as u32;
    let resource = params.one("resource")?.unwrap_or_default();
    params.finish()?;
    let resumed = headers.get("last-event-id").filter(|_| follow);
    let after_seq = match resumed {
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| Error::invalid("Last-Event-ID is not text"))?;
            // Resuming means everything after the cursor, not a tail again.
            tail = 0;
            Cursor::parse(text)?.seqs().collect()
        }
        None => Default::default(),
    };
    let request = LogsRequest {
        deployment_id,
        filters,
        follow,
        tail,
        // A container's live output has no sequence numbers to resume by.
        app_output: false,
        after_seq,
        resource,
    };
    Ok((request, follow))
}

/// A deployment's log lines (`berth logs`).
///
/// One JSON object; or with `follow=true` (or `Accept: text/event-stream`)
/// an event stream: `line` events (data a `LogEntry`, `id` a cursor for
/// `Last-Event-ID`), an `expired` notice first (data `Expired`), and `end`
/// once the deployment is quiet; an `error` event (data `ErrorReply`)
/// ends it on failure.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/logs", tag = "deployments",
    params(DeploymentPath, LogsParams, ResumeHeader),
    responses(
        (status = 200, description = "The lines", content(
            (LogsReply = "application/json"),
            (LogEvent = "text/event-stream"),
        )),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn logs(
    State(api): State<Arc<Api>>,
    Streaming(caller, permit): Streaming,
    PathId(id): PathId,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (request, follow) = logs_request(id, params, &headers)?;
    if !follow {
        let items = ops::follow::logs(api.context.clone(), &caller, request)?;
        return Ok(json_response(items, permit));
    }
    let mut cursor = Cursor::of(request.after_seq.clone());
    let items = ops::follow::logs(api.context.clone(), &caller, request)?;
    let events = items.map(move |item| match item? {
        LogItem::Line(line) => {
            if let Some(task) = line.task_id {
                cursor.advance(task, line.seq);
            }
            let mut event = Event::json("line", &entry(line))?;
            event.id = Some(cursor.id());
            Ok(event)
        }
        LogItem::Expired {
            before_ms,
            retention_ms,
        } => Event::json("expired", &expired(before_ms, retention_ms)),
    });
    Ok(sse::respond(events, permit, api.context.shutdown.clone()))
}

/// Where the JSON body is: before anything, or after the first line.
enum Written {
    Nothing,
    Opened,
    Lines,
}

/// The lines as one JSON object written as they come, holding `permit`
/// (a long read counts as a stream). The status is sent first, so a store
/// failure part-way cuts the body off (an incomplete transfer the client
/// notices) instead of sending an error object.
fn json_response(items: ops::Stream<LogItem>, permit: StreamPermit) -> Response {
    let state = Some((items, Written::Nothing, permit));
    let chunks = futures_util::stream::unfold(state, |state| async move {
        let (mut items, written, permit) = state?;
        let (text, written) = match (items.next().await, written) {
            (Some(Err(err)), _) => return Some((Err(err), None)),
            (None, Written::Nothing) => ("{\"lines\":[]}\n".to_string(), None),
            (None, _) => ("]}\n".to_string(), None),
            (
                Some(Ok(LogItem::Expired {
                    before_ms,
                    retention_ms,
                })),
                Written::Nothing,
            ) => {
                let expired =
                    serde_json::to_string(&expired(before_ms, retention_ms)).unwrap_or_default();
                (
                    format!("{{\"expired\":{expired},\"lines\":["),
                    Some(Written::Opened),
                )
            }
            // The notice only ever comes first.
            (Some(Ok(LogItem::Expired { .. })), written) => (String::new(), Some(written)),
            (Some(Ok(LogItem::Line(line))), written) => {
                let line = serde_json::to_string(&entry(line)).unwrap_or_default();
                let text = match written {
                    Written::Nothing => format!("{{\"lines\":[{line}"),
                    Written::Opened => line,
                    Written::Lines => format!(",{line}"),
                };
                (text, Some(Written::Lines))
            }
        };
        Some((Ok(text), written.map(|written| (items, written, permit))))
    });
    // Lines that are ready go out together.
    let body = chunks.ready_chunks(256).map(|batch| {
        let mut bytes = Vec::new();
        for chunk in batch {
            bytes.extend_from_slice(chunk?.as_bytes());
        }
        Ok::<Bytes, Error>(Bytes::from(bytes))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_keep_the_highest_seq_per_task() {
        let (one, two) = (TaskId::new(), TaskId::new());
        let mut cursor = Cursor::default();
        cursor.advance(one, 3);
        cursor.advance(two, 7);
        cursor.advance(one, 2);
        assert_eq!(Cursor::parse(&cursor.id()), Ok(cursor.clone()));
        assert_eq!(cursor.0[&one].1, 3);
        assert_eq!(Cursor::parse(""), Ok(Cursor::default()));
        let single = format!("{one}:5");
        assert_eq!(Cursor::parse(&single).map(|cursor| cursor.id()), Ok(single));
        for junk in [
            "x",
            "x:1",
            &format!("{one}:"),
            &format!("{one}:-1"),
            &format!("{one}"),
        ] {
            assert!(Cursor::parse(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn since_reads_rfc3339_or_unix_milliseconds() {
        assert_eq!(since_ms("1792720800000"), Ok(1_792_720_800_000));
        assert_eq!(since_ms("2026-10-23T04:00:00+02:00"), Ok(1_792_720_800_000));
        assert!(since_ms("yesterday").is_err());
    }

    #[test]
    fn resuming_reads_the_cursor_and_drops_the_tail() {
        let task = TaskId::new();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let id = HeaderValue::from_str(&format!("{task}:41")).expect("header");
        headers.insert("last-event-id", id);
        let params = Params::parse("tail=10").expect("params");
        let (request, follow) =
            logs_request(DeploymentId::new(), params, &headers).expect("request");
        assert!(follow && request.follow);
        assert_eq!(request.tail, 0);
        assert_eq!(request.after_seq.get(&task), Some(&41));
    }
}
