//! A timing proxy for the Docker Engine API: the agent talks to a unix
//! socket of the bench, which passes every byte on to the private dockerd
//! and notes, per HTTP request, when its first byte went out and when the
//! last byte of its answer came back. That is the time berth spent waiting
//! on Docker, measured from outside berth.
//!
//! Requests are found without parsing HTTP fully: a client chunk that
//! starts with a method (`GET /`, `POST /`, ...) begins a request, and every
//! server chunk until the next request on that connection belongs to its
//! answer (HTTP/1.1 without pipelining, as bollard speaks it). A streaming
//! request (`follow=true`, the container's output during the start watch)
//! counts until its first answer only: after that berth is not waiting on
//! Docker, the stream just stays open.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::emit::now_us;

/// One Docker API call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The connection it travelled on.
    pub conn: u64,
    /// Method and path, e.g. `POST /v1.41/containers/create?name=...`.
    pub request: String,
    pub start_us: u64,
    pub end_us: u64,
}

#[derive(Default)]
struct Log {
    calls: Vec<Call>,
    next_conn: u64,
}

/// The running proxy; it stops with the runtime it was started on.
pub struct DockerProxy {
    /// `unix:///...`, for `berth-agent --docker-host`.
    pub host: String,
    log: Arc<Mutex<Log>>,
}

impl DockerProxy {
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        upstream: &Path,
        socket: &Path,
    ) -> Result<DockerProxy> {
        let listener = {
            let _entered = runtime.enter();
            UnixListener::bind(socket).with_context(|| format!("bind {}", socket.display()))?
        };
        let log = Arc::new(Mutex::new(Log::default()));
        let (upstream, shared) = (upstream.to_path_buf(), log.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let conn = {
                    let mut log = shared.lock().expect("proxy log");
                    log.next_conn += 1;
                    log.next_conn
                };
                let (upstream, shared) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    if let Ok(server) = UnixStream::connect(&upstream).await {
                        relay(conn, client, server, shared).await;
                    }
                });
            }
        });
        Ok(DockerProxy {
            host: format!("unix://{}", socket.display()),
            log,
        })
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().expect("proxy log").calls.clone()
    }
}

fn starts_request(chunk: &[u8]) -> Option<String> {
    let methods: [&[u8]; 5] = [b"GET /", b"POST /", b"PUT /", b"DELETE /", b"HEAD /"];
    if !methods.iter().any(|method| chunk.starts_with(method)) {
        return None;
    }
    let end = chunk
        .iter()
        .position(|byte| *byte == b'\r')
        .unwrap_or(chunk.len().min(200));
    let line = String::from_utf8_lossy(&chunk[..end]);
    Some(line.trim_end_matches(" HTTP/1.1").to_string())
}

async fn relay(conn: u64, client: UnixStream, server: UnixStream, log: Arc<Mutex<Log>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Index in the log of the request this connection is answering, and
    // whether it streams (see the module doc).
    let current: Arc<Mutex<Option<(usize, bool)>>> = Arc::default();
    let (up_log, up_current) = (log.clone(), current.clone());
    let upward = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = client_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            if let Some(request) = starts_request(&buffer[..read]) {
                let now = now_us();
                let mut log = up_log.lock().expect("proxy log");
                let streaming = request.contains("follow=true") || request.contains("follow=1");
                log.calls.push(Call {
                    conn,
                    request,
                    start_us: now,
                    end_us: now,
                });
                *up_current.lock().expect("current") = Some((log.calls.len() - 1, streaming));
            }
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        // Whatever Docker sends after the client hung up is not waited for.
        *up_current.lock().expect("current") = None;
        let _ = server_write.shutdown().await;
    };
    let downward = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = server_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            {
                let mut answering = current.lock().expect("current");
                if let Some((index, streaming)) = *answering {
                    log.lock().expect("proxy log").calls[index].end_us = now_us();
                    if streaming {
                        *answering = None;
                    }
                }
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upward, downward);
}

/// Total length of the union of intervals, clipped to `[from, to]`.
pub fn covered(mut intervals: Vec<(u64, u64)>, from: u64, to: u64) -> u64 {
    intervals.retain(|(start, end)| end > start);
    intervals.sort_unstable();
    let mut total = 0;
    let mut reach = from;
    for (start, end) in intervals {
        let (start, end) = (start.max(reach), end.min(to));
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn union_of_intervals() {
        let spans = vec![(0, 10), (5, 15), (20, 30), (25, 26), (40, 50)];
        assert_eq!(super::covered(spans.clone(), 0, 100), 15 + 10 + 10);
        assert_eq!(super::covered(spans, 8, 45), 7 + 10 + 5);
    }
}
