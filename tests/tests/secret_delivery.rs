//! Secrets handed to deployments, through the real binaries: a script
//! sees every secret of its app's environment and the fleet-wide one its
//! `[secrets]` names as variables, a container on a real dockerd gets them
//! as env or as a file, and no value (nor its base64, wrapped or not, nor
//! a line of a multi-line value) is in any stored log line, `berth show`,
//! `berth logs`, API answer, page, or any file or log of the controller or
//! the agent. A changed secret is marked by `berth status` on the hosts
//! that run the older version until the next deploy picks it up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_tests::docker::{Dockerd, IMAGE};
use berth_tests::http::{Api, Body};
use berth_tests::{Agent, Controller, eventually, id_of, write_bundle};
use serde_json::json;
use sha2::Digest;

const DB_PASSWORD: &str = "db-Pass-7c41e0-never-shown";
const API_TOKEN: &str = "api-Token-0b9d55-never-shown";
const SENTRY_DSN: &str = "https://k3y-58a2f1@sentry.example/7";
const TLS_KEY: &str = "-----BEGIN BERTH TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7-line-one\nQ2hhbmdlIG1lIHBsZWFzZSBub3QgYSByZWFsIGtleSBhdCBhbGwgb2sgdGhhbmtz\n-----END BERTH TEST KEY-----";
const NEW_PASSWORD: &str = "db-Pass-v2-9e3a17-never-shown";
const VALUES: [&str; 5] = [DB_PASSWORD, API_TOKEN, SENTRY_DSN, TLS_KEY, NEW_PASSWORD];
const PASSWORD: &str = "correct horse battery";

/// The first 16 hex digits of the value's SHA-256, which a script prints
/// to prove it saw the value without printing it.
fn digest(value: &str) -> String {
    hex::encode(sha2::Sha256::digest(value.as_bytes()))[..16].to_string()
}

/// Every piece of text a value could leak as: itself, each line of it, and
/// every 16-character window of its base64 (with and without a trailing
/// newline, as `printf %s` and `echo` feed `base64`).
fn leaks(value: &str) -> Vec<String> {
    let mut forms: Vec<String> = vec![value.to_string()];
    forms.extend(
        value
            .lines()
            .filter(|line| line.len() >= 8)
            .map(str::to_string),
    );
    for data in [value.to_string(), format!("{value}\n")] {
        let encoded = STANDARD.encode(data.as_bytes());
        // The last group may carry the newline; leave its 4 characters.
        let stable = &encoded[..encoded.len().saturating_sub(4)];
        forms.extend(
            stable
                .as_bytes()
                .windows(16)
                .map(|window| String::from_utf8_lossy(window).into_owned()),
        );
    }
    forms
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for value in VALUES {
        for form in leaks(value) {
            assert!(
                !text.contains(&form),
                "{what} holds a form of a secret ({form:?}):\n{text}"
            );
        }
    }
}

/// Every file under `dir`, but `skip`.
fn files(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, skip, found);
        } else if path != skip {
            found.push(path);
        }
    }
}

/// No file under `dir` (but `skip`) holds a value in clear.
#[track_caller]
fn assert_no_value_under(dir: &Path, skip: &Path) -> usize {
    let mut found = Vec::new();
    files(dir, skip, &mut found);
    for path in &found {
        let bytes = std::fs::read(path).unwrap_or_default();
        for value in VALUES.iter().copied().chain(TLS_KEY.lines()) {
            let leaked = bytes
                .windows(value.len())
                .any(|window| window == value.as_bytes());
            assert!(!leaked, "{} holds {value:?} in clear", path.display());
        }
    }
    found.len()
}

fn set_secret(controller: &Controller, args: &[&str], value: &str) {
    let set = controller.berth_stdin(args, value);
    assert_eq!(set.code, 0, "{}", set.stderr);
}

/// A viewer signed in to the web pages: the `Cookie` header's value.
fn web_session(controller: &Controller) -> String {
    controller
        .berth(&["users", "add", "vera", "--role", "viewer"])
        .ok();
    let set = controller.berth_stdin(&["users", "set-password", "vera"], &format!("{PASSWORD}\n"));
    assert_eq!(set.code, 0, "{}", set.stderr);
    let api = Api::new(&controller.http_url, None);
    let signed = api.post(
        "/api/v1/session",
        &json!({ "name": "vera", "password": PASSWORD }),
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    let cookie = signed.header("set-cookie").expect("a cookie");
    cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn manifest(version: &str) -> String {
    format!(
        r#"app = "web"
environment = "prod"
version = "{version}"
[target]
labels = {{ role = "sec" }}
[env]
GREETING = "hello"
[secrets]
SENTRY_DSN = {{}}
API_TOKEN = {{ file = "/run/secrets/api_token" }}
[setup]
run = [
  "echo \"greeting=$GREETING\"",
  "echo \"db=$DB_PASSWORD\"",
  "echo \"db-sha=$(printf %s \"$DB_PASSWORD\" | sha256sum | cut -c1-16)\"",
  "echo \"api-sha=$(printf %s \"$API_TOKEN\" | sha256sum | cut -c1-16)\"",
  "echo \"dsn-sha=$(printf %s \"$SENTRY_DSN\" | sha256sum | cut -c1-16)\"",
  "printf %s \"$DB_PASSWORD\" | base64",
  "echo \"$DB_PASSWORD\" | base64",
  "echo \"key:\"; printf '%s\n' \"$TLS_KEY\"",
  "printf '%s\n' \"$TLS_KEY\" | base64",
  "echo \"token=$API_TOKEN dsn=$SENTRY_DSN\" >&2",
]
[container]
image = "{IMAGE}"
port = 8080
command = ["sh", "-c", "echo \"boot db=$DB_PASSWORD\"; exec httpd -f -vv -p 8080 -h /www"]
stop_timeout = "1s"
"#
    )
}

#[test]
fn a_script_and_a_container_get_their_secrets_and_no_value_leaks() {
    let Some(dockerd) = Dockerd::start("a_script_and_a_container_get_their_secrets") else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    let controller = Controller::start();
    let agent = Agent::join_with_args(
        &controller,
        "sec-1",
        "role=sec",
        &["--docker-host", &dockerd.host],
    );
    let scope = ["secret", "set", "web/prod"];
    let with = |name: &'static str| [scope[0], scope[1], scope[2], name];
    set_secret(
        &controller,
        &with("DB_PASSWORD"),
        &format!("{DB_PASSWORD}\n"),
    );
    set_secret(&controller, &with("API_TOKEN"), &format!("{API_TOKEN}\n"));
    let key_file = controller.dir.path().join("tls.key");
    std::fs::write(&key_file, TLS_KEY).expect("write key");
    let from_file = controller.berth(&[
        "secret",
        "set",
        "web/prod",
        "TLS_KEY",
        "--from-file",
        key_file.to_str().expect("path"),
    ]);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    std::fs::remove_file(&key_file).expect("remove the key's file");
    set_secret(
        &controller,
        &["secret", "set", "--fleet", "SENTRY_DSN"],
        SENTRY_DSN,
    );
    // A fleet-wide secret the manifest does not name stays out.
    set_secret(
        &controller,
        &["secret", "set", "--fleet", "UNNAMED"],
        "fleet-only-value",
    );

    let bundle = write_bundle(controller.dir.path(), "web", &manifest("1"), &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    let id = id_of(&deployment);

    // The script saw every value: their digests, printed by the script,
    // are the values' digests.
    let logs = controller.berth(&["logs", &id]).ok();
    for (label, value) in [
        ("db-sha", DB_PASSWORD),
        ("api-sha", API_TOKEN),
        ("dsn-sha", SENTRY_DSN),
    ] {
        let line = format!("{label}={}", digest(value));
        assert!(logs.contains(&line), "{line} not in\n{logs}");
    }
    assert!(logs.contains("greeting=hello"), "{logs}");
    assert!(logs.contains("db=***"), "{logs}");
    assert!(logs.contains("token=*** dsn=***"), "{logs}");
    assert!(
        logs.contains("secret files put in the container: API_TOKEN at /run/secrets/api_token"),
        "{logs}"
    );
    assert_clean("berth logs", &logs);

    // The record lists each secret by name, source and version, never its
    // value; the fleet's unnamed one is not there.
    let shown = controller.show(&id);
    let variables = shown["variables"].as_array().expect("variables");
    let secret = |name: &str| {
        variables
            .iter()
            .find(|variable| variable["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {variables:?}"))
            .clone()
    };
    for (name, scope) in [
        ("DB_PASSWORD", "web/prod"),
        ("API_TOKEN", "web/prod"),
        ("TLS_KEY", "web/prod"),
        ("SENTRY_DSN", "*"),
    ] {
        let variable = secret(name);
        assert_eq!(variable["source"], "secret", "{variable}");
        assert_eq!(variable["value"], "***", "{variable}");
        assert_eq!(variable["secret_version"], 1, "{variable}");
        assert_eq!(variable["secret_scope"], scope, "{variable}");
    }
    assert!(
        !variables
            .iter()
            .any(|variable| variable["name"] == "UNNAMED")
    );
    let text = controller.berth(&["show", &id]).ok();
    assert!(
        text.contains("DB_PASSWORD=*** (secret web/prod v1)"),
        "{text}"
    );
    assert_clean("berth show", &format!("{shown}\n{text}"));

    // The container has its variables as env, and API_TOKEN as a file
    // only.
    let containers = dockerd.containers_of("web");
    assert_eq!(containers.len(), 1, "{containers:?}");
    let name = containers[0].split_whitespace().next().unwrap_or_default();
    let env = dockerd.docker_ok(&["inspect", "-f", "{{json .Config.Env}}", name]);
    for expected in [
        format!("DB_PASSWORD={DB_PASSWORD}"),
        format!("SENTRY_DSN={SENTRY_DSN}"),
        "GREETING=hello".to_string(),
    ] {
        assert!(
            env.contains(&expected),
            "{expected} not in the container's env"
        );
    }
    assert!(
        !env.contains("API_TOKEN"),
        "a file secret is not a variable too"
    );
    let file = dockerd.docker_ok(&["exec", name, "cat", "/run/secrets/api_token"]);
    assert_eq!(file, API_TOKEN);
    let mode = dockerd.docker_ok(&["exec", name, "ls", "-ln", "/run/secrets/api_token"]);
    assert!(mode.starts_with("-r--r--r--"), "{mode}");

    // What the container printed, as `berth inspect` shows it, is masked.
    let inspected = eventually(
        "the container's output in inspect",
        100,
        Duration::from_millis(100),
        || {
            let text = controller.berth(&["inspect", "-o", "json"]).ok();
            text.contains("boot db=***").then_some(text)
        },
    );
    assert_clean("berth inspect", &inspected);

    // So is what it prints while `berth logs -f` relays it live (httpd
    // logs the URL a request asked for); the CLI's output is kept in its
    // log under the controller's directory, which is searched below.
    let port = berth_tests::docker::host_port(&deployment, 0);
    let follow = controller.berth_spawn(&["logs", &id, "-f"]);
    let relayed = eventually("the relayed request line", 50, Duration::ZERO, || {
        let _ = berth_tests::docker::http_get(&port, &format!("/relayed-{DB_PASSWORD}"));
        follow
            .stdout
            .wait_for("relayed-", Duration::from_millis(200))
    });
    assert!(relayed.contains("relayed-***"), "{relayed}");
    drop(follow);

    // The API and the pages show names and `***`.
    let (token, _) = berth_tests::http::user_token(&controller, "val", "viewer");
    let api = Api::new(&controller.http_url, Some(&token));
    for path in [
        format!("/api/v1/deployments/{id}"),
        format!("/api/v1/deployments/{id}/logs"),
        "/api/v1/status".to_string(),
        "/api/v1/secrets".to_string(),
    ] {
        let got = api.get(&path);
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert_clean(&path, &got.body);
    }
    let cookie = web_session(&controller);
    let web = Api::new(&controller.http_url, None);
    for page in [
        format!("/deployments/{id}"),
        "/apps/web".into(),
        "/status".into(),
    ] {
        let got = web.request("GET", &page, &[("Cookie", cookie.as_str())], Body::None);
        assert_eq!(got.status, 200, "{page}: {}", got.body);
        assert!(got.body.contains("DB_PASSWORD") || page != format!("/deployments/{id}"));
        assert_clean(&page, &got.body);
    }

    // A changed secret: `berth status` marks the host running the older
    // version, and the next deploy runs with the new one.
    set_secret(&controller, &with("DB_PASSWORD"), NEW_PASSWORD);
    let status = controller.berth(&["status"]).ok();
    assert!(
        status.contains("runs deployment") && status.contains("DB_PASSWORD (v1, now v2)"),
        "{status}"
    );
    let json = controller.berth(&["status", "-o", "json"]).json();
    assert_eq!(
        json[0]["host_states"][0]["secrets_changed"],
        json!(["DB_PASSWORD (v1, now v2)"]),
        "{json:#}"
    );
    let bundle = write_bundle(controller.dir.path(), "web2", &manifest("2"), &[]);
    let (code, second, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{second:#}");
    let logs = controller.berth(&["logs", &id_of(&second)]).ok();
    let line = format!("db-sha={}", digest(NEW_PASSWORD));
    assert!(logs.contains(&line), "{line} not in\n{logs}");
    assert_clean("berth logs of the second deploy", &logs);
    let settled = eventually(
        "status without older secrets",
        200,
        Duration::from_millis(100),
        || {
            let json = controller.berth(&["status", "-o", "json"]).json();
            let states = json[0]["host_states"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (!states.is_empty()
                && states
                    .iter()
                    .all(|state| state.get("secrets_changed").is_none() && state["version"] == "2"))
            .then_some(json)
        },
    );
    assert_eq!(settled[0]["version"], "2", "{settled:#}");
    let status = controller.berth(&["status"]).ok();
    assert!(!status.contains("older secrets"), "{status}");

    // Nothing on disk or in a process log holds a value: the controller's
    // directory (its store, its log, every CLI call's log) but its key,
    // and the agent's data directory and log.
    let key = controller.dir.path().join("controller/keys/secrets.key");
    assert!(key.exists(), "the key is at {}", key.display());
    let walked = assert_no_value_under(controller.dir.path(), &key);
    assert!(walked > 10, "walked {walked} files");
    let walked = assert_no_value_under(&agent.dir, Path::new("/"));
    assert!(walked > 3, "walked {walked} files of the agent");
    let agent_log = std::fs::read_to_string(agent.dir.with_extension("log")).unwrap_or_default();
    assert!(agent_log.contains("task"), "the agent logged: {agent_log}");
    assert_clean("the agent's log", &agent_log);
    assert_clean("the controller's log", &controller.log());

    controller.berth(&["delete", &id_of(&second)]).ok();
}

#[test]
fn a_missing_fleet_secret_or_a_short_value_is_refused_with_the_fix() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "sec-2", "role=sec");
    let manifest = "app = \"api\"\n[target]\nlabels = { role = \"sec\" }\n[secrets]\nNOPE = {}\n[setup]\nrun = [\"true\"]\n";
    let bundle = write_bundle(controller.dir.path(), "api", manifest, &[]);
    let (code, _, stderr) = controller.deploy(&bundle);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("`NOPE` does not exist")
            && stderr.contains("berth secret set --fleet NOPE"),
        "{stderr}"
    );
    let short = controller.berth_stdin(&["secret", "set", "api/development", "PIN"], "123\n");
    assert_ne!(short.code, 0);
    assert!(
        short.stderr.contains("PIN") && short.stderr.contains("cannot be masked"),
        "{}",
        short.stderr
    );
    // A file for a script-only app is refused in the manifest.
    let manifest = "app = \"api\"\n[target]\nlabels = { role = \"sec\" }\n[secrets]\nX = { file = \"/run/x\" }\n[setup]\nrun = [\"true\"]\n";
    let bundle = write_bundle(controller.dir.path(), "api2", manifest, &[]);
    let (code, _, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("secrets.X.file"), "{stderr}");
}
