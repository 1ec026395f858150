//! How the app's resources look on this host, for the heartbeat (`berth
//! status`): refreshed from Docker with each repair pass, each running
//! resource's health check asked at most every [`PROBE_EVERY`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_proto::v1::{HostApp, ResourceState};
use bollard::Docker;

use super::docker::resource;

/// How often a resource's health check is asked for the report.
const PROBE_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct ResourceWatch {
    /// Per app and environment, its resources as last seen.
    seen: Mutex<HashMap<(String, String), Vec<ResourceState>>>,
    /// Per container, when its check was asked and what it said.
    probed: Mutex<HashMap<String, (Instant, String)>>,
}

impl ResourceWatch {
    /// Looks at every resource container of this host.
    pub async fn look(&self, docker: &Docker, host: &str) {
        let Ok(listed) = resource::all_containers(docker, host, None).await else {
            return;
        };
        let mut seen: HashMap<(String, String), Vec<ResourceState>> = HashMap::new();
        let mut probed_now = HashMap::new();
        for summary in &listed {
            let name = crate::stage::docker::name_of(summary);
            let running = resource::is_running(summary);
            let cached = self
                .probed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&name)
                .cloned();
            let fresh = cached.filter(|(at, _)| running && at.elapsed() < PROBE_EVERY);
            let (at, health) = match fresh {
                Some(fresh) => fresh,
                None if !running => (Instant::now(), String::new()),
                None => (
                    Instant::now(),
                    resource::health_now(docker, summary, &name).await,
                ),
            };
            probed_now.insert(name.clone(), (at, health.clone()));
            let key = (
                resource::label(summary, crate::stage::docker::LABEL_APP),
                resource::label(summary, crate::stage::docker::LABEL_ENVIRONMENT),
            );
            seen.entry(key).or_default().push(ResourceState {
                name: resource::label(summary, resource::LABEL_RESOURCE),
                image: summary.image.clone().unwrap_or_default(),
                state: summary
                    .state
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                health,
                volumes: crate::stage::docker::volumes_of(summary),
            });
        }
        for states in seen.values_mut() {
            states.sort_by(|a, b| a.name.cmp(&b.name));
        }
        *self
            .probed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = probed_now;
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = seen;
    }

    /// Adds each app's resources to what the heartbeat reports.
    pub fn fill(&self, mut apps: Vec<HostApp>) -> Vec<HostApp> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for app in &mut apps {
            if let Some(states) = seen.get(&(app.app.clone(), app.environment.clone())) {
                app.resources = states.clone();
            }
        }
        apps
    }
}
