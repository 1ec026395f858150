//! The `[health]` section: how to tell that a new container is ready, before
//! it takes over from the old one. Exactly one of `http` (a path on the
//! container's port; 2xx and 3xx pass), `tcp = true` (the port accepts a
//! connection) or `run` (commands in the bundle that exit 0).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Value;

use super::{Checker, duration_ms, join};

/// Default time between two attempts.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default time the new container has to become healthy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a health check does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// GET this path on the container's published port.
    Http(String),
    /// Connect to the container's published port.
    Tcp,
    /// Run these commands (in the bundle) on the host.
    Run(Vec<String>),
}

/// A validated `[health]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub probe: Probe,
    #[serde(with = "duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub interval: Duration,
    /// How long the new container has to pass.
    #[serde(with = "duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub timeout: Duration,
    /// Failures in this first stretch do not count.
    #[serde(with = "duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub start_period: Duration,
}

impl Checker {
    pub(super) fn health(&mut self, value: &Value, has_port: bool) -> Option<Health> {
        self.health_at("health", value, has_port)
    }

    /// A health table at `path` (`health`, or a resource's `resources.NAME.health`).
    pub(super) fn health_at(
        &mut self,
        path: &str,
        value: &Value,
        has_port: bool,
    ) -> Option<Health> {
        let table = self.table(path, value)?;
        self.unknown_keys(
            path,
            table,
            &["http", "tcp", "run", "interval", "timeout", "start_period"],
        );
        let given: Vec<&str> = ["http", "tcp", "run"]
            .into_iter()
            .filter(|key| table.contains_key(*key))
            .collect();
        if given.len() != 1 {
            self.error(path, "needs exactly one check: http = \"/healthz\", tcp = true, or run = [\"./check.sh\"]");
            return None;
        }
        let probe = match given[0] {
            "http" => {
                let target = self.string(&join(path, "http"), &table["http"])?;
                if !target.starts_with('/')
                    || target.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    self.error(
                        &join(path, "http"),
                        format!("`{target}` must be a path starting with `/`, without spaces"),
                    );
                    return None;
                }
                Probe::Http(target.to_string())
            }
            "tcp" => {
                if table["tcp"].as_bool() != Some(true) {
                    self.error(&join(path, "tcp"), "must be true (or leave it out)");
                    return None;
                }
                Probe::Tcp
            }
            _ => {
                let run = self.strings(&join(path, "run"), &table["run"], |command| {
                    if command.trim().is_empty() {
                        Err("is an empty command".into())
                    } else {
                        Ok(())
                    }
                });
                if run.is_empty() {
                    self.error(&join(path, "run"), "lists no command");
                    return None;
                }
                Probe::Run(run)
            }
        };
        if matches!(probe, Probe::Http(_) | Probe::Tcp) && !has_port {
            self.error(
                path,
                format!(
                    "http and tcp checks need {}, the port it listens on",
                    if path == "health" {
                        "container.port"
                    } else {
                        "port"
                    }
                ),
            );
        }
        let interval = self.bounded(
            &join(path, "interval"),
            table.get("interval"),
            DEFAULT_INTERVAL,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        );
        let timeout = self.bounded(
            &join(path, "timeout"),
            table.get("timeout"),
            DEFAULT_TIMEOUT,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        );
        let start_period = self.bounded(
            &join(path, "start_period"),
            table.get("start_period"),
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(3600),
        );
        Some(Health {
            probe,
            interval,
            timeout,
            start_period,
        })
    }

    fn bounded(
        &mut self,
        path: &str,
        value: Option<&Value>,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        let Some(text) = self.string(path, value) else {
            return default;
        };
        match crate::time::parse_duration(text) {
            Ok(duration) if duration >= min && duration <= max => duration,
            Ok(_) => {
                self.error(
                    path,
                    format!(
                        "must be between {} and {}",
                        crate::time::format_duration(min),
                        crate::time::format_duration(max)
                    ),
                );
                default
            }
            Err(message) => {
                self.error(path, message);
                default
            }
        }
    }
}
