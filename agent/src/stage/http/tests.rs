//! The client against a raw HTTP server on loopback: what it sends, and
//! answers framed every way a server may frame them.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Request, send};

/// Serves one connection with `answer`; returns the address and the
/// request head it received.
async fn serve_once(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let seen = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = stream.read(&mut buf).await.expect("read");
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buf[..read]);
        }
        stream.write_all(answer.as_bytes()).await.expect("write");
        let _ = stream.shutdown().await;
        String::from_utf8_lossy(&head).into_owned()
    });
    (address, seen)
}

fn get<'a>(authority: &'a str, path: &'a str, max_body: usize) -> Request<'a> {
    Request {
        authority,
        method: "GET",
        path,
        json: None,
        user_agent: "berth-test",
        max_body,
    }
}

#[tokio::test]
async fn sends_the_path_and_a_host_and_reads_a_chunked_answer() {
    let (address, seen) = serve_once(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let answer = send(get(&address, "/ready?deep=1", 1024))
        .await
        .expect("answer");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "hello world");
    let head = seen.await.expect("server");
    assert!(head.starts_with("GET /ready?deep=1 HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {address}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_a_long_body_is_cut() {
    let (address, _) = serve_once(
        "HTTP/1.1 302 Found\r\nLocation: http://198.18.0.1/\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let answer = send(get(&address, "/", 1024)).await.expect("answer");
    assert_eq!(answer.status, 302);

    let (address, _) =
        serve_once("HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz").await;
    let answer = send(get(&address, "/", 10)).await.expect("answer");
    assert_eq!(answer.body, "abcdefghij");
}

#[tokio::test]
async fn a_json_body_goes_with_its_type_and_length() {
    let (address, seen) = serve_once("HTTP/1.0 200 OK\r\n\r\nclose-delimited").await;
    let request = Request {
        method: "POST",
        json: Some("{\"a\":1}".into()),
        ..get(&address, "/load", 1024)
    };
    let answer = send(request).await.expect("answer");
    assert_eq!(
        answer.body, "close-delimited",
        "an HTTP/1.0 answer read to its close"
    );
    let head = seen.await.expect("server").to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("content-length: 7\r\n"), "{head}");
}

#[tokio::test]
async fn not_http_is_an_error() {
    let (address, _) = serve_once("SSH-2.0-OpenSSH\r\n\r\n").await;
    assert!(send(get(&address, "/", 1024)).await.is_err());
}
