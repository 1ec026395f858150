//! A small client of the controller's HTTP API for the end-to-end tests:
//! `curl`, as a CI script would use it (and as the README shows), with
//! the status, headers and body of each answer, and event streams as
//! running processes whose events are read as they arrive.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::{Controller, DEADLINE, Running, write_bundle};

/// Whether `curl` can be run; the API tests skip (or fail under
/// `BERTH_REQUIRE_ALL=1`) without it.
pub fn has_curl() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// What a request sends as its body.
pub enum Body<'a> {
    None,
    Text(&'a str),
    /// A file, sent with its Content-Length (`curl --data-binary @FILE`).
    File(&'a Path),
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lowercase, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The body as JSON (null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("(no code)")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The API at `base` (`http://127.0.0.1:PORT`) with an optional token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    token: Option<String>,
    /// More curl arguments for every request (a client certificate, a
    /// source address).
    args: Vec<String>,
}

impl Api {
    pub fn new(base: &str, token: Option<&str>) -> Api {
        Api {
            base: base.to_string(),
            token: token.map(str::to_string),
            args: Vec::new(),
        }
    }

    /// The same API, with `args` given to curl on every request (e.g.
    /// `--interface 127.0.0.2`, `--cacert ca.pem`).
    pub fn with_curl_args(mut self, args: &[&str]) -> Api {
        self.args.extend(args.iter().map(|arg| arg.to_string()));
        self
    }

    fn curl(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Command {
        let mut command = Command::new("curl");
        command.args(["-sS", "--max-time", "60"]);
        if method == "HEAD" {
            command.arg("-I");
        } else {
            command.args(["-X", method]);
        }
        command.args(&self.args);
        if let Some(token) = &self.token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        for (name, value) in headers {
            command.args(["-H", &format!("{name}: {value}")]);
        }
        command.arg(format!("{}{path}", self.base));
        command
    }

    /// Sends a request and waits for the whole answer.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Reply {
        let scratch = tempfile::tempdir().expect("tempdir");
        let head = scratch.path().join("head");
        let out = scratch.path().join("body");
        let mut command = self.curl(method, path, headers);
        command.arg("-D").arg(&head).arg("-o").arg(&out);
        command.args(["-w", "%{http_code}"]);
        match body {
            Body::None => {}
            Body::Text(text) => {
                let file = scratch.path().join("request");
                std::fs::write(&file, text).expect("write the request body");
                command
                    .arg("--data-binary")
                    .arg(format!("@{}", file.display()));
            }
            Body::File(file) => {
                command
                    .arg("--data-binary")
                    .arg(format!("@{}", file.display()));
            }
        }
        let output = command.output().expect("run curl");
        let status = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(
            status != 0,
            "curl {method} {path} got no answer: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let head = std::fs::read_to_string(&head).unwrap_or_default();
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let body = std::fs::read_to_string(&out).unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], Body::None)
    }

    /// POSTs a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> Reply {
        let text = body.to_string();
        let json = [("Content-Type", "application/json")];
        self.request("POST", path, &json, Body::Text(&text))
    }

    /// Opens an event stream (`curl -N`); its events arrive on stdout.
    pub fn stream(&self, path: &str, headers: &[(&str, &str)], log: &Path) -> Running {
        let mut command = self.curl("GET", path, headers);
        command.arg("-N");
        Running::spawn(command, log)
    }
}

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|err| panic!("event data is not JSON ({err}): {}", self.data))
    }
}

/// The events in the lines of a stream so far (comments left out).
pub fn events(lines: &[String]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut current = Event::default();
    for line in lines {
        if line.is_empty() {
            if !current.name.is_empty() {
                events.push(std::mem::take(&mut current));
            }
            current = Event::default();
        } else if let Some(name) = line.strip_prefix("event: ") {
            current.name = name.to_string();
        } else if let Some(id) = line.strip_prefix("id: ") {
            current.id = Some(id.to_string());
        } else if let Some(data) = line.strip_prefix("data: ") {
            current.data = data.to_string();
        }
    }
    events
}

/// Waits for a stream to send `event: end` and close; returns its events.
pub fn until_end(stream: &mut Running, what: &str) -> Vec<Event> {
    assert!(
        stream.stdout.wait_for("event: end", DEADLINE).is_some(),
        "{what} did not end: {:?}",
        stream.stdout.all()
    );
    stream.wait_exit(DEADLINE);
    events(&stream.stdout.all())
}

/// A user (`berth users add`) with `role`, its credential bundle, and an API token it made.
pub fn user_token(controller: &Controller, name: &str, role: &str) -> (String, PathBuf) {
    controller
        .berth(&["users", "add", name, "--role", role])
        .ok();
    let bundle = controller.dir.path().join(format!("{name}.conf"));
    let out = bundle.to_string_lossy().to_string();
    controller
        .berth(&["users", "credential", name, "--out", &out])
        .ok();
    let token = controller
        .berth_with(&bundle, &["api-tokens", "create", "--name", "ci"])
        .ok();
    (token.trim().to_string(), bundle)
}

/// The target and setup of the test bundles: a script on `role=web`.
pub const SCRIPT_MANIFEST: &str =
    "[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"./setup.sh\"]\n";

/// A packed bundle: its directory, archive, digest and size.
pub struct Packed {
    pub dir: PathBuf,
    pub archive: PathBuf,
    pub digest: String,
    pub size: u64,
}

/// A script-only bundle of `app` whose setup prints `lines` lines, packed
/// with a plain `tar czf -C DIR .` (entries `./`, `./berth.toml`, ...).
pub fn tar_bundle(root: &Path, app: &str, lines: u32) -> Packed {
    let manifest = format!("app = \"{app}\"\n{SCRIPT_MANIFEST}");
    let script = format!(
        "#!/bin/sh\ni=1\nwhile [ $i -le {lines} ]; do echo \"{app} line $i\"; i=$((i+1)); sleep 0.05; done\necho done >&2\n"
    );
    let dir = write_bundle(root, app, &manifest, &[("setup.sh", &script)]);
    let archive = root.join(format!("{app}.tgz"));
    let packed = Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(packed.success(), "tar czf failed");
    let sum = Command::new("sha256sum")
        .arg(&archive)
        .output()
        .expect("run sha256sum");
    let hex = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    Packed {
        size: std::fs::metadata(&archive).expect("archive").len(),
        digest: format!("sha256:{hex}"),
        dir,
        archive,
    }
}

/// Uploads a bundle and asks for a deployment of it.
pub fn deploy(api: &Api, bundle: &Packed, extra: Value) -> Reply {
    let path = format!("/api/v1/blobs/{}", bundle.digest);
    let put = api.request("PUT", &path, &[], Body::File(&bundle.archive));
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(
        put.json(),
        json!({"digest": bundle.digest, "size": bundle.size})
    );
    let manifest = std::fs::read_to_string(bundle.dir.join("berth.toml")).expect("manifest");
    let mut body = json!({
        "manifest": manifest,
        "bundle_digest": bundle.digest,
        "bundle_size": bundle.size,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    api.post("/api/v1/deployments", &body)
}
