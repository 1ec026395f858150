//! One HTTP/1.1 request over TCP with hyper, shared by the health probes
//! and the Caddy admin client: a proper `Host`, `Content-Length` or chunked
//! answers alike, no redirects followed, and the body read only up to a
//! bound (the rest is left unread and the connection dropped).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body, cut at the bound, as text.
    pub body: String,
}

/// A request to send.
pub struct Request<'a> {
    /// `host:port` to connect to; also the `Host` header.
    pub authority: &'a str,
    pub method: &'a str,
    /// Path and query, starting with `/`.
    pub path: &'a str,
    /// A JSON body, sent with its `Content-Type`.
    pub json: Option<String>,
    pub user_agent: &'a str,
    /// The most body bytes read.
    pub max_body: usize,
}

/// Sends `request` and reads the answer; an error is the connection's or
/// the protocol's, in words.
pub async fn send(request: Request<'_>) -> Result<Answer, String> {
    let stream = TcpStream::connect(request.authority)
        .await
        .map_err(|err| err.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| err.to_string())?;
    let driver = tokio::spawn(connection);
    let result = async {
        let mut builder = hyper::Request::builder()
            .method(request.method)
            .uri(request.path)
            .header(hyper::header::HOST, request.authority)
            .header(hyper::header::USER_AGENT, request.user_agent);
        if request.json.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let body = Full::new(Bytes::from(request.json.unwrap_or_default()));
        let outgoing = builder.body(body).map_err(|err| err.to_string())?;
        let response = sender
            .send_request(outgoing)
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut raw = Vec::new();
        while raw.len() < request.max_body {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|err| err.to_string())?;
            if let Some(data) = frame.data_ref() {
                let room = request.max_body - raw.len();
                raw.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&raw).into_owned(),
        })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests;
