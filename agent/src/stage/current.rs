//! What this host runs now, per app and environment: the deployment whose
//! deploy last succeeded here, with the task spec that started it (enough
//! to start its container again), the container's name and published port,
//! and the last repair. Kept in `current.json`, so a restarted agent still
//! knows; reported in every heartbeat, so `berth status` shows each host's
//! truth rather than what the controller last asked for.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_proto::v1::{HostApp, TaskSpec};
use serde::{Deserialize, Serialize};

/// What a look at an app found (`berth.v1.AppState` on the wire,
/// converted in [`crate::wire`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppState {
    /// Its container runs.
    Running,
    /// A script-only app (no container) whose deploy succeeded.
    Deployed,
    /// Its container is gone.
    Missing,
    /// Its container stopped.
    Stopped,
    /// The agent could not look.
    #[default]
    Unknown,
}

impl AppState {
    fn as_str(self) -> &'static str {
        match self {
            AppState::Running => "running",
            AppState::Deployed => "deployed",
            AppState::Missing => "missing",
            AppState::Stopped => "stopped",
            AppState::Unknown => "unknown",
        }
    }
}

/// An app's state and, when the agent knows more, why (free text: why a
/// container was not started again, why the agent could not look).
///
/// `current.json` keeps it as the text `berth status` shows (`running`,
/// `missing; could not start it again: ...`, `unknown: cannot reach
/// Docker at ...`), the form agents before protocol version 2 wrote, so
/// either reads the other's file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Observed {
    pub state: AppState,
    pub detail: String,
}

impl Observed {
    pub fn new(state: AppState, detail: impl Into<String>) -> Observed {
        Observed {
            state,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.as_str();
        match (self.state, self.detail.as_str()) {
            (_, "") => f.write_str(state),
            (AppState::Unknown, detail) => write!(f, "{state}: {detail}"),
            (_, detail) => write!(f, "{state}; {detail}"),
        }
    }
}

impl From<Observed> for String {
    fn from(observed: Observed) -> String {
        observed.to_string()
    }
}

impl From<String> for Observed {
    /// Reads the text [`Display`](std::fmt::Display) writes; any other
    /// text (an empty one from an agent that kept no state yet) is
    /// `Unknown` with the text as its detail.
    fn from(text: String) -> Observed {
        for state in [
            AppState::Running,
            AppState::Deployed,
            AppState::Missing,
            AppState::Stopped,
            AppState::Unknown,
        ] {
            let name = state.as_str();
            let separator = if state == AppState::Unknown {
                ": "
            } else {
                "; "
            };
            if text == name {
                return Observed::new(state, "");
            }
            if let Some(detail) = text
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(separator))
            {
                return Observed::new(state, detail);
            }
        }
        Observed::new(AppState::Unknown, text)
    }
}

/// One app as it runs on this host.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Current {
    pub deployment_id: String,
    pub app: String,
    pub environment: String,
    pub version: String,
    /// The deploy task's spec, as protobuf bytes.
    pub spec: Vec<u8>,
    /// The container's name, for a container app.
    pub container: Option<String>,
    pub host_port: Option<String>,
    /// What the last look found.
    #[serde(default)]
    pub state: Observed,
    pub since_ms: i64,
    #[serde(default)]
    pub last_repair: String,
    #[serde(default)]
    pub last_repair_ms: i64,
}

/// The apps of this host, by `app/environment`, and the ones a task is
/// changing right now (left alone by the repair loop).
pub struct Apps {
    path: PathBuf,
    apps: Mutex<BTreeMap<String, Current>>,
    busy: Mutex<HashSet<String>>,
    changed: tokio::sync::Notify,
}

fn key(app: &str, environment: &str) -> String {
    format!("{app}/{environment}")
}

/// The spec as `current.json` keeps it: without the values of its
/// secrets or its registry password, which never reach the agent's disk.
/// The secrets' names and files stay, so the repair loop knows the
/// container needs them ([`TaskSpec::secrets`]).
pub fn kept_spec(spec: &TaskSpec) -> TaskSpec {
    let mut kept = spec.clone();
    for secret in &mut kept.secrets {
        secret.value.clear();
    }
    if let Some(container) = kept.container.as_mut() {
        container.registry_auth = None;
    }
    kept
}

/// Marks an app as being changed by a task until dropped.
pub struct Busy<'a> {
    apps: &'a Apps,
    key: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.apps.busy().remove(&self.key);
    }
}

impl Apps {
    pub fn load(data_dir: &Path) -> Apps {
        let path = data_dir.join("current.json");
        let apps = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Apps {
            path,
            apps: Mutex::new(apps),
            busy: Mutex::new(HashSet::new()),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Current>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn busy(&self) -> MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves when what runs here changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn save(&self, apps: &BTreeMap<String, Current>) {
        self.changed.notify_one();
        match serde_json::to_vec_pretty(apps) {
            Ok(bytes) => {
                if let Err(err) = berth_shared::credentials::write_file(&self.path, &bytes, 0o600) {
                    tracing::warn!(path = %self.path.display(), error = %err, "could not save what this host runs");
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not encode what this host runs"),
        }
    }

    /// Marks the task's app as being changed until the guard drops.
    pub fn claim(&self, spec: &TaskSpec) -> Busy<'_> {
        let key = key(&spec.app, &spec.environment);
        self.busy().insert(key.clone());
        Busy { apps: self, key }
    }

    pub fn is_busy(&self, app: &str, environment: &str) -> bool {
        self.busy().contains(&key(app, environment))
    }

    /// Records a successful deploy: the app runs this deployment now.
    pub fn deployed(&self, spec: &TaskSpec, container: Option<String>, host_port: Option<String>) {
        use prost::Message;
        let state = if container.is_some() {
            AppState::Running
        } else {
            AppState::Deployed
        };
        let current = Current {
            deployment_id: spec.deployment_id.clone(),
            app: spec.app.clone(),
            environment: spec.environment.clone(),
            version: spec.version.clone(),
            spec: kept_spec(spec).encode_to_vec(),
            container,
            host_port,
            state: Observed::new(state, ""),
            since_ms: berth_shared::time::now_ms(),
            last_repair: String::new(),
            last_repair_ms: 0,
        };
        let mut apps = self.lock();
        apps.insert(key(&spec.app, &spec.environment), current);
        self.save(&apps);
    }

    /// The app no longer runs here; with `deployment`, only if it is that
    /// one (a delete of an older deployment leaves the current one).
    pub fn forget(&self, app: &str, environment: &str, deployment: Option<&str>) {
        let mut apps = self.lock();
        let id = key(app, environment);
        let matches = apps
            .get(&id)
            .is_some_and(|current| deployment.is_none_or(|d| current.deployment_id == d));
        if matches {
            apps.remove(&id);
            self.save(&apps);
        }
    }

    pub fn all(&self) -> Vec<Current> {
        self.lock().values().cloned().collect()
    }

    /// Records what a look found and, with `repair`, what was done about
    /// it, for the app's current deployment `deployment_id` only.
    pub fn observed(
        &self,
        current: &Current,
        state: &Observed,
        host_port: Option<String>,
        repair: Option<String>,
    ) {
        let mut apps = self.lock();
        let Some(entry) = apps
            .get_mut(&key(&current.app, &current.environment))
            .filter(|entry| entry.deployment_id == current.deployment_id)
        else {
            return;
        };
        let changed = entry.state != *state || entry.host_port != host_port || repair.is_some();
        entry.state = state.clone();
        entry.host_port = host_port;
        if let Some(repair) = repair {
            entry.last_repair = repair;
            entry.last_repair_ms = berth_shared::time::now_ms();
        }
        if changed {
            self.save(&apps);
        }
    }

    /// What runs here, for the heartbeat.
    pub fn report(&self) -> Vec<HostApp> {
        self.lock()
            .values()
            .map(|current| HostApp {
                app: current.app.clone(),
                environment: current.environment.clone(),
                deployment_id: current.deployment_id.clone(),
                version: current.version.clone(),
                container: current.container.clone().unwrap_or_default(),
                state: current.state.state.into(),
                state_detail: current.state.detail.clone(),
                host_port: current.host_port.clone().unwrap_or_default(),
                since_ms: current.since_ms,
                last_repair: current.last_repair.clone(),
                last_repair_ms: current.last_repair_ms,
                resources: Vec::new(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observed_state_keeps_the_text_berth_status_shows() {
        for (observed, text) in [
            (Observed::new(AppState::Running, ""), "running"),
            (Observed::new(AppState::Deployed, ""), "deployed"),
            (Observed::new(AppState::Missing, ""), "missing"),
            (
                Observed::new(AppState::Missing, "could not start it again: no such image"),
                "missing; could not start it again: no such image",
            ),
            (
                Observed::new(AppState::Stopped, "could not start it again: port taken"),
                "stopped; could not start it again: port taken",
            ),
            (Observed::new(AppState::Unknown, ""), "unknown"),
            (
                Observed::new(AppState::Unknown, "cannot reach Docker at /run/docker.sock"),
                "unknown: cannot reach Docker at /run/docker.sock",
            ),
        ] {
            assert_eq!(observed.to_string(), text);
            assert_eq!(Observed::from(text.to_string()), observed, "{text}");
        }
    }

    #[test]
    fn any_other_text_is_unknown_with_the_text_as_why() {
        assert_eq!(
            Observed::from("docker said no".to_string()),
            Observed::new(AppState::Unknown, "docker said no")
        );
        assert_eq!(
            Observed::from("runningish".to_string()),
            Observed::new(AppState::Unknown, "runningish")
        );
        assert_eq!(
            Observed::from(String::new()),
            Observed::new(AppState::Unknown, "")
        );
    }

    #[test]
    fn current_json_of_either_protocol_version_reads() {
        let written = r#"{"deployment_id":"d","app":"a","environment":"e","version":"1",
            "spec":[],"container":"c","host_port":null,
            "state":"stopped; could not start it again: gone","since_ms":5}"#;
        let current: Current = serde_json::from_str(written).expect("read");
        assert_eq!(
            current.state,
            Observed::new(AppState::Stopped, "could not start it again: gone")
        );
        let again = serde_json::to_value(&current).expect("write");
        assert_eq!(again["state"], "stopped; could not start it again: gone");
        let without: Current = serde_json::from_str(
            r#"{"deployment_id":"d","app":"a","environment":"e","version":"1",
            "spec":[],"container":null,"host_port":null,"since_ms":5}"#,
        )
        .expect("read a file from before the state was kept");
        assert_eq!(without.state.state, AppState::Unknown);
    }
}
