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
    /// What the last look found: `running`, `missing`, `stopped`, or why
    /// it could not look.
    #[serde(default)]
    pub state: String,
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
            "running"
        } else {
            "deployed"
        };
        let current = Current {
            deployment_id: spec.deployment_id.clone(),
            app: spec.app.clone(),
            environment: spec.environment.clone(),
            version: spec.version.clone(),
            spec: spec.encode_to_vec(),
            container,
            host_port,
            state: state.into(),
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
        state: &str,
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
        let changed = entry.state != state || entry.host_port != host_port || repair.is_some();
        entry.state = state.to_string();
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
                state: current.state.clone(),
                host_port: current.host_port.clone().unwrap_or_default(),
                since_ms: current.since_ms,
                last_repair: current.last_repair.clone(),
                last_repair_ms: current.last_repair_ms,
            })
            .collect()
    }
}
