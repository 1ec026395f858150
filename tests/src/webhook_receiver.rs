//! A real HTTP receiver for webhook tests: it listens on a loopback port,
//! keeps every request it gets (headers and body, in arrival order) and
//! answers with the statuses a test plans (say 503 twice, then 200).
//! [`verify`] checks a Standard Webhooks signature with its own
//! HMAC-SHA256 (from `sha2`), independent of the controller's.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// Largest body kept.
const MAX_BODY: usize = 4 << 20;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Statuses for the next requests, then `otherwise`.
    plan: VecDeque<u16>,
    otherwise: u16,
}

/// The receiver; it stops with the test process.
pub struct Receiver {
    pub port: u16,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Receiver {
    /// Listens on a free loopback port, answering 200 unless told.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new((
            Mutex::new(State {
                otherwise: 200,
                ..State::default()
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Receiver { port, state }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers the next requests with `statuses`, in order.
    pub fn plan(&self, statuses: &[u16]) {
        self.lock().plan.extend(statuses);
    }

    /// Answers every request not planned with `status`.
    pub fn otherwise(&self, status: u16) {
        self.lock().otherwise = status;
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until `done` holds for the requests so far; panics with them
    /// after `deadline`.
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let until = Instant::now() + deadline;
        let mut state = self.lock();
        loop {
            if done(&state.received) {
                return state.received.clone();
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "webhook receiver: {what} did not happen within {deadline:?}; got {:#?}",
                state
                    .received
                    .iter()
                    .map(|r| (
                        r.answered,
                        r.header("webhook-id").to_string(),
                        r.body.chars().take(120).collect::<String>()
                    ))
                    .collect::<Vec<_>>()
            );
            state = self
                .state
                .1
                .wait_timeout(state, left.min(Duration::from_millis(200)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Reads one request, keeps it and answers it, then closes.
fn serve(stream: TcpStream, state: &(Mutex<State>, Condvar)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(stream) => stream,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (lock, changed) = state;
    let answered = {
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let status = state.plan.pop_front().unwrap_or(state.otherwise);
        state.received.push(Received {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            answered: status,
        });
        status
    };
    changed.notify_all();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {answered} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    );
}

/// HMAC-SHA256, written out (RFC 2104); tests sign git deliveries with it
/// too.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Checks a request's Standard Webhooks signature against `secret`
/// (`whsec_...`), and that its timestamp is within five minutes of now.
pub fn verify(secret: &str, request: &Received) -> Result<(), String> {
    let key = STANDARD
        .decode(
            secret
                .strip_prefix("whsec_")
                .ok_or("the secret lacks whsec_")?,
        )
        .map_err(|err| format!("the secret is not base64: {err}"))?;
    let (id, timestamp) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
    );
    let signed = format!("{id}.{timestamp}.{}", request.body);
    let expected = format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key, signed.as_bytes()))
    );
    let signatures = request.header("webhook-signature");
    if !signatures.split(' ').any(|signature| signature == expected) {
        return Err(format!("no signature in `{signatures}` matches"));
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| format!("timestamp `{timestamp}`"))?;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
    )
    .unwrap_or(0);
    if (now - sent).abs() > 300 {
        return Err(format!(
            "timestamp {sent} is more than 5 minutes from {now}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_standard_webhooks_example() {
        // The Standard Webhooks specification's example, less its age.
        let mut request = Received {
            method: "POST".into(),
            path: "/".into(),
            headers: BTreeMap::new(),
            body: r#"{"test": 2432232314}"#.into(),
            answered: 200,
        };
        let key = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("key");
        let signature = hmac_sha256(
            &key,
            br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#,
        );
        assert_eq!(
            STANDARD.encode(signature),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        request.headers.insert("webhook-id".into(), "msg_1".into());
        request
            .headers
            .insert("webhook-timestamp".into(), "1".into());
        request
            .headers
            .insert("webhook-signature".into(), "v1,nope".into());
        assert!(verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &request).is_err());
    }
}
