//! The secret store through the real binaries: secrets set from standard
//! input, a file and the HTTP API, listed with their versions and never
//! their values; an operator refused a fleet-wide secret; no value in any
//! file of the data directory but the key, nor in the controller's log; a
//! copy of the store without the key file opens nothing (a controller on
//! it refuses to start, naming the key); `rotate-key`, refused while the
//! controller runs, re-encrypts everything, and the values open under the
//! new key (a second rotation opens every one of them).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::http::{Api, user_token};
use berth_tests::{Cli, Controller, bin};
use serde_json::{Value, json};

/// Values unique enough that finding one anywhere means it leaked.
const FROM_STDIN: &str = "stdin-Secret-4f1c9a-do-not-leak";
const FROM_FILE: &str = "file-Secret-8b2e77-do-not-leak";
const FROM_API: &str = "api-Secret-1d6a3e-do-not-leak";
const FLEET: &str = "fleet-Secret-92c0b4-do-not-leak";
const REGISTRY: &str = "registry-Password-5e8f21-do-not-leak";
const VALUES: [&str; 5] = [FROM_STDIN, FROM_FILE, FROM_API, FLEET, REGISTRY];

fn printed(cli: &Cli) -> Value {
    serde_json::from_str(cli.stdout.trim())
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}\n{}", cli.stdout, cli.stderr))
}

#[track_caller]
fn assert_no_value(what: &str, text: &str) {
    for value in VALUES {
        assert!(
            !text.contains(value),
            "{what} holds a secret value:\n{text}"
        );
    }
}

/// Every file under `dir`, but `skip`.
fn files(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, skip, found);
        } else if path != skip {
            found.push(path);
        }
    }
}

/// No file of the data directory but the key holds a value in clear.
#[track_caller]
fn assert_no_value_on_disk(data: &Path) {
    let mut found = Vec::new();
    files(data, &data.join("keys/secrets.key"), &mut found);
    // A PostgreSQL store's rows are read back from the database.
    if let Some(rows) = berth_tests::postgres::store_bytes(data) {
        assert!(rows.len() > 1_000, "read {} bytes of the store", rows.len());
        for value in VALUES {
            let leaked = rows
                .windows(value.len())
                .any(|window| window == value.as_bytes());
            assert!(!leaked, "the PostgreSQL store holds {value} in clear");
        }
    } else {
        assert!(found.len() > 5, "walked {found:?}");
    }
    for path in found {
        let bytes = std::fs::read(&path).unwrap_or_default();
        for value in VALUES {
            let leaked = bytes
                .windows(value.len())
                .any(|window| window == value.as_bytes());
            assert!(!leaked, "{} holds {value} in clear", path.display());
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// `berth-controller rotate-key` on `data`.
fn rotate_key(data: &Path) -> Cli {
    let output = Command::new(bin("berth-controller"))
        .args(["rotate-key", "--data-dir"])
        .arg(data)
        .output()
        .expect("run rotate-key");
    Cli {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `rotate-key` on the stopped controller's `data` and checks it
/// re-encrypted `versions` secret versions and `registries` passwords
/// (which it could only do by opening every one of them).
#[track_caller]
fn rotate_ok(data: &Path, versions: u32, registries: u32) {
    let rotated = rotate_key(data);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let counts =
        format!("re-encrypted {versions} secret versions, {registries} registry passwords and");
    assert!(rotated.stdout.contains(&counts), "{}", rotated.stdout);
    assert_no_value(
        "rotate-key",
        &format!("{}{}", rotated.stdout, rotated.stderr),
    );
}

/// `secret ls -o json` as (scope, name, version) rows.
fn listed(controller: &Controller) -> Vec<(String, String, u64)> {
    let cli = controller.berth(&["secret", "ls", "-o", "json"]);
    assert_no_value("secret ls", &cli.stdout);
    let list = cli.json();
    let rows = list.as_array().expect("a list").iter().map(|secret| {
        (
            secret["scope"].as_str().unwrap_or_default().to_string(),
            secret["name"].as_str().unwrap_or_default().to_string(),
            secret["version"].as_u64().unwrap_or_default(),
        )
    });
    rows.collect()
}

fn row(scope: &str, name: &str, version: u64) -> (String, String, u64) {
    (scope.to_string(), name.to_string(), version)
}

#[test]
fn secrets_stay_encrypted_show_no_value_and_survive_a_key_rotation() {
    let mut controller = Controller::start();
    let data = controller.dir.path().join("controller");
    assert_eq!(mode(&data.join("keys/secrets.key")), 0o600);
    assert_eq!(mode(&data.join("keys")), 0o700);

    // From standard input (one trailing newline dropped), then a file.
    let args = ["secret", "set", "web/prod", "DB_URL", "-o", "json"];
    let set = controller.berth_stdin(&args, &format!("{FROM_STDIN}\n"));
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(printed(&set)["version"], 1, "{}", set.stdout);
    let file = controller.dir.path().join("value.txt");
    std::fs::write(&file, FROM_FILE).expect("write the value file");
    let file_arg = file.to_string_lossy().to_string();
    let set = controller.berth(&[
        "secret",
        "set",
        "web/prod",
        "DB_URL",
        "--from-file",
        &file_arg,
    ]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(set.stdout.contains("version 2"), "{}", set.stdout);
    assert_no_value("secret set", &format!("{}{}", set.stdout, set.stderr));
    assert_eq!(listed(&controller), [row("web/prod", "DB_URL", 2)]);
    let table = controller.berth(&["secret", "ls"]).ok();
    assert!(
        table.contains("DB_URL") && table.contains("web/prod"),
        "{table}"
    );
    assert_no_value("secret ls", &table);

    // Refused: a value as an argument (without repeating it), an empty one.
    let argument = controller.berth(&["secret", "set", "web/prod", "X", FROM_STDIN]);
    assert_eq!(argument.code, 2, "{}", argument.stderr);
    assert_no_value(
        "the refusal",
        &format!("{}{}", argument.stdout, argument.stderr),
    );
    let empty = controller.berth_stdin(&["secret", "set", "web/prod", "X"], "\n");
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("empty"), "{}", empty.stderr);

    // The HTTP API, as an operator: an app's secret, not the fleet's.
    let (token, operator) = user_token(&controller, "opal", "operator");
    let api = Api::new(&controller.http_url, Some(&token));
    let json_type = [("Content-Type", "application/json")];
    let put = |path: &str, value: &str| {
        let body = json!({ "value": value }).to_string();
        api.request(
            "PUT",
            path,
            &json_type,
            berth_tests::http::Body::Text(&body),
        )
    };
    let made = put(
        "/api/v1/apps/api/environments/staging/secrets/API_KEY",
        FROM_API,
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.json()["version"], 1);
    let refused = put("/api/v1/secrets/SENTRY_DSN", FLEET);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "auth/permission-denied");
    let cli_refused = controller.berth_with(
        &operator,
        &[
            "secret",
            "set",
            "--fleet",
            "SENTRY_DSN",
            "--from-file",
            &file_arg,
            "-o",
            "json",
        ],
    );
    assert_eq!(cli_refused.code, 3, "{}", cli_refused.stderr);
    assert_eq!(
        printed(&cli_refused)["error"]["code"],
        "auth/permission-denied"
    );
    let fleet = controller.berth_stdin(&["secret", "set", "--fleet", "SENTRY_DSN"], FLEET);
    assert_eq!(fleet.code, 0, "{}", fleet.stderr);
    let listed_by_api = api.get("/api/v1/secrets");
    assert_eq!(listed_by_api.status, 200, "{}", listed_by_api.body);
    assert_no_value("GET /api/v1/secrets", &listed_by_api.body);
    assert_eq!(
        listed_by_api.json()["secrets"].as_array().map(Vec::len),
        Some(3)
    );

    // A registry password goes into the same store.
    let login = [
        "registry",
        "login",
        "registry.example.com",
        "--username",
        "deployer",
        "--password-stdin",
    ];
    let logged_in = controller.berth_stdin(&login, &format!("{REGISTRY}\n"));
    assert_eq!(logged_in.code, 0, "{}", logged_in.stderr);

    let audit = controller.berth(&["audit", "-o", "json"]).ok();
    assert!(
        audit.contains("secret.set") && audit.contains("version 2"),
        "{audit}"
    );
    assert_no_value("the audit log", &audit);

    // rotate-key refuses while the controller runs, saying to stop it.
    let busy = rotate_key(&data);
    assert_ne!(busy.code, 0, "{}", busy.stdout);
    assert!(busy.stderr.contains("Stop it first"), "{}", busy.stderr);

    controller.stop();
    assert_no_value("the controller's log", &controller.log());
    assert_no_value_on_disk(&data);
    refuse_a_copy_of_the_store_alone(controller.dir.path(), &data);

    let old_key = std::fs::read(data.join("keys/secrets.key")).expect("read the key");
    rotate_ok(&data, 4, 1);
    let new_key = std::fs::read(data.join("keys/secrets.key")).expect("read the key");
    assert_ne!(old_key, new_key);
    assert_eq!(new_key.len(), 32);
    assert_eq!(mode(&data.join("keys/secrets.key")), 0o600);
    assert!(!data.join("keys/secrets.key.new").exists());

    controller.resume();
    let expected = [
        row("*", "SENTRY_DSN", 1),
        row("api/staging", "API_KEY", 1),
        row("web/prod", "DB_URL", 2),
    ];
    assert_eq!(listed(&controller), expected);
    let set = controller.berth_stdin(&["secret", "set", "web/prod", "DB_URL"], FROM_STDIN);
    assert!(set.ok().contains("version 3"));

    // A second rotation opens every value under the first one's key.
    controller.stop();
    assert_no_value("the controller's log", &controller.log());
    rotate_ok(&data, 5, 1);
    assert_no_value_on_disk(&data);
    controller.resume();
    assert_eq!(listed(&controller)[2], row("web/prod", "DB_URL", 3));
}

/// The store and the certificates copied without `keys/`: a controller on
/// the copy refuses to start, naming the missing key file, and makes no
/// key over the secrets it cannot open.
fn refuse_a_copy_of_the_store_alone(scratch: &Path, data: &Path) {
    let copy = scratch.join("copy");
    std::fs::create_dir_all(&copy).expect("create the copy");
    // The sled store, or the record naming the PostgreSQL one.
    for part in ["store", "store.toml", "pki"] {
        if !data.join(part).exists() {
            continue;
        }
        let status = Command::new("cp")
            .arg("-a")
            .arg(data.join(part))
            .arg(copy.join(part))
            .status();
        assert!(status.is_ok_and(|status| status.success()), "copy {part}");
    }
    assert_no_value_on_disk(&copy);
    let output = Command::new(bin("berth-controller"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--data-dir",
        ])
        .arg(&copy)
        .output()
        .expect("run serve on the copy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it served a copy without its key");
    assert!(
        stderr.contains("keys/secrets.key is missing") && stderr.contains("put back the key file"),
        "{stderr}"
    );
    assert!(
        !copy.join("keys/secrets.key").exists(),
        "no new key was made"
    );
}
