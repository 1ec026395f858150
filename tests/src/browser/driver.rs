//! The private chromedriver: started on a free loopback port, ready once
//! its `GET /status` says so; the capabilities of a session; and the one
//! command fantoccini does not have (reading the browser log).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{CHROMEDRIVER, CHROMIUM, DESKTOP, POLL};
use crate::caddy::free_port;
use crate::{DEADLINE, Running};

/// Chromium's switches. This machine's network is closed: without the
/// background-networking ones Chromium floods the log with refused
/// connections to Google's services.
const SWITCHES: &[&str] = &[
    "--headless=new",
    // Root in a container has no user namespaces for the sandbox.
    "--no-sandbox",
    "--disable-gpu",
    // /dev/shm is small in containers; Chromium then crashes tabs.
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
];

/// Starts chromedriver with its log (stderr) in `dir` and waits until it
/// is ready; returns it and its base URL.
pub(super) fn start(dir: &Path) -> (Running, String) {
    let port = free_port();
    let mut command = Command::new(CHROMEDRIVER);
    command.arg(format!("--port={port}")).env("HOME", dir);
    let mut driver = Running::spawn(command, &dir.join("chromedriver.log"));
    let end = Instant::now() + DEADLINE;
    while !status_ready(port) {
        assert!(
            driver.is_running(),
            "chromedriver exited:\n{}",
            driver.log_tail()
        );
        assert!(
            Instant::now() < end,
            "chromedriver was not ready within {DEADLINE:?}:\n{}",
            driver.log_tail()
        );
        std::thread::sleep(POLL);
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

/// Whether chromedriver answers `GET /status` with `ready: true`.
fn status_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let asked = write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    );
    if asked.is_err() {
        return false;
    }
    // chromedriver keeps the connection open: read until the body parses.
    let mut response = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(read @ 1..) = stream.read(&mut chunk) {
        response.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&response);
        if let Some((_, body)) = text.split_once("\r\n\r\n")
            && let Ok(status) = serde_json::from_str::<Value>(body)
        {
            return status["value"]["ready"] == true;
        }
    }
    false
}

/// A session of headless Chromium with its profile in `profile`, logging
/// the console for [`BrowserLog`].
pub(super) fn capabilities(profile: &Path) -> Map<String, Value> {
    let mut args: Vec<String> = SWITCHES.iter().map(|arg| arg.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        // Console messages, failed loads and CSP violations.
        "goog:loggingPrefs": { "browser": "ALL" },
        "timeouts": { "pageLoad": DEADLINE.as_millis() as u64, "script": 30_000 },
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    }
}

/// chromedriver's `POST /session/{id}/se/log` for the `browser` log: the
/// entries since the last call.
#[derive(Debug)]
pub(super) struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        (
            hyper::Method::POST,
            Some(r#"{"type":"browser"}"#.to_string()),
        )
    }
}
