//! Keeps checking deployed apps after their deploy, at a modest interval
//! (their `[health]` interval, at least [`MIN_PERIOD`]), and remembers the
//! latest result for the heartbeat, `berth status` and `berth inspect`.
//! What is watched is kept in `health.json`, so an agent restart goes on
//! checking.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_proto::v1::{AppHealth, HealthSpec};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::health::{Target, probe_once};

/// Shortest time between two checks of one app.
pub const MIN_PERIOD: Duration = Duration::from_secs(5);

/// One watched app.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Watch {
    pub deployment_id: String,
    pub app: String,
    pub environment: String,
    pub host_port: Option<String>,
    pub work_dir: Option<PathBuf>,
    /// The `[health]` check, as protobuf bytes (kept opaque on disk).
    pub spec: Vec<u8>,
    #[serde(default)]
    pub healthy: Option<bool>,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub since_ms: i64,
}

/// The watched apps of this host, by `app/environment`.
pub struct Monitor {
    path: PathBuf,
    watches: Mutex<BTreeMap<String, Watch>>,
    /// Every check's result, for `berth_agent_health_checks_total`.
    checks: crate::metrics::HealthChecks,
}

fn key(app: &str, environment: &str) -> String {
    format!("{app}/{environment}")
}

impl Monitor {
    pub fn load(data_dir: &Path) -> Monitor {
        let path = data_dir.join("health.json");
        let watches = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Monitor {
            path,
            watches: Mutex::new(watches),
            checks: Default::default(),
        }
    }

    fn save(&self, watches: &BTreeMap<String, Watch>) {
        if let Ok(bytes) = serde_json::to_vec_pretty(watches) {
            let _ = berth_shared::credentials::write_file(&self.path, &bytes, 0o600);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Watch>> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts watching a freshly deployed app (replacing its old version).
    pub fn watch(&self, watch: Watch) {
        let mut watches = self.lock();
        watches.insert(key(&watch.app, &watch.environment), watch);
        self.save(&watches);
    }

    /// Stops watching an app; with `deployment` only if it is that one.
    pub fn forget(&self, app: &str, environment: &str, deployment: Option<&str>) {
        let mut watches = self.lock();
        let id = key(app, environment);
        if watches.get(&id).is_some_and(|watch| {
            deployment.is_none_or(|deployment| watch.deployment_id == deployment)
        }) {
            watches.remove(&id);
            self.save(&watches);
        }
    }

    /// Points a watched app's checks at a new host port (its container
    /// came back on another one); true when it was watched.
    pub fn move_port(&self, app: &str, environment: &str, deployment: &str, port: &str) -> bool {
        let mut watches = self.lock();
        let Some(watch) = watches
            .get_mut(&key(app, environment))
            .filter(|watch| watch.deployment_id == deployment)
        else {
            return false;
        };
        watch.host_port = Some(port.to_string());
        self.save(&watches);
        true
    }

    /// The latest results, for the heartbeat.
    pub fn report(&self) -> Vec<AppHealth> {
        self.lock()
            .values()
            .filter_map(|watch| {
                Some(AppHealth {
                    deployment_id: watch.deployment_id.clone(),
                    app: watch.app.clone(),
                    environment: watch.environment.clone(),
                    healthy: watch.healthy?,
                    detail: watch.detail.clone(),
                    since_ms: watch.since_ms,
                })
            })
            .collect()
    }

    /// The latest result for one deployment (for `berth inspect`).
    pub fn of(&self, deployment_id: &str) -> Option<(bool, String)> {
        self.lock()
            .values()
            .find(|watch| watch.deployment_id == deployment_id)
            .and_then(|watch| Some((watch.healthy?, watch.detail.clone())))
    }

    /// The results of the checks, counted by app.
    pub fn checks(&self) -> &crate::metrics::HealthChecks {
        &self.checks
    }

    fn record(&self, id: &str, deployment_id: &str, healthy: bool, detail: String) -> Option<bool> {
        let mut watches = self.lock();
        let watch = watches
            .get_mut(id)
            .filter(|watch| watch.deployment_id == deployment_id)?;
        self.checks.record(&watch.app, healthy);
        let changed = watch.healthy != Some(healthy);
        if changed {
            watch.since_ms = berth_shared::time::now_ms();
        }
        watch.healthy = Some(healthy);
        watch.detail = detail;
        if changed {
            self.save(&watches);
        }
        Some(changed)
    }
}

/// Checks every watched app, each at its own interval, until `shutdown`.
pub async fn run(monitor: Arc<Monitor>, shutdown: CancellationToken) {
    use prost::Message;
    let mut next: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let watches: Vec<(String, Watch)> = monitor
            .lock()
            .iter()
            .map(|(id, watch)| (id.clone(), watch.clone()))
            .collect();
        let now = tokio::time::Instant::now();
        for (id, watch) in watches {
            if next.get(&id).is_some_and(|due| *due > now) {
                continue;
            }
            let Ok(spec) = HealthSpec::decode(watch.spec.as_slice()) else {
                continue;
            };
            let period = Duration::from_millis(spec.interval_ms).max(MIN_PERIOD);
            next.insert(id.clone(), now + period);
            let env = BTreeMap::from([(
                "BERTH_HOST_PORT".to_string(),
                watch.host_port.clone().unwrap_or_default(),
            )]);
            let target = Target {
                host_port: watch.host_port.as_deref(),
                work_dir: watch.work_dir.as_deref(),
                env: &env,
                address: None,
                inside: None,
            };
            let (healthy, detail) = probe_once(&spec, &target, &shutdown).await;
            if monitor.record(&id, &watch.deployment_id, healthy, detail.clone()) == Some(true) {
                let state = if healthy { "healthy" } else { "unhealthy" };
                tracing::warn!(app = %watch.app, environment = %watch.environment, deployment_id = %watch.deployment_id, %detail, "app health changed: now {state}");
            }
        }
    }
}
