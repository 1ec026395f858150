//! A minimal HTTP/1.0 exchange over loopback TCP, shared by the health
//! probes and the Caddy admin client: HTTP/1.0 makes the server delimit
//! the answer by closing the connection, so no chunked decoding is needed.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` (head and body, already formatted) to `address` and
/// returns the status (0 when the answer is not HTTP) and the body, reading
/// at most `max_bytes`.
pub async fn exchange(
    address: &str,
    request: &str,
    max_bytes: u64,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(max_bytes).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
