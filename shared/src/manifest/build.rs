//! The `[build]` section: built once, on one agent whose labels match,
//! before any host deploys. Either a Dockerfile (the image is shipped to
//! the hosts through the controller) or commands that make one artifact
//! file (each host gets it in its work dir before setup).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Value;

use super::sections::check_command;
use super::{Checker, join};
use crate::labels::Labels;

/// Default time a build may take.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// What the build makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BuildKind {
    /// `docker build` of the bundle with this Dockerfile (a path in the
    /// bundle), an optional stage `target`, and build `args`.
    Dockerfile {
        dockerfile: String,
        target: Option<String>,
        args: BTreeMap<String, String>,
    },
    /// Commands run in the bundle that leave the file `artifact` behind.
    Artifact { run: Vec<String>, artifact: String },
}

/// A validated `[build]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Build {
    /// The agents that may build: those whose labels contain all these.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
    pub kind: BuildKind,
    #[serde(with = "super::duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub timeout: Duration,
}

impl Build {
    /// True when the build makes the container's image.
    pub fn makes_image(&self) -> bool {
        matches!(self.kind, BuildKind::Dockerfile { .. })
    }
}

/// A path inside the bundle: relative, without `..`, not empty.
fn check_bundle_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty; name a file in the bundle".into());
    }
    if path.starts_with('/') {
        return Err(format!(
            "`{path}` is absolute; give a path inside the bundle"
        ));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!("`{path}` leaves the bundle (`..`)"));
    }
    if path.len() > 4096 || path.contains('\0') {
        return Err("is not a usable path".into());
    }
    Ok(())
}

impl Checker {
    pub(super) fn build(&mut self, value: &Value) -> Option<Build> {
        let path = "build";
        let table = self.table(path, value)?;
        self.unknown_keys(
            path,
            table,
            &[
                "labels",
                "dockerfile",
                "target",
                "args",
                "run",
                "artifact",
                "timeout",
            ],
        );
        let labels = match table.get("labels") {
            Some(labels) => self.labels("build.labels", labels),
            None => {
                self.error(
                    "build.labels",
                    "is required; pick the build agents, e.g. labels = { role = \"build\" }",
                );
                Labels::new()
            }
        };
        if table.get("labels").is_some() && labels.is_empty() {
            self.error(
                "build.labels",
                "is empty; pick the build agents, e.g. labels = { role = \"build\" }",
            );
        }
        let timeout = match table.get("timeout") {
            None => DEFAULT_BUILD_TIMEOUT,
            Some(value) => self.timeout("build.timeout", value)?,
        };
        let path_of = |checker: &mut Checker, key: &str| -> Option<String> {
            let key_path = join(path, key);
            let text = checker.string(&key_path, table.get(key)?)?;
            match check_bundle_path(text) {
                Ok(()) => Some(text.to_string()),
                Err(message) => {
                    checker.error(&key_path, message);
                    None
                }
            }
        };
        let dockerfile = path_of(self, "dockerfile");
        let artifact = path_of(self, "artifact");
        let kind = match (table.contains_key("dockerfile"), table.contains_key("run")) {
            (true, true) => {
                self.error(
                    "build",
                    "has both dockerfile and run; a build makes an image (dockerfile) or an artifact (run + artifact), not both",
                );
                return None;
            }
            (false, false) => {
                self.error(
                    "build",
                    "says nothing to build; add dockerfile = \"Dockerfile\", or run = [...] with artifact = \"PATH\"",
                );
                return None;
            }
            (true, false) => {
                for key in ["artifact"] {
                    if table.contains_key(key) {
                        self.error(&join(path, key), "goes with run, not with dockerfile");
                    }
                }
                let target = table
                    .get("target")
                    .and_then(|value| self.string("build.target", value))
                    .map(str::to_string);
                let args = table
                    .get("args")
                    .map(|value| self.env("build.args", value))
                    .unwrap_or_default();
                BuildKind::Dockerfile {
                    dockerfile: dockerfile?,
                    target,
                    args,
                }
            }
            (false, true) => {
                for key in ["target", "args"] {
                    if table.contains_key(key) {
                        self.error(&join(path, key), "goes with dockerfile, not with run");
                    }
                }
                let run = table
                    .get("run")
                    .map(|value| self.strings("build.run", value, check_command))
                    .unwrap_or_default();
                if run.is_empty() {
                    self.error(
                        "build.run",
                        "is empty; list the commands that make the artifact",
                    );
                }
                if !table.contains_key("artifact") {
                    self.error(
                        "build.artifact",
                        "is required with run; name the file the commands make, e.g. artifact = \"dist/app.tar.gz\"",
                    );
                }
                BuildKind::Artifact {
                    run,
                    artifact: artifact?,
                }
            }
        };
        Some(Build {
            labels,
            kind,
            timeout,
        })
    }
}
