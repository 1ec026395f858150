//! The HTTP API fuzzed with schemathesis (from PyPI, pinned, installed by
//! `scripts/toolchain.sh` into `target/venv-schemathesis`) against a real
//! controller and agent over loopback, with an operator's API token: every
//! route of `/api/v1/openapi.json` is sent examples, boundary values,
//! random and invalid input and short stateful sequences, and the run
//! fails on any 5xx, a response the document does not describe (status,
//! content type, headers or body, events of event streams included), input
//! the document forbids being accepted, a method or credential not
//! refused, or a request not answered within its timeout (a hang).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::http::{self, Api, deploy, tar_bundle, user_token};
use berth_tests::{Agent, Controller, Running, skip};
use serde_json::{Value, json};

/// The schemathesis the test runs: `BERTH_SCHEMATHESIS`, or the one
/// `scripts/toolchain.sh` installs.
fn schemathesis() -> PathBuf {
    std::env::var_os("BERTH_SCHEMATHESIS").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/venv-schemathesis/bin/schemathesis")
        },
        PathBuf::from,
    )
}

/// How the run is configured beyond its flags. A request not answered
/// within `request-timeout` fails the run as a hang: far below the
/// controller's own 60 s limit, far above any honest answer here. An event
/// stream is answered at once and then may rightly stay open (every change
/// on `/api/v1/events`, a deployment another tool reported until it
/// reports the end): schemathesis reads such a stream until it is silent
/// for the operation's `request-timeout`, checks the events it got, and
/// moves on, so the stream routes get a short one.
const CONFIG: &str = r#"
request-timeout = 20

[[operations]]
include-path-regex = "/events$"
request-timeout = 3

[[operations]]
include-path-regex = "/logs$"
request-timeout = 3
"#;

/// Test cases per operation and phase: the whole run stays near a minute.
const MAX_EXAMPLES: &str = "40";
/// How long the whole run may take (it takes about a minute).
const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// The document as the fuzzer gets it: the served one, with the seeded
/// records as the examples of the path parameters (so the examples phase
/// reaches real records, not only 404s), and the create's wait for
/// offline agents capped at 2 s (the document's 3600 is true, but one
/// create the fuzzer makes wait would spend the run; the agent stays online,
/// so no wait should happen anyway). Revoking an API token is left out:
/// the stateful phase finds the fuzzer's own token in `GET
/// /api/v1/api-tokens` and revokes it, after which every call is
/// rightly refused (`http/tests/people.rs` covers that route in process).
fn fuzzed_document(served: &Value, examples: &[(&str, &str)]) -> Value {
    let mut document = served.clone();
    let revoke = document["paths"]["/api/v1/api-tokens/{id}"]
        .as_object_mut()
        .and_then(|item| item.remove("delete"));
    assert!(revoke.is_some(), "the document has the revoke route");
    if document["paths"]["/api/v1/api-tokens/{id}"]
        .as_object()
        .is_some_and(|item| item.keys().all(|key| key == "parameters"))
        && let Some(paths) = document["paths"].as_object_mut()
    {
        paths.remove("/api/v1/api-tokens/{id}");
    }
    if let Some(paths) = document["paths"].as_object_mut() {
        let operations = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut());
        for operation in operations {
            let parameters = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap_or_default().to_string();
                let example = examples.iter().find(|(wanted, _)| *wanted == name);
                if let (Some((_, value)), Some("path")) = (example, parameter["in"].as_str()) {
                    parameter["example"] = json!(value);
                }
            }
        }
    }
    let wait = &mut document["components"]["schemas"]["NewDeploymentBody"]["properties"]["wait_for_agents_secs"];
    assert_eq!(wait["maximum"], 3600, "the document caps the wait: {wait}");
    wait["maximum"] = json!(2);
    document
}

#[test]
fn schemathesis_finds_no_server_error_or_undocumented_answer() {
    let test = "schemathesis_finds_no_server_error_or_undocumented_answer";
    if !http::has_curl() {
        return skip(test, "curl (scripts/toolchain.sh installs it)");
    }
    let fuzzer = schemathesis();
    if !fuzzer.exists() {
        let reason = format!(
            "schemathesis at {} (scripts/toolchain.sh installs it; BERTH_SCHEMATHESIS names another)",
            fuzzer.display()
        );
        return skip(test, &reason);
    }
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    let (token, _) = user_token(&controller, "opal", "operator");
    let api = Api::new(&controller.http_url, Some(&token));

    // Records for the fuzzer to read: a deployed app with log lines, and
    // a deployment another tool reported.
    let bundle = tar_bundle(controller.dir.path(), "hello", 3);
    let created = deploy(&api, &bundle, json!({"message": "seed"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_string();
    assert_eq!(controller.wait_quiet(&id)["status"], "deployed");
    let external = json!({"app": "billing", "version": "1.0", "status": "success",
        "extra_metadata": {"cluster": "eu-1"}});
    let reported = api.post("/api/v1/deployment-events", &external);
    assert_eq!(reported.status, 200, "{}", reported.body);

    // The document needs no credential.
    let served = Api::new(&controller.http_url, None).get("/api/v1/openapi.json");
    assert_eq!(served.status, 200, "{}", served.body);
    let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let checked_in = std::fs::read_to_string(checked_in).expect("read docs/openapi.json");
    assert_eq!(
        served.body, checked_in,
        "the served document is docs/openapi.json"
    );
    let examples = [
        ("id", id.as_str()),
        ("app", "hello"),
        ("name", "web-1"),
        ("digest", bundle.digest.as_str()),
    ];
    let document = fuzzed_document(&served.json(), &examples);
    let work = controller.dir.path().join("fuzz");
    std::fs::create_dir_all(&work).expect("create the fuzz directory");
    let schema = work.join("openapi.json");
    std::fs::write(&schema, document.to_string()).expect("write the fuzzed document");

    let config = work.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("write the schemathesis configuration");

    let mut command = Command::new(&fuzzer);
    command.current_dir(&work).arg("--config-file").arg(&config);
    command.arg("run").arg(&schema);
    command.args(["--url", &controller.http_url]);
    command.args(["--header", &format!("Authorization: Bearer {token}")]);
    // Every check but `positive_data_acceptance`, which would want any
    // schema-valid request accepted: a blob that is not its digest, a
    // manifest that does not validate or a `redeploy` with `queue` are
    // refused by design, with a 400 the document lists.
    command.args(["--checks", "all"]);
    command.args(["--exclude-checks", "positive_data_acceptance"]);
    command.args(["--phases", "examples,coverage,fuzzing,stateful"]);
    command.args(["--max-examples", MAX_EXAMPLES]);
    // The same cases on every run (no seed, no example database), one at
    // a time.
    command.args(["--generation-deterministic", "--workers", "1"]);
    command.arg("--no-color");
    let started = std::time::Instant::now();
    let mut run = Running::spawn(command, &work.join("schemathesis.log"));
    let code = run.wait_exit(RUN_DEADLINE);
    let output = run.stdout.all().join("\n");
    assert_eq!(
        code,
        Some(0),
        "schemathesis found problems (or did not finish within {RUN_DEADLINE:?}):\n{output}\n{}",
        run.log_tail()
    );
    eprintln!("{output}\nschemathesis ran for {:?}", started.elapsed());
    let log = controller.log();
    assert!(!log.contains("panicked"), "the controller panicked:\n{log}");
    let whoami = api.get("/api/v1/whoami");
    assert_eq!(
        whoami.status, 200,
        "the controller serves on: {}",
        whoami.body
    );
}
