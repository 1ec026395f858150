//! The deployment manifest (`berth.toml`, SPEC §4): its model and its
//! validation. Validation walks the parsed TOML by hand so that it can report
//! every mistake at once, each with its key path.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::labels::Labels;

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

/// Whether manifest text names its environment (a top-level
/// `environment` key); a manifest that does not goes to the app's default
/// environment, or `default`.
pub fn names_environment(text: &str) -> bool {
    text.parse::<Table>()
        .is_ok_and(|table| table.contains_key("environment"))
}

/// Default time a whole deployment may take before it is `timed_out`.
pub const DEFAULT_DEPLOYMENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The environment used when the manifest names none.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// A validated manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Variables for the scripts (as their environment) and the container
    /// (as its env): the `[env]` table.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How it uses its secrets (`[secrets]`): fleet-wide ones to add, and
    /// the ones the container gets as files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretUse>,
    /// What runs beside the app (`[resources.NAME]`): its database, cache
    /// or queue, in the app's network on its hosts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Resource>,
    /// How long the whole deployment may run (top-level `timeout`).
    #[serde(with = "duration_ms", default = "default_deployment_timeout")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub timeout: Duration,
}

fn default_deployment_timeout() -> Duration {
    DEFAULT_DEPLOYMENT_TIMEOUT
}

/// Where a deployment goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Target {
    /// Agents whose labels contain all these pairs.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Script {
    pub run: Vec<String>,
    #[serde(with = "duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
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
    fn manifest(&mut self, table: &Table) -> Manifest {
        const KEYS: [&str; 14] = [
            "app",
            "resources",
            "env",
            "secrets",
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
        let env = table
            .get("env")
            .map(|value| self.env("env", value))
            .unwrap_or_default();
        let secrets = table
            .get("secrets")
            .map(|value| self.secrets(value, container.is_some()))
            .unwrap_or_default();
        let resources = table
            .get("resources")
            .map(|value| self.resources(value))
            .unwrap_or_default();
        Manifest {
            app,
            environment,
            env,
            secrets,
            resources,
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
}

mod build;
mod container;
mod read;
mod sections;

use read::join;
pub use read::{check_environment, check_version};
mod health;
mod proxy;
mod resources;
mod secrets;
pub use build::{Build, BuildKind, DEFAULT_BUILD_TIMEOUT};
pub use container::{Container, PullPolicy, UpdateOrder, parse_size, registry_of};
pub use health::{Health, Probe};
pub use proxy::Proxy;
pub use resources::{
    DEFAULT_SNAPSHOT_KEEP, MAX_RESOURCES, Resource, check_resource_name, start_order,
};
pub use secrets::{MAX_FILE_PATH, SecretUse};

#[cfg(test)]
mod resources_tests;
#[cfg(test)]
mod tests;
