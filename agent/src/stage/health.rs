//! Health checks of a new container before it takes over: an HTTP GET on
//! its published port (2xx and 3xx pass), a TCP connect, or commands run
//! in the bundle. Every attempt is logged; failures during the start period
//! do not count; the last failed probe's status and body are kept as
//! evidence.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use berth_proto::v1::HealthSpec;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::shell::{self, LineSink, Outcome, Stream};

/// Bytes of a failing probe's body kept as evidence.
const EVIDENCE_BODY: usize = 1024;
/// Most bytes read from an HTTP answer.
const MAX_RESPONSE: usize = 64 * 1024;

/// One attempt's result.
struct Attempt {
    passed: bool,
    /// Short description: `HTTP 200`, `connected`, `exit 1`, the error.
    summary: String,
    /// The response body or the command's output (evidence).
    output: String,
}

/// Where the probe looks.
pub struct Target<'a> {
    /// The container's published port on this host.
    pub host_port: Option<&'a str>,
    /// Or its `ip:port` on a network (a resource on the app's network).
    pub address: Option<String>,
    /// `run` commands go into this container (a resource) instead of the
    /// bundle on the host.
    pub inside: Option<(&'a bollard::Docker, &'a str)>,
    /// The unpacked bundle (for `run` checks).
    pub work_dir: Option<&'a Path>,
    pub env: &'a BTreeMap<String, String>,
}

/// Checks until one attempt passes (Ok with details) or the timeout ends
/// (Err with the message and the evidence).
pub async fn check(
    spec: &HealthSpec,
    target: &Target<'_>,
    sink: &dyn LineSink,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, (String, BTreeMap<String, String>)> {
    let started = Instant::now();
    let interval = Duration::from_millis(spec.interval_ms.max(100));
    let deadline = started + Duration::from_millis(spec.timeout_ms.max(1000));
    let start_period = Duration::from_millis(spec.start_period_ms);
    let mut counted_failures = 0u32;
    let mut last = None;
    for number in 1u32.. {
        let attempt = attempt(spec, target, deadline, cancel).await;
        let in_start = started.elapsed() < start_period;
        let note = if attempt.passed {
            "passed"
        } else if in_start {
            "failed (start period, not counted)"
        } else {
            "failed"
        };
        sink.line(
            Stream::System,
            format!("health check {number}: {} {note}", attempt.summary),
        );
        if attempt.passed {
            return Ok(BTreeMap::from([
                ("health".to_string(), "passed".to_string()),
                ("health_attempts".to_string(), number.to_string()),
                ("health_probe".to_string(), attempt.summary),
            ]));
        }
        if !in_start {
            counted_failures += 1;
        }
        last = Some(attempt);
        if Instant::now() + interval >= deadline || cancel.is_cancelled() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = cancel.cancelled() => break,
        }
    }
    let last = last.unwrap_or(Attempt {
        passed: false,
        summary: "no attempt".into(),
        output: String::new(),
    });
    let waited = berth_shared::time::format_duration(started.elapsed());
    let message = format!(
        "health check did not pass within {waited} ({counted_failures} failed attempt(s)); last probe: {}",
        last.summary
    );
    let mut evidence = BTreeMap::from([
        ("health".to_string(), "failed".to_string()),
        ("health_probe".to_string(), last.summary),
    ]);
    if !last.output.is_empty() {
        evidence.insert(
            "health_output".to_string(),
            clip(&last.output, EVIDENCE_BODY),
        );
    }
    Err((message, evidence))
}

fn clip(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// One probe of a running app (for the periodic checks after a deploy):
/// whether it passed, and a short description of the answer.
pub async fn probe_once(
    spec: &HealthSpec,
    target: &Target<'_>,
    cancel: &CancellationToken,
) -> (bool, String) {
    let attempt = attempt(
        spec,
        target,
        Instant::now() + Duration::from_secs(30),
        cancel,
    )
    .await;
    (attempt.passed, attempt.summary)
}

async fn attempt(
    spec: &HealthSpec,
    target: &Target<'_>,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Attempt {
    let per_attempt = Duration::from_millis(spec.interval_ms.max(100)).max(Duration::from_secs(2));
    if !spec.http_path.is_empty() || spec.tcp {
        let address = match (&target.address, target.host_port) {
            (Some(address), _) => address.clone(),
            (None, Some(port)) => format!("127.0.0.1:{port}"),
            (None, None) => {
                return Attempt {
                    passed: false,
                    summary: "the container publishes no port".into(),
                    output: String::new(),
                };
            }
        };
        let probe = async {
            if spec.tcp {
                TcpStream::connect(&address)
                    .await
                    .map(|_| Attempt {
                        passed: true,
                        summary: format!("TCP {address} connected"),
                        output: String::new(),
                    })
                    .map_err(|err| err.to_string())
            } else {
                http_get(&address, &spec.http_path).await
            }
        };
        return match tokio::time::timeout(per_attempt, probe).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(err)) => Attempt {
                passed: false,
                summary: format!("{address}: {err}"),
                output: String::new(),
            },
            Err(_) => Attempt {
                passed: false,
                summary: format!("{address}: no answer within {}s", per_attempt.as_secs()),
                output: String::new(),
            },
        };
    }
    run(spec, target, deadline, cancel).await
}

async fn http_get(address: &str, path: &str) -> Result<Attempt, String> {
    let answer = super::http::send(super::http::Request {
        authority: address,
        method: "GET",
        path,
        json: None,
        user_agent: "berth-health",
        max_body: MAX_RESPONSE,
    })
    .await
    .map_err(|err| format!("GET {path}: {err}"))?;
    Ok(Attempt {
        // A redirect is not followed; it counts as an answer.
        passed: (200..400).contains(&answer.status),
        summary: format!("GET {path}: HTTP {}", answer.status),
        output: answer.body,
    })
}

/// Collects a command's output as evidence.
#[derive(Default)]
struct Collect(std::sync::Mutex<String>);

impl LineSink for Collect {
    fn line(&self, _stream: Stream, line: String) {
        if let Ok(mut text) = self.0.lock()
            && text.len() < EVIDENCE_BODY * 4
        {
            text.push_str(&line);
            text.push('\n');
        }
    }
}

async fn run(
    spec: &HealthSpec,
    target: &Target<'_>,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Attempt {
    if let Some((docker, container)) = target.inside {
        return inside(spec, docker, container, deadline).await;
    }
    let Some(dir) = target.work_dir else {
        return Attempt {
            passed: false,
            summary: "no bundle to run the check in".into(),
            output: String::new(),
        };
    };
    let output = Collect::default();
    for command in &spec.run {
        let attempt_deadline = deadline.min(Instant::now() + Duration::from_secs(30));
        let outcome = shell::run(command, dir, target.env, attempt_deadline, cancel, &output).await;
        let text = output.0.lock().map(|text| text.clone()).unwrap_or_default();
        let summary = match outcome {
            Ok(Outcome::Exited(0)) => continue,
            Ok(Outcome::Exited(code)) => format!("`{command}` exited with code {code}"),
            Ok(Outcome::Signaled(signal)) => format!("`{command}` was killed by signal {signal}"),
            Ok(Outcome::TimedOut) => format!("`{command}` did not finish in time"),
            Ok(Outcome::Canceled) => format!("`{command}` was canceled"),
            Err(err) => format!("`{command}` could not start: {err}"),
        };
        return Attempt {
            passed: false,
            summary,
            output: text,
        };
    }
    let text = output.0.lock().map(|text| text.clone()).unwrap_or_default();
    Attempt {
        passed: true,
        summary: "check commands exited 0".into(),
        output: text,
    }
}

/// `run` commands inside a container, through `docker exec`.
async fn inside(
    spec: &HealthSpec,
    docker: &bollard::Docker,
    container: &str,
    deadline: Instant,
) -> Attempt {
    let mut text = String::new();
    for command in &spec.run {
        let limit = deadline
            .min(Instant::now() + Duration::from_secs(30))
            .saturating_duration_since(Instant::now());
        let summary =
            match tokio::time::timeout(limit, super::docker::exec_in(docker, container, command))
                .await
            {
                Ok(Ok((0, output))) => {
                    text.push_str(&output);
                    continue;
                }
                Ok(Ok((code, output))) => {
                    text.push_str(&output);
                    format!("`{command}` exited with code {code} in {container}")
                }
                Ok(Err(err)) => format!("`{command}` could not run in {container}: {err}"),
                Err(_) => format!("`{command}` did not finish in time in {container}"),
            };
        return Attempt {
            passed: false,
            summary,
            output: text,
        };
    }
    Attempt {
        passed: true,
        summary: "check commands exited 0".into(),
        output: text,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[derive(Default)]
    struct Quiet(std::sync::Mutex<Vec<String>>);

    impl LineSink for Quiet {
        fn line(&self, _stream: Stream, line: String) {
            self.0.lock().expect("lock").push(line);
        }
    }

    /// Serves one canned HTTP answer per connection.
    async fn server(answer: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    fn spec(http: &str, tcp: bool, run: &[&str]) -> HealthSpec {
        HealthSpec {
            http_path: http.into(),
            tcp,
            run: run.iter().map(|c| c.to_string()).collect(),
            interval_ms: 100,
            timeout_ms: 1000,
            start_period_ms: 0,
        }
    }

    async fn probe(
        spec: &HealthSpec,
        port: Option<&str>,
    ) -> (
        Result<BTreeMap<String, String>, (String, BTreeMap<String, String>)>,
        Vec<String>,
    ) {
        let sink = Quiet::default();
        let env = BTreeMap::new();
        let target = Target {
            host_port: port,
            work_dir: Some(Path::new("/")),
            env: &env,
            address: None,
            inside: None,
        };
        let result = check(spec, &target, &sink, &CancellationToken::new()).await;
        (result, sink.0.into_inner().expect("lock"))
    }

    #[tokio::test]
    async fn http_passes_on_2xx_and_keeps_evidence_otherwise() {
        let ok = server("HTTP/1.0 204 No Content\r\n\r\n").await;
        let (result, lines) = probe(&spec("/healthz", false, &[]), Some(&ok)).await;
        assert_eq!(
            result.expect("passes")["health_probe"],
            "GET /healthz: HTTP 204"
        );
        assert!(lines[0].contains("health check 1"));
        let bad = server("HTTP/1.0 503 Unavailable\r\n\r\ndatabase down").await;
        let (result, lines) = probe(&spec("/healthz", false, &[]), Some(&bad)).await;
        let (message, evidence) = result.expect_err("fails");
        assert!(message.contains("HTTP 503"), "{message}");
        assert_eq!(evidence["health_output"], "database down");
        assert!(lines.len() > 2, "every attempt is logged: {lines:?}");
    }

    #[tokio::test]
    async fn tcp_and_run_checks() {
        let open = server("x").await;
        assert!(probe(&spec("", true, &[]), Some(&open)).await.0.is_ok());
        let (result, _) = probe(&spec("", false, &["echo checking; exit 1"]), None).await;
        let (message, evidence) = result.expect_err("exit 1 fails");
        assert!(message.contains("exited with code 1"), "{message}");
        assert!(evidence["health_output"].contains("checking"));
        assert!(probe(&spec("", false, &["true"]), None).await.0.is_ok());
    }
}
