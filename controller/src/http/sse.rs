//! Server-Sent Events: an operation's stream as `text/event-stream`, with
//! a keep-alive comment every [`KEEP_ALIVE`] while it is quiet, an `error`
//! event (the error JSON) when it fails, an `end` event when it ends by
//! itself, and nothing more once the controller shuts down (the client
//! reconnects). Each credential may hold [`MAX_STREAMS_PER_CREDENTIAL`]
//! streams at once ([`StreamCap`]), and is checked again at every
//! keep-alive, so a revoked token's stream ends with an `error` event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::ops::{self, Caller, Code, Error};

/// How often a quiet stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Open streams (event streams and log reads) one credential (token or
/// session) may hold.
pub const MAX_STREAMS_PER_CREDENTIAL: usize = 8;

/// One event: its name, an optional id (for `Last-Event-ID`), and its
/// data, one line of JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub name: &'static str,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    /// An event whose data is `value` as JSON.
    pub fn json<T: serde::Serialize>(name: &'static str, value: &T) -> ops::Result<Event> {
        let data = serde_json::to_string(value)
            .map_err(|err| Error::new(Code::Internal, format!("encode an event: {err}")))?;
        Ok(Event {
            name,
            id: None,
            data,
        })
    }

    /// The event as the bytes of the stream. JSON text holds no raw line
    /// breaks, so the data is one `data:` line.
    pub fn frame(&self) -> Bytes {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes);
        Bytes::from(bytes)
    }

    /// Appends the event's bytes to `out`.
    fn write_to(&self, out: &mut Vec<u8>) {
        let id = self.id.as_deref().map_or(0, |id| id.len() + 5);
        out.reserve(self.name.len() + id + self.data.len() + 16);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name.as_bytes());
        if let Some(id) = &self.id {
            out.extend_from_slice(b"\nid: ");
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(self.data.as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}

/// Checks the credential of a stream again; an error ends the stream.
pub type Recheck = Box<dyn Fn() -> ops::Result<()> + Send + Sync>;

/// Counts the open streams per credential.
#[derive(Default)]
pub struct StreamCap {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it frees its place.
pub struct StreamPermit {
    cap: Arc<StreamCap>,
    key: String,
    recheck: Recheck,
}

impl StreamCap {
    /// A place for one more stream of `caller`'s credential, or a refusal;
    /// `recheck` checks the credential again while the stream lasts.
    pub fn acquire(
        self: &Arc<Self>,
        caller: &Caller,
        recheck: Recheck,
    ) -> ops::Result<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(caller.serial.clone()).or_insert(0);
        if *count >= MAX_STREAMS_PER_CREDENTIAL {
            return Err(Error::new(
                Code::RequestTooManyStreams,
                format!(
                    "this credential has {MAX_STREAMS_PER_CREDENTIAL} streams (event streams, log reads) open, the most it may; close one first"
                ),
            ));
        }
        *count += 1;
        Ok(StreamPermit {
            cap: self.clone(),
            key: caller.serial.clone(),
            recheck,
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Most events that go out together in one piece of the body.
const BATCH: usize = 256;

/// What the stream sends next.
enum Next {
    Items(Option<Vec<ops::Result<Event>>>),
    KeepAlive,
    Shutdown,
}

/// The stream of frames: events, keep-alives, then `error` or `end`.
/// Events that are ready together go out as one piece, as the logs
/// stream's lines come: one body chunk and one write per event made a
/// followed log flood cost the controller more than storing it.
fn frames(
    events: impl Stream<Item = ops::Result<Event>> + Send + Unpin + 'static,
    permit: StreamPermit,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    // The permit lives as long as the stream.
    let state = Some((events.ready_chunks(BATCH), permit, shutdown));
    futures_util::stream::unfold(state, |state| async move {
        let (mut events, permit, shutdown) = state?;
        let next = tokio::select! {
            () = shutdown.cancelled() => Next::Shutdown,
            () = tokio::time::sleep(KEEP_ALIVE) => Next::KeepAlive,
            items = events.next() => Next::Items(items),
        };
        let (frame, more) = match next {
            Next::Shutdown => return None,
            Next::KeepAlive => match (permit.recheck)() {
                Ok(()) => (Bytes::from_static(b": keep-alive\n\n"), true),
                Err(err) => (error_frame(&err), false),
            },
            Next::Items(Some(items)) => batch(items),
            Next::Items(None) => (Bytes::from_static(b"event: end\ndata: {}\n\n"), false),
        };
        let state = more.then_some((events, permit, shutdown));
        Some((Ok(frame), state))
    })
}

/// Events as one piece, and whether the stream goes on: an error is sent
/// as the `error` event that ends it, after the events before it and
/// instead of those after.
fn batch(items: Vec<ops::Result<Event>>) -> (Bytes, bool) {
    let mut bytes = Vec::new();
    for item in items {
        match item {
            Ok(event) => event.write_to(&mut bytes),
            Err(err) => {
                bytes.extend_from_slice(&error_frame(&err));
                return (Bytes::from(bytes), false);
            }
        }
    }
    (Bytes::from(bytes), true)
}

/// The `error` event that ends a stream.
fn error_frame(err: &Error) -> Bytes {
    let event = Event {
        name: "error",
        id: None,
        data: super::error::body_of(err).to_string(),
    };
    event.frame()
}

/// `events` as a `text/event-stream` response.
pub fn respond(
    events: impl Stream<Item = ops::Result<Event>> + Send + Unpin + 'static,
    permit: StreamPermit,
    shutdown: CancellationToken,
) -> Response {
    // A comment first, so the client sees the stream open at once.
    let opened = futures_util::stream::once(async { Ok(Bytes::from_static(b": open\n\n")) });
    let body = Body::from_stream(opened.chain(frames(events, permit, shutdown)));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Whether the client asked for an event stream.
pub fn is_wanted(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Principal, PrincipalKind, Role};

    fn caller(serial: &str) -> Caller {
        Caller {
            principal: Principal {
                kind: PrincipalKind::User,
                id: "ana".into(),
                name: "ana".into(),
                role: Role::Viewer,
                revoked: false,
            },
            serial: serial.into(),
            via_token: None,
        }
    }

    #[test]
    fn events_frame_as_event_id_data() {
        let event = Event {
            name: "line",
            id: Some("t:3".into()),
            data: "{\"a\":\"x\\ny\"}".into(),
        };
        assert_eq!(
            event.frame(),
            Bytes::from("event: line\nid: t:3\ndata: {\"a\":\"x\\ny\"}\n\n")
        );
    }

    #[test]
    fn each_credential_holds_a_bounded_number_of_streams() {
        let cap = Arc::new(StreamCap::default());
        let held: Vec<StreamPermit> = (0..MAX_STREAMS_PER_CREDENTIAL)
            .map(|_| {
                cap.acquire(&caller("token:a"), Box::new(|| Ok(())))
                    .expect("a place")
            })
            .collect();
        let refused = cap
            .acquire(&caller("token:a"), Box::new(|| Ok(())))
            .err()
            .expect("full");
        assert_eq!(refused.code, Code::RequestTooManyStreams);
        assert!(
            cap.acquire(&caller("token:b"), Box::new(|| Ok(()))).is_ok(),
            "others are not held up"
        );
        drop(held);
        assert!(
            cap.acquire(&caller("token:a"), Box::new(|| Ok(()))).is_ok(),
            "places come back"
        );
        assert!(
            cap.open.lock().expect("lock").len() <= 1,
            "closed credentials are forgotten"
        );
    }

    #[tokio::test]
    async fn a_stream_ends_with_end_or_error() {
        let cap = Arc::new(StreamCap::default());
        let collect = |items: Vec<ops::Result<Event>>| {
            let permit = cap
                .acquire(&caller("token:a"), Box::new(|| Ok(())))
                .expect("place");
            let stream = frames(
                futures_util::stream::iter(items),
                permit,
                CancellationToken::new(),
            );
            async move {
                stream
                    .map(|frame| String::from_utf8_lossy(&frame.unwrap_or_default()).into_owned())
                    .collect::<Vec<String>>()
                    .await
            }
        };
        let ended = collect(vec![Event::json("deployment", &1)]).await;
        assert_eq!(
            ended,
            ["event: deployment\ndata: 1\n\n", "event: end\ndata: {}\n\n"]
        );
        let failed = collect(vec![Err(Error::new(Code::StoreFailed, "disk"))]).await;
        assert_eq!(failed.len(), 1);
        assert!(failed[0].starts_with("event: error\ndata: {\"error\":{\"code\":\"store/failed\""));

        // Events ready together go out as one piece; an error among them
        // ends the stream after the events before it.
        let line = |seq: u32| {
            let mut event = Event::json("line", &seq).expect("event");
            event.id = Some(format!("t:{seq}"));
            Ok(event)
        };
        let burst = collect((1..=3).map(line).collect()).await;
        assert_eq!(
            burst,
            [
                "event: line\nid: t:1\ndata: 1\n\nevent: line\nid: t:2\ndata: 2\n\nevent: line\nid: t:3\ndata: 3\n\n",
                "event: end\ndata: {}\n\n"
            ]
        );
        let cut = collect(vec![
            line(1),
            Err(Error::new(Code::StoreFailed, "disk")),
            line(2),
        ])
        .await;
        assert_eq!(cut.len(), 1, "{cut:?}");
        assert!(
            cut[0].starts_with("event: line\nid: t:1\ndata: 1\n\nevent: error\n"),
            "{cut:?}"
        );
        assert!(!cut[0].contains("t:2"), "nothing after the error: {cut:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_keeps_alive_until_its_credential_is_refused() {
        let cap = Arc::new(StreamCap::default());
        let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = refused.clone();
        let recheck: Recheck = Box::new(move || {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                Err(Error::new(Code::AuthUnauthenticated, "revoked"))
            } else {
                Ok(())
            }
        });
        let permit = cap.acquire(&caller("token:a"), recheck).expect("place");
        let quiet = futures_util::stream::pending::<ops::Result<Event>>();
        let mut stream = Box::pin(frames(quiet, permit, CancellationToken::new()));
        let first = stream.next().await.and_then(Result::ok).unwrap_or_default();
        assert_eq!(first, Bytes::from_static(b": keep-alive\n\n"));
        refused.store(true, std::sync::atomic::Ordering::SeqCst);
        let last = stream.next().await.and_then(Result::ok).unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&last).contains("auth/unauthenticated"),
            "{last:?}"
        );
        assert!(stream.next().await.is_none(), "the stream ends");
        assert!(
            cap.open.lock().expect("lock").is_empty(),
            "its place is free"
        );
    }
}
