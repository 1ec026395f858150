//! The `[container]` section: the app as a Docker container. Validation
//! follows Docker's own rules closely enough that a manifest accepted here
//! is not refused by the Docker daemon for its shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Value;

use super::{Checker, join};
use crate::variables;

mod values;

use values::check_volume;
pub use values::{check_image, parse_memory, parse_size, registry_of};

/// The keys `[container]` and `[resources.NAME]` share.
pub(super) const CONTAINER_KEYS: [&str; 10] = [
    "image",
    "port",
    "host_port",
    "env",
    "volumes",
    "command",
    "memory",
    "cpus",
    "stop_timeout",
    "pull",
];

/// Smallest memory limit Docker accepts.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// A validated `[container]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Container {
    /// Image reference, e.g. `hello:1.4.2` or `registry.example.com/team/app@sha256:...`.
    pub image: String,
    /// The port the app listens on inside the container.
    pub port: Option<u16>,
    /// A fixed host port; without it the host picks a free one.
    pub host_port: Option<u16>,
    pub env: BTreeMap<String, String>,
    /// `host-path-or-volume:container-path[:ro|:rw]`.
    pub volumes: Vec<String>,
    /// Replaces the image's command when not empty.
    pub command: Vec<String>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in billionths of a CPU (Docker's NanoCpus).
    pub nano_cpus: Option<u64>,
    /// Grace between SIGTERM and SIGKILL when stopping (default 10 s).
    #[serde(default)]
    pub stop_timeout_secs: Option<u32>,
    /// When to pull the image; see [`Container::pull_policy`].
    #[serde(default)]
    pub pull: Option<PullPolicy>,
    /// How a running container is replaced; see [`Container::update_order`].
    #[serde(default)]
    pub update: Option<UpdateOrder>,
}

/// How a new version replaces the running container on a host (Docker
/// Swarm's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// The new container starts beside the old one, which stops once the
    /// new one is up (and healthy): no gap, but both run for a while.
    StartFirst,
    /// The old container stops first (freeing a fixed host port); if the
    /// new one fails to start or fails its health check, the old one
    /// starts again.
    StopFirst,
}

impl UpdateOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOrder::StartFirst => "start-first",
            UpdateOrder::StopFirst => "stop-first",
        }
    }

    /// The order a name means; `None` for anything else.
    pub fn parse(text: &str) -> Option<UpdateOrder> {
        match text {
            "start-first" => Some(UpdateOrder::StartFirst),
            "stop-first" => Some(UpdateOrder::StopFirst),
            _ => None,
        }
    }
}

/// When a host pulls the image from its registry (an image archive or a
/// built image never comes from a registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the host does not have the image.
    Missing,
    /// On every deploy, so a moved tag is followed.
    Always,
    /// Never: the image must be on the host.
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        }
    }

    /// The policy a name means; `None` for anything else.
    pub fn parse(text: &str) -> Option<PullPolicy> {
        match text {
            "missing" => Some(PullPolicy::Missing),
            "always" => Some(PullPolicy::Always),
            "never" => Some(PullPolicy::Never),
            _ => None,
        }
    }
}

impl Container {
    /// The `update` setting, or by default `stop-first` with a fixed
    /// `host_port` (two containers cannot publish the same port) and
    /// `start-first` otherwise.
    pub fn update_order(&self) -> UpdateOrder {
        self.update.unwrap_or(if self.host_port.is_some() {
            UpdateOrder::StopFirst
        } else {
            UpdateOrder::StartFirst
        })
    }

    /// The `pull` setting, or by default `always` for an image named by a
    /// tag that is meant to move (`latest`, or no tag at all, which is
    /// `latest`) and `missing` for any other tag or a digest.
    pub fn pull_policy(&self) -> PullPolicy {
        self.pull.unwrap_or_else(|| {
            if self.image.contains('@') {
                return PullPolicy::Missing;
            }
            let last = self.image.rsplit('/').next().unwrap_or_default();
            match last.rsplit_once(':') {
                Some((_, tag)) if tag != "latest" => PullPolicy::Missing,
                _ => PullPolicy::Always,
            }
        })
    }
}

impl Checker {
    /// `built`: the `[build]` section makes the image, so `image` must be
    /// left out (the built one, `berth/APP:VERSION`, is used).
    pub(super) fn container(&mut self, value: &Value, built: bool) -> Option<Container> {
        let path = "container";
        let table = self.table(path, value)?;
        let mut known = CONTAINER_KEYS.to_vec();
        known.push("update");
        self.unknown_keys(path, table, &known);
        Some(self.container_fields(path, table, built))
    }

    /// The keys a container and a resource share (`CONTAINER_KEYS`), read
    /// from `table` at `path`; unknown keys are the caller's to report.
    pub(super) fn container_fields(
        &mut self,
        path: &str,
        table: &toml::Table,
        built: bool,
    ) -> Container {
        let at = |key: &str| join(path, key);
        let mut container = Container::default();
        match table.get("image") {
            Some(_) if built => self.error(
                &at("image"),
                "is made by [build] (dockerfile); remove it, berth runs the built image berth/APP:VERSION",
            ),
            None if built => {}
            None => self.error(
                &at("image"),
                "is required; name the image, e.g. image = \"hello:1.4.2\"",
            ),
            Some(value) => {
                if let Some(image) = self.string(&at("image"), value) {
                    match check_image(image) {
                        Ok(()) => container.image = image.to_string(),
                        Err(message) => self.error(&at("image"), message),
                    }
                }
            }
        }
        container.port = table
            .get("port")
            .and_then(|value| self.port(&at("port"), value));
        container.host_port = table
            .get("host_port")
            .and_then(|value| self.port(&at("host_port"), value));
        if container.host_port.is_some() && container.port.is_none() {
            self.error(
                &at("host_port"),
                format!(
                    "needs {}, the port inside the container to publish",
                    at("port")
                ),
            );
        }
        if let Some(env) = table.get("env") {
            container.env = self.env(&join(path, "env"), env);
        }
        if let Some(volumes) = table.get("volumes") {
            container.volumes = self.strings(&at("volumes"), volumes, check_volume);
        }
        if let Some(command) = table.get("command") {
            container.command = self.strings(&at("command"), command, |part| {
                if part.contains('\0') {
                    Err("contains a NUL byte".into())
                } else {
                    Ok(())
                }
            });
        }
        if let Some(memory) = table.get("memory") {
            container.memory_bytes =
                self.string(&at("memory"), memory)
                    .and_then(|text| match parse_memory(text) {
                        Ok(bytes) => Some(bytes),
                        Err(message) => {
                            self.error(&at("memory"), message);
                            None
                        }
                    });
        }
        if let Some(cpus) = table.get("cpus") {
            container.nano_cpus = self.cpus(&at("cpus"), cpus);
        }
        if let Some(grace) = table.get("stop_timeout") {
            container.stop_timeout_secs =
                self.string(&at("stop_timeout"), grace).and_then(|text| {
                    match crate::time::parse_duration(text) {
                        Ok(grace) if grace.as_secs() >= 1 && grace.as_secs() <= 600 => {
                            u32::try_from(grace.as_secs()).ok()
                        }
                        Ok(_) => {
                            self.error(&at("stop_timeout"), "must be between 1s and 10m");
                            None
                        }
                        Err(message) => {
                            self.error(&at("stop_timeout"), message);
                            None
                        }
                    }
                });
        }
        if let Some(pull) = table.get("pull") {
            container.pull = self.string(&at("pull"), pull).and_then(|text| {
                let policy = PullPolicy::parse(text);
                if policy.is_none() {
                    self.error(
                        &at("pull"),
                        format!("is `{text}`; use \"missing\" (pull only when the host lacks the image), \"always\" or \"never\""),
                    );
                }
                policy
            });
        }
        if let Some(update) = table.get("update") {
            container.update = self.string(&at("update"), update).and_then(|text| {
                let order = UpdateOrder::parse(text);
                if order.is_none() {
                    self.error(
                        &at("update"),
                        format!("is `{text}`; use \"start-first\" (the new container starts beside the old one) or \"stop-first\" (the old one stops first)"),
                    );
                }
                order
            });
        }
        if let (Some(UpdateOrder::StartFirst), Some(host_port)) =
            (container.update, container.host_port)
        {
            self.error(
                &at("update"),
                format!("is \"start-first\", but host_port = {host_port} is fixed: the new container cannot publish port {host_port} while the old one holds it; use \"stop-first\" (the default with a fixed host_port: the old container stops, and starts again if the new one fails) or remove host_port so each container gets a free port"),
            );
        }
        container
    }

    fn port(&mut self, path: &str, value: &Value) -> Option<u16> {
        match value.as_integer().map(u16::try_from) {
            Some(Ok(port)) if port > 0 => Some(port),
            Some(_) => {
                self.error(path, "must be a port number from 1 to 65535");
                None
            }
            None => {
                self.error(
                    path,
                    format!("must be a whole number, not {}", value.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn env(&mut self, path: &str, value: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(table) = self.table(path, value) else {
            return env;
        };
        if table.len() > variables::MAX_COUNT {
            self.error(
                path,
                format!(
                    "sets {} variables; at most {}",
                    table.len(),
                    variables::MAX_COUNT
                ),
            );
            return env;
        }
        for (key, value) in table {
            let key_path = join(path, key);
            if let Err(err) = variables::check_name(key) {
                self.error(&key_path, err);
                continue;
            }
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Integer(number) => number.to_string(),
                Value::Boolean(flag) => flag.to_string(),
                other => {
                    self.error(
                        &key_path,
                        format!("must be a string, not {}", other.type_str()),
                    );
                    continue;
                }
            };
            if let Err(err) = variables::check_value(&text) {
                self.error(&key_path, err);
                continue;
            }
            env.insert(key.clone(), text);
        }
        env
    }

    fn cpus(&mut self, path: &str, value: &Value) -> Option<u64> {
        let cpus = match value {
            Value::Integer(number) => *number as f64,
            Value::Float(number) => *number,
            other => {
                self.error(
                    path,
                    format!(
                        "must be a number of CPUs such as 0.5 or 2, not {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        if !(0.01..=1024.0).contains(&cpus) {
            self.error(path, "must be between 0.01 and 1024");
            return None;
        }
        Some((cpus * 1e9).round() as u64)
    }
}
