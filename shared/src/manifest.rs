//! The deployment manifest (`berth.toml`, SPEC §4): its model and its
//! validation. Validation walks the parsed TOML by hand so that it can report
//! every mistake at once, each with its key path.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::labels::{Labels, check_label_part};

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;
/// Default timeout of a script stage.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest script stage timeout accepted.
pub const MAX_SCRIPT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Most commands one script stage may hold.
pub const MAX_COMMANDS: usize = 100;
/// Longest single command line, in bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// The environment a request names, or the default one when it names none.
pub fn environment_or_default(environment: &str) -> String {
    if environment.is_empty() {
        DEFAULT_ENVIRONMENT.to_string()
    } else {
        environment.to_string()
    }
}

/// Default time a whole deployment may take before it is `timed_out`.
pub const DEFAULT_DEPLOYMENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The environment used when the manifest names none.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// A validated manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub app: String,
    pub environment: String,
    pub version: Option<String>,
    pub target: Target,
    pub setup: Option<Script>,
    pub stop: Option<Script>,
    /// The app as a Docker container (`[container]`).
    #[serde(default)]
    pub container: Option<Container>,
    /// When a new container counts as ready (`[health]`).
    #[serde(default)]
    pub health: Option<Health>,
    /// A Caddy route to the container (`[proxy]`).
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// Built once on a build agent before any host deploys (`[build]`).
    #[serde(default)]
    pub build: Option<Build>,
    /// How long the whole deployment may run (top-level `timeout`).
    #[serde(with = "duration_ms", default = "default_deployment_timeout")]
    pub timeout: Duration,
}

fn default_deployment_timeout() -> Duration {
    DEFAULT_DEPLOYMENT_TIMEOUT
}

/// Where a deployment goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Agents whose labels contain all these pairs.
    pub labels: Labels,
    /// Agents named here.
    pub hosts: Vec<String>,
    /// Hosts worked on at once; `None` means all of them.
    pub max_parallel: Option<u32>,
    /// Failed hosts tolerated before the rollout stops.
    pub max_failures: u32,
    /// What happens to the hosts already switched when the rollout fails.
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// What a failed rollout does with the hosts that already run the new
/// version (`[target] on_failure`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// They go back to the previous deployed version of the app and
    /// environment, so the whole fleet runs one version.
    #[default]
    Rollback,
    /// The new version is stopped on them.
    Stop,
    /// They keep the new version; `berth status` shows the split.
    Leave,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Stop => "stop",
            OnFailure::Leave => "leave",
        }
    }
}

/// A script stage: commands for `/bin/sh -c`, run in order in the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub run: Vec<String>,
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// One problem found in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path such as `target.max_parallel`.
    pub path: String,
    pub message: String,
}

/// Every problem found in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub issues: Vec<Issue>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        write!(
            f,
            "the manifest has {count} error{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(f, "\n  {}: {}", issue.path, issue.message)?;
        }
        Ok(())
    }
}

impl Manifest {
    /// Parses and validates manifest text, reporting every error at once.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(single(
                "(file)",
                format!("is {} bytes; the limit is {MAX_MANIFEST_BYTES}", text.len()),
            ));
        }
        let table: Table = text.parse().map_err(|err: toml::de::Error| {
            single(
                "(syntax)",
                err.message().trim().to_string() + &location(text, &err),
            )
        })?;
        let mut checker = Checker::default();
        let manifest = checker.manifest(&table);
        if checker.issues.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError {
                issues: checker.issues,
            })
        }
    }

    /// The timeout of the setup stage, or the default when there is none.
    pub fn setup_timeout(&self) -> Duration {
        self.setup
            .as_ref()
            .map_or(DEFAULT_SCRIPT_TIMEOUT, |script| script.timeout)
    }
}

fn location(text: &str, err: &toml::de::Error) -> String {
    err.span().map_or_else(String::new, |span| {
        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
        format!(" (line {line})")
    })
}

fn single(path: &str, message: String) -> ManifestError {
    ManifestError {
        issues: vec![Issue {
            path: path.into(),
            message,
        }],
    }
}

/// Sections the manifest format defines but this build does not run yet.
#[derive(Default)]
struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn manifest(&mut self, table: &Table) -> Manifest {
        const KEYS: [&str; 11] = [
            "app",
            "environment",
            "version",
            "timeout",
            "target",
            "setup",
            "stop",
            "build",
            "container",
            "proxy",
            "health",
        ];
        self.unknown_keys("", table, &KEYS);
        let app = match table.get("app") {
            None => {
                self.error("app", "is required; name the app, e.g. app = \"hello\"");
                String::new()
            }
            Some(value) => self.name("app", value).unwrap_or_default(),
        };
        let environment = match table.get("environment") {
            None => DEFAULT_ENVIRONMENT.to_string(),
            Some(value) => self.name("environment", value).unwrap_or_default(),
        };
        let version = table
            .get("version")
            .and_then(|value| self.version("version", value));
        let timeout = table
            .get("timeout")
            .and_then(|value| self.timeout("timeout", value))
            .unwrap_or(DEFAULT_DEPLOYMENT_TIMEOUT);
        let target = self.target(table.get("target"));
        let setup = table
            .get("setup")
            .and_then(|value| self.script("setup", value));
        let stop = table
            .get("stop")
            .and_then(|value| self.script("stop", value));
        let build = table.get("build").and_then(|value| self.build(value));
        // Judged from the text, so an invalid [build] still explains the
        // [container] it goes with.
        let built_image = table
            .get("build")
            .and_then(Value::as_table)
            .is_some_and(|build| build.contains_key("dockerfile"));
        let container = table
            .get("container")
            .and_then(|value| self.container(value, built_image));
        if built_image && !table.contains_key("container") {
            self.error(
                "build.dockerfile",
                "makes an image, but there is no [container] section to run it; add one (without image)",
            );
        }
        let has_port = container
            .as_ref()
            .is_some_and(|container| container.port.is_some());
        let health = match (table.get("health"), &container) {
            (Some(_), None) => {
                self.error(
                    "health",
                    "checks a container; add a [container] section or remove [health]",
                );
                None
            }
            (Some(value), Some(_)) => self.health(value, has_port),
            (None, _) => None,
        };
        let proxy = match (table.get("proxy"), &container) {
            (Some(_), None) => {
                self.error(
                    "proxy",
                    "routes to a container; add a [container] section or remove [proxy]",
                );
                None
            }
            (Some(value), Some(_)) => self.proxy(value, has_port),
            (None, _) => None,
        };
        Manifest {
            app,
            environment,
            version,
            target,
            setup,
            stop,
            container,
            health,
            proxy,
            build,
            timeout,
        }
    }

    fn unknown_keys(&mut self, prefix: &str, table: &Table, known: &[&str]) {
        for key in table.keys().filter(|key| !known.contains(&key.as_str())) {
            let path = join(prefix, key);
            self.error(
                &path,
                format!("is not a known key; expected one of: {}", known.join(", ")),
            );
        }
    }

    fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value.as_str() {
            Some(text) => Some(text),
            None => {
                self.error(path, format!("must be a string, not {}", value.type_str()));
                None
            }
        }
    }

    fn name(&mut self, path: &str, value: &Value) -> Option<String> {
        let text = self.string(path, value)?;
        let valid_chars = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if text.is_empty()
            || text.len() > 63
            || !valid_chars
            || text.starts_with('-')
            || text.ends_with('-')
        {
            self.error(
                path,
                format!("`{text}` must be 1 to 63 characters of a-z, 0-9 and `-`, not starting or ending with `-`"),
            );
            return None;
        }
        Some(text.to_string())
    }

    fn version(&mut self, path: &str, value: &Value) -> Option<String> {
        let text = self.string(path, value)?;
        if let Err(message) = check_version(text) {
            self.error(path, message);
            return None;
        }
        Some(text.to_string())
    }

    fn table<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Table> {
        match value.as_table() {
            Some(table) => Some(table),
            None => {
                self.error(path, format!("must be a table, not {}", value.type_str()));
                None
            }
        }
    }

    fn count(&mut self, path: &str, value: &Value, min: i64) -> Option<u32> {
        match value.as_integer() {
            Some(number) if number < min => {
                self.error(path, format!("must be at least {min}"));
                None
            }
            Some(number) => match u32::try_from(number) {
                Ok(number) => Some(number),
                Err(_) => {
                    self.error(path, "is too large");
                    None
                }
            },
            None => {
                self.error(
                    path,
                    format!("must be a whole number, not {}", value.type_str()),
                );
                None
            }
        }
    }

    fn target(&mut self, value: Option<&Value>) -> Target {
        let mut target = Target::default();
        let Some(table) = value.and_then(|value| self.table("target", value)) else {
            if value.is_none() {
                self.error(
                    "target",
                    "is required; add [target] with labels = { role = \"web\" } or hosts = [\"name\"]",
                );
            }
            return target;
        };
        self.unknown_keys(
            "target",
            table,
            &[
                "labels",
                "hosts",
                "max_parallel",
                "max_failures",
                "on_failure",
            ],
        );
        if let Some(labels) = table.get("labels") {
            target.labels = self.labels("target.labels", labels);
        }
        if let Some(hosts) = table.get("hosts") {
            target.hosts = self.strings("target.hosts", hosts, |host| {
                check_label_part(host, false).map_err(|err| format!("host name {err}"))
            });
        }
        if target.labels.is_empty()
            && target.hosts.is_empty()
            && !table.contains_key("labels")
            && !table.contains_key("hosts")
        {
            self.error(
                "target",
                "names no hosts; add labels = { role = \"web\" } or hosts = [\"name\"]",
            );
        }
        target.max_parallel = table
            .get("max_parallel")
            .and_then(|value| self.count("target.max_parallel", value, 1));
        target.max_failures = table
            .get("max_failures")
            .and_then(|value| self.count("target.max_failures", value, 0))
            .unwrap_or(0);
        if let Some(value) = table.get("on_failure")
            && let Some(text) = self.string("target.on_failure", value)
        {
            match text {
                "rollback" => target.on_failure = OnFailure::Rollback,
                "stop" => target.on_failure = OnFailure::Stop,
                "leave" => target.on_failure = OnFailure::Leave,
                _ => self.error(
                    "target.on_failure",
                    format!("is `{text}`; use \"rollback\" (hosts already switched go back to the previous version), \"stop\" (they stop the new one) or \"leave\" (they keep it)"),
                ),
            }
        }
        target
    }

    fn labels(&mut self, path: &str, value: &Value) -> Labels {
        let mut labels = Labels::new();
        let Some(table) = self.table(path, value) else {
            return labels;
        };
        for (key, value) in table {
            let key_path = join(path, key);
            if let Err(err) = check_label_part(key, true) {
                self.error(&key_path, format!("label key {err}"));
                continue;
            }
            let Some(text) = self.string(&key_path, value) else {
                continue;
            };
            match check_label_part(text, false) {
                Ok(()) => {
                    labels.insert(key.clone(), text.to_string());
                }
                Err(err) => self.error(&key_path, format!("label value {err}")),
            }
        }
        labels
    }

    fn strings(
        &mut self,
        path: &str,
        value: &Value,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Vec<String> {
        let Some(array) = value.as_array() else {
            self.error(
                path,
                format!("must be an array of strings, not {}", value.type_str()),
            );
            return Vec::new();
        };
        let mut items = Vec::new();
        for (index, item) in array.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            let Some(text) = self.string(&item_path, item) else {
                continue;
            };
            match check(text) {
                Ok(()) => items.push(text.to_string()),
                Err(message) => self.error(&item_path, message),
            }
        }
        items
    }

    fn script(&mut self, path: &str, value: &Value) -> Option<Script> {
        let table = self.table(path, value)?;
        self.unknown_keys(path, table, &["run", "timeout"]);
        let run_path = join(path, "run");
        let run = match table.get("run") {
            Some(value) => self.strings(&run_path, value, check_command),
            None => {
                self.error(
                    &run_path,
                    "is required; list the commands, e.g. run = [\"./install.sh\"]",
                );
                Vec::new()
            }
        };
        if table
            .get("run")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            self.error(
                &run_path,
                "is empty; list at least one command or remove the section",
            );
        }
        if run.len() > MAX_COMMANDS {
            self.error(
                &run_path,
                format!("has {} commands; the limit is {MAX_COMMANDS}", run.len()),
            );
        }
        let timeout = match table.get("timeout") {
            None => DEFAULT_SCRIPT_TIMEOUT,
            Some(value) => self.timeout(&join(path, "timeout"), value)?,
        };
        Some(Script { run, timeout })
    }

    fn timeout(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let text = self.string(path, value)?;
        match crate::time::parse_duration(text) {
            Ok(duration) if duration < Duration::from_secs(1) || duration > MAX_SCRIPT_TIMEOUT => {
                self.error(path, "must be between 1s and 24h");
                None
            }
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn check_command(command: &str) -> Result<(), String> {
    if command.trim().is_empty() {
        return Err("is an empty command".into());
    }
    if command.len() > MAX_COMMAND_BYTES {
        return Err(format!("is longer than {MAX_COMMAND_BYTES} bytes"));
    }
    if command.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(())
}

/// Checks a version string (from the manifest or `--version`).
pub fn check_version(text: &str) -> Result<(), String> {
    let valid = !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` must be 1 to 128 characters of letters, digits, `.`, `_`, `-`, `+` and `:`"
        ))
    }
}

/// Checks an environment name given on the command line.
pub fn check_environment(text: &str) -> Result<(), String> {
    let mut checker = Checker::default();
    checker
        .name("environment", &Value::String(text.to_string()))
        .map(|_| ())
        .ok_or_else(|| checker.issues.remove(0).message)
}

mod build;
mod container;
mod health;
mod proxy;
pub use build::{Build, BuildKind, DEFAULT_BUILD_TIMEOUT};
pub use container::{Container, PullPolicy, UpdateOrder, parse_size, registry_of};
pub use health::{Health, Probe};
pub use proxy::Proxy;

#[cfg(test)]
mod tests;
