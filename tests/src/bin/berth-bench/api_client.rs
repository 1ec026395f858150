//! A client of the controller's HTTP API for the `api` scenario: one
//! keep-alive HTTP/1.1 connection (hyper's client) per [`Connection`],
//! every request with the Bearer token (or a session cookie), and server-sent events read from a
//! streaming answer as they arrive. Plain HTTP only: the bench's
//! controller serves the API on loopback.

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One connection to the API.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// `127.0.0.1:PORT`, the `Host` of every request.
    host: String,
    /// The credential every request carries: `authorization: Bearer ...`
    /// or a session's `cookie`.
    credential: (&'static str, String),
}

impl Connection {
    /// Connects to `base` (`http://127.0.0.1:PORT`); must run inside a
    /// tokio runtime, which drives the connection.
    pub async fn open(base: &str, token: &str) -> Result<Connection> {
        Connection::open_with(base, ("authorization", format!("Bearer {token}"))).await
    }

    /// Connects with another credential header (a session cookie).
    pub async fn open_with(base: &str, credential: (&'static str, String)) -> Result<Connection> {
        let host = base
            .strip_prefix("http://")
            .with_context(|| format!("the API at `{base}` is not plain HTTP"))?
            .trim_end_matches('/')
            .to_string();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .with_context(|| format!("connect to {host}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends with an error when the controller closes it, which the
            // next request on it reports.
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            host,
            credential,
        })
    }

    /// Sends a request (`body`: JSON) and returns the answer's head; its
    /// body is read from the answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<Response<Incoming>> {
        self.sender
            .ready()
            .await
            .context("the connection to the API closed")?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header(self.credential.0, &self.credential.1);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("build the request")?;
        self.sender
            .send_request(request)
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// Sends a request and reads the whole answer: its status and body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, Bytes)> {
        let response = self.send(method, path, body).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("read the answer to {method} {path}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// One server-sent event.
#[derive(Debug, Default)]
pub struct Event {
    pub name: String,
    pub id: Option<String>,
    pub data: String,
}

/// The events of a `text/event-stream` answer, read as they arrive.
pub struct Events {
    body: Incoming,
    /// Bytes received and not yet parsed, from `start` on.
    buffer: Vec<u8>,
    start: usize,
    current: Event,
}

impl Events {
    /// The events of `response`, which must be a `200` event stream.
    pub async fn of(response: Response<Incoming>) -> Result<Events> {
        let status = response.status().as_u16();
        let stream = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if status != 200 || !stream {
            let body = response.into_body().collect().await?.to_bytes();
            bail!(
                "expected an event stream, got {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(Events {
            body: response.into_body(),
            buffer: Vec::new(),
            start: 0,
            current: Event::default(),
        })
    }

    /// The next event, or `None` when the stream closed. Comments are
    /// skipped; a line that is not UTF-8 is an error.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            while let Some(at) = self.buffer[self.start..].iter().position(|b| *b == b'\n') {
                let end = self.start + at;
                let line = std::str::from_utf8(&self.buffer[self.start..end])
                    .context("an event stream line that is not UTF-8")?;
                let line = line.strip_suffix('\r').unwrap_or(line);
                let done = if line.is_empty() {
                    !self.current.name.is_empty()
                } else {
                    if let Some(name) = line.strip_prefix("event: ") {
                        self.current.name = name.to_string();
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        self.current.id = Some(id.to_string());
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        self.current.data = data.to_string();
                    }
                    false
                };
                self.start = end + 1;
                if done {
                    return Ok(Some(std::mem::take(&mut self.current)));
                }
                if line.is_empty() {
                    // A comment's blank line: nothing to dispatch.
                    self.current = Event::default();
                }
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    if let Ok(data) = frame.context("read the event stream")?.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
