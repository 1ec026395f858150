//! What the resource tests (`tests/resources.rs`) run beside an app: a tiny
//! key-value store made of Debian's static busybox (`nc -ll -e` runs a
//! script per connection that keeps each key as a file under `/data`), an
//! app command that counts its starts in that store, and views of what the
//! private Docker daemon holds for an app and environment (containers,
//! named volumes, networks), read with the docker CLI.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::docker::{Dockerd, static_busybox};

/// The store's image, imported by [`import`].
pub const KV_IMAGE: &str = "berth-test/kv:1";
/// A second tag of the same image: a changed resource spec.
pub const KV_IMAGE_NEXT: &str = "berth-test/kv:2";

/// A `[resources.NAME] command` serving the store on port 6379 with its
/// keys under `/data`; it prints `kv store ready` first, and exits at once
/// on SIGTERM (a shell as PID 1 would otherwise wait for Docker's kill).
pub const KV_COMMAND: &str =
    r#"["sh", "-c", 'trap "exit 0" TERM; echo kv store ready; nc -ll -p 6379 -e /kv.sh & wait']"#;

/// A resource command that starts, prints `kv broken` and never listens.
pub const BROKEN_COMMAND: &str =
    r#"["sh", "-c", 'trap "exit 0" TERM; echo kv broken; sleep 600 & wait']"#;

/// A `[container] command` that adds one to the key `hits` in the store
/// `db:6379` when it starts (retrying until the store answers), then
/// serves the count it got as `/count` on port 8080.
pub const COUNTER_COMMAND: &str = r#"["sh", "-c", 'until n=$(echo INCR hits | nc -w 2 db 6379) && [ -n "$n" ]; do sleep 0.2; done; echo "$n" > /www/count; echo "counted $n"; exec httpd -f -vv -p 8080 -h /www']"#;

/// The script `nc -e` runs for each connection: one request line,
/// `INCR KEY` or `GET KEY`, answered with the key's number.
const KV_SCRIPT: &str = r#"#!/bin/sh
read -r verb key
file="/data/$key"
case "$verb" in
INCR) n=$(cat "$file" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$file"; echo "$n" ;;
GET) cat "$file" 2>/dev/null || echo 0 ;;
*) echo "ERR $verb" ;;
esac
"#;

/// Imports the store's image as [`KV_IMAGE`] and tags it [`KV_IMAGE_NEXT`]:
/// static busybox with every applet linked, `/kv.sh` and an empty `/www`.
pub fn import(dockerd: &Dockerd) {
    let busybox = static_busybox().expect("checked when the daemon started");
    let root = dockerd.path().join("kv-rootfs");
    for dir in ["bin", "www", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).expect("rootfs directory");
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).expect("applet link");
        }
    }
    let script = root.join("kv.sh");
    std::fs::write(&script, KV_SCRIPT).expect("kv.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dockerd.import_dir(&root, KV_IMAGE);
    dockerd.docker_ok(&["tag", KV_IMAGE, KV_IMAGE_NEXT]);
}

/// One container berth made for an app and environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    /// Docker's state: running, exited, ...
    pub state: String,
    /// The resource's name; empty for the app's own containers.
    pub resource: String,
}

/// Every container (running or not) labeled with `app` and `environment`.
pub fn containers(dockerd: &Dockerd, app: &str, environment: &str) -> Vec<Row> {
    let out = dockerd.docker_ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("label=berth.app={app}"),
        "--filter",
        &format!("label=berth.environment={environment}"),
        "--format",
        r#"{{.ID}} {{.State}} {{.Label "berth.resource"}}"#,
    ]);
    out.lines()
        .map(|line| {
            let mut parts = line.split_whitespace();
            let mut next = || parts.next().unwrap_or_default().to_string();
            Row {
                id: next(),
                state: next(),
                resource: next(),
            }
        })
        .collect()
}

/// The states of the app's own containers (not its resources').
pub fn app_states(dockerd: &Dockerd, app: &str, environment: &str) -> Vec<String> {
    containers(dockerd, app, environment)
        .into_iter()
        .filter(|row| row.resource.is_empty())
        .map(|row| row.state)
        .collect()
}

/// The containers of resource `name`.
pub fn resource_rows(dockerd: &Dockerd, app: &str, environment: &str, name: &str) -> Vec<Row> {
    containers(dockerd, app, environment)
        .into_iter()
        .filter(|row| row.resource == name)
        .collect()
}

/// The one container of resource `name`; panics when there is not
/// exactly one.
pub fn resource_row(dockerd: &Dockerd, app: &str, environment: &str, name: &str) -> Row {
    let rows = resource_rows(dockerd, app, environment, name);
    assert_eq!(
        rows.len(),
        1,
        "one container of resource {name} of {app} in {environment}: {rows:?}"
    );
    rows.into_iter().next().expect("checked: one row")
}

/// Names of the named volumes labeled with `app` and `environment`.
pub fn volumes(dockerd: &Dockerd, app: &str, environment: &str) -> Vec<String> {
    dockerd
        .docker_ok(&[
            "volume",
            "ls",
            "--filter",
            &format!("label=berth.app={app}"),
            "--filter",
            &format!("label=berth.environment={environment}"),
            "--format",
            "{{.Name}}",
        ])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether the daemon has a network named exactly `name`.
pub fn has_network(dockerd: &Dockerd, name: &str) -> bool {
    dockerd
        .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .any(|line| line == name)
}

/// The networks container `id` is attached to.
pub fn networks_of(dockerd: &Dockerd, id: &str) -> Vec<String> {
    dockerd
        .docker_ok(&[
            "inspect",
            "--format",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            id,
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The value of `key` in the store running in container `id`, asked
/// inside that container.
pub fn stored(dockerd: &Dockerd, id: &str, key: &str) -> String {
    dockerd
        .docker_ok(&[
            "exec",
            id,
            "sh",
            "-c",
            &format!("echo GET {key} | nc 127.0.0.1 6379"),
        ])
        .trim()
        .to_string()
}

/// The rows of a listing (`berth resource snapshots -o json`), at any
/// depth, whose `resource` is `name`.
pub fn rows_of(listed: &Value, name: &str) -> Vec<Value> {
    let mut found = Vec::new();
    collect_rows(listed, name, &mut found);
    found
}

fn collect_rows(value: &Value, name: &str, found: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_rows(item, name, found)),
        Value::Object(map) if map.get("resource").is_some_and(|named| named == name) => {
            found.push(value.clone());
        }
        Value::Object(map) => map
            .values()
            .for_each(|item| collect_rows(item, name, found)),
        _ => {}
    }
}

/// The file name of the first value in `row` naming a `.tar` file.
pub fn tar_named(row: &Value) -> Option<String> {
    let named = row
        .as_object()?
        .values()
        .filter_map(Value::as_str)
        .find(|value| value.ends_with(".tar"))?;
    Some(Path::new(named).file_name()?.to_string_lossy().into_owned())
}

/// The names of the files in `dir` (none when it cannot be read).
pub fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The trimmed content of the entry whose path ends with `key` in the tar
/// archive at `path` (a snapshot of the store's volume).
pub fn archived(path: &Path, key: &str) -> Option<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).ok()?);
    archive.entries().ok()?.flatten().find_map(|mut entry| {
        let name = entry.path().ok()?.to_string_lossy().into_owned();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).ok()?;
        name.ends_with(key).then(|| content.trim().to_string())
    })
}

/// `[resources.db]` of `image` running `command` with the volume
/// `data:/data`, checked over TCP for at most `timeout`; with `snapshot =
/// true` when `snapshot`.
pub fn db_section(image: &str, command: &str, timeout: &str, snapshot: bool) -> String {
    format!(
        "[resources.db]\nimage = \"{image}\"\ncommand = {command}\nport = 6379\nvolumes = [\"data:/data\"]\nsnapshot = {snapshot}\n[resources.db.health]\ntcp = true\ninterval = \"200ms\"\ntimeout = \"{timeout}\"\n"
    )
}

/// Version `version` of the counting app `app` in `environment` on `host`
/// (its container adds one to `hits` in `db:6379` at start and serves the
/// count as `/count`), with the resource section `resources`.
pub fn counter_manifest(
    app: &str,
    host: &str,
    environment: &str,
    version: &str,
    resources: &str,
) -> String {
    format!(
        r#"app = "{app}"
environment = "{environment}"
version = "{version}"
[target]
hosts = ["{host}"]
[container]
image = "{KV_IMAGE}"
port = 8080
command = {COUNTER_COMMAND}
stop_timeout = "1s"
[health]
http = "/count"
interval = "200ms"
timeout = "30s"
{resources}"#
    )
}
