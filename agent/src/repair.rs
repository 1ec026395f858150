//! Keeps what runs on this host what should run: every few seconds (and so
//! right after a Docker restart) each deployed container app is looked up
//! by its name and labels; a container that is gone is started again from
//! the deployed version, a stopped one is started, and when Docker
//! published it on another host port, the Caddy route and the periodic
//! health check move to that port. Each repair is recorded with the app
//! (reported in the heartbeat, so the controller notes it in the
//! deployment's history and `berth status` shows it). Apps a task is
//! changing are left alone. At start, what tasks interrupted by a restart
//! left half done in Docker is put right first.

use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::TaskSpec;
use berth_shared::id::TaskId;
use bollard::Docker;
use bollard::query_parameters::InspectContainerOptions;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::Agent;
use crate::stage::current::{AppState, Current, Observed};
use crate::stage::docker;
use crate::stage::shell::{LineSink, Stream};

/// How often the apps are looked at.
pub const PERIOD: Duration = Duration::from_secs(2);

/// Sends a repair's progress lines to the agent's log.
struct Log<'a>(&'a str);

impl LineSink for Log<'_> {
    fn line(&self, _stream: Stream, line: String) {
        info!(app = %self.0, "repair: {line}");
    }
}

/// Looks at every deployed container app each [`PERIOD`] until `shutdown`.
pub async fn run(agent: Arc<Agent>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(PERIOD);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let apps: Vec<Current> = agent
            .current
            .all()
            .into_iter()
            .filter(|current| current.container.is_some())
            .collect();
        if apps.is_empty() {
            continue;
        }
        let docker = match docker::connect(&agent.docker_host).await {
            Ok(docker) => docker,
            Err(err) => {
                if err != last_error {
                    warn!(error = %err, "cannot reach Docker to look at the deployed apps; trying again");
                    last_error = err.clone();
                }
                for current in &apps {
                    let state =
                        Observed::new(AppState::Unknown, format!("cannot reach Docker at {err}"));
                    agent
                        .current
                        .observed(current, &state, current.host_port.clone(), None);
                }
                continue;
            }
        };
        last_error.clear();
        agent.resources.look(&docker, &agent.identity.name).await;
        for current in apps {
            if !agent.current.is_busy(&current.app, &current.environment) {
                look_at(&agent, &docker, &current).await;
            }
        }
    }
}

/// Puts right what tasks interrupted by the agent's restart left in
/// Docker, before anything else looks at the apps: a container a task
/// started that never took over is removed (the app's current one keeps
/// running), and one that had taken over retires the app's older
/// containers, as its task would have.
pub async fn finish_interrupted(agent: &Agent, task_ids: &[TaskId]) {
    if task_ids.is_empty() {
        return;
    }
    let task_ids: Vec<String> = task_ids.iter().map(ToString::to_string).collect();
    let made = match docker::connect(&agent.docker_host).await {
        Ok(docker) => docker::made_by(&docker, &agent.identity.name, &task_ids)
            .await
            .map(|made| (docker, made)),
        Err(err) => Err(err),
    };
    let (docker, made) = match made {
        Ok(found) => found,
        // A host without Docker ran no container.
        Err(err) => return info!(error = %err, "no containers of interrupted tasks looked for"),
    };
    for container in made {
        let took_over = agent.current.all().into_iter().find(|current| {
            current.app == container.app
                && current.environment == container.environment
                && current.container.as_deref() == Some(container.name.as_str())
        });
        match took_over {
            Some(current) => retire_replaced(&docker, &current, &container.name).await,
            None => {
                docker::remove(&docker, &container.name).await;
                info!(app = %container.app, container = %container.name, "removed a container an interrupted task started; the app's previous version keeps running");
            }
        }
    }
}

/// Retires the app's containers other than `name`, which took over in a
/// deploy that was interrupted before it could.
async fn retire_replaced(docker: &Docker, current: &Current, name: &str) {
    let Ok(spec) = TaskSpec::decode(current.spec.as_slice()) else {
        return;
    };
    let Some(container) = &spec.container else {
        return;
    };
    let sink = Log(&current.app);
    if let Err(err) = docker::retire_others(docker, &spec, container, name, &sink).await {
        warn!(app = %current.app, error = %err, "could not retire the containers an interrupted deploy replaced");
    }
}

/// Looks at one app's container and repairs what differs.
async fn look_at(agent: &Arc<Agent>, docker: &Docker, current: &Current) {
    let Some(name) = current.container.as_deref() else {
        return;
    };
    let Ok(spec) = TaskSpec::decode(current.spec.as_slice()) else {
        return;
    };
    let Some(container) = spec.container.clone() else {
        return;
    };
    let sink = Log(&current.app);
    let mut repairs = Vec::new();
    let state = match docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) if !spec.secrets.is_empty() => Observed::new(
            AppState::Missing,
            format!(
                "container {name} is gone, and it was started with secrets, which this agent never keeps; `berth redeploy {}` starts it again",
                current.app
            ),
        ),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => match docker::start(docker, &spec, &container, &sink).await {
            Ok(_) => {
                repairs.push(format!(
                    "container {name} was gone; started it again from deployment {} (version {})",
                    current.deployment_id, current.version
                ));
                Observed::new(AppState::Running, "")
            }
            Err(err) => Observed::new(
                AppState::Missing,
                format!("could not start it again: {err}"),
            ),
        },
        Err(err) => Observed::new(AppState::Unknown, err.to_string()),
        Ok(inspect) => {
            let state = inspect.state.unwrap_or_default();
            if state.running.unwrap_or(false) || state.restarting.unwrap_or(false) {
                Observed::new(AppState::Running, "")
            } else {
                match docker.start_container(name, None).await {
                    Ok(()) => {
                        let code = state
                            .exit_code
                            .map_or_else(String::new, |code| format!(" (exit code {code})"));
                        repairs.push(format!(
                            "container {name} had stopped{code}; started it again"
                        ));
                        Observed::new(AppState::Running, "")
                    }
                    Err(err) => Observed::new(
                        AppState::Stopped,
                        format!("could not start it again: {err}"),
                    ),
                }
            }
        }
    };
    let mut host_port = current.host_port.clone();
    if state.state == AppState::Running && container.port > 0 {
        let published = docker::host_port(docker, name, container.port).await;
        if published.is_some() && published != current.host_port {
            let port = published.clone().unwrap_or_default();
            let was = current.host_port.as_deref().unwrap_or("none");
            let moved = move_to_port(agent, current, &port).await;
            repairs.push(format!(
                "container {name} publishes host port {port} now (was {was}); {moved}"
            ));
            host_port = published;
        }
    }
    repairs.extend(resources_again(docker, &spec).await);
    let repair = (!repairs.is_empty()).then(|| repairs.join("; "));
    if let Some(repair) = &repair {
        info!(app = %current.app, environment = %current.environment, deployment_id = %current.deployment_id, %repair, "repaired");
    }
    agent.current.observed(current, &state, host_port, repair);
}

/// The deployed app's resources run while it does: one with no running
/// container (stopped by hand, or left stopped by an agent killed in the
/// middle of its replacement) is started again, its container of the
/// deployed spec first, else its newest. `berth stop --with-resources`
/// forgets the app first, so what it stopped stays stopped.
async fn resources_again(docker: &Docker, spec: &TaskSpec) -> Vec<String> {
    use crate::stage::docker::resource;
    let mut repairs = Vec::new();
    let Ok(listed) = resource::containers(docker, spec, None).await else {
        return repairs;
    };
    for wanted in &spec.resources {
        let mut of: Vec<&bollard::models::ContainerSummary> = listed
            .iter()
            .filter(|summary| resource::label(summary, resource::LABEL_RESOURCE) == wanted.name)
            .collect();
        let up = |summary: &&bollard::models::ContainerSummary| {
            resource::is_running(summary)
                || summary
                    .state
                    .as_ref()
                    .is_some_and(|state| state.to_string() == "restarting")
        };
        if of.is_empty() || of.iter().any(up) {
            continue;
        }
        of.sort_by_key(|summary| {
            (
                resource::label(summary, resource::LABEL_SPEC) == wanted.fingerprint,
                summary.created.unwrap_or(0),
            )
        });
        let name = crate::stage::docker::name_of(of[of.len() - 1]);
        match docker.start_container(&name, None).await {
            Ok(()) => repairs.push(format!(
                "resource {} had stopped; started its container {name} again",
                wanted.name
            )),
            Err(err) => {
                warn!(resource = %wanted.name, container = %name, error = %err, "could not start the resource again")
            }
        }
    }
    repairs
}

/// Moves the app's Caddy route and health check to `port`; says what moved.
async fn move_to_port(agent: &Arc<Agent>, current: &Current, port: &str) -> String {
    let mut moved = Vec::new();
    let id = crate::stage::caddy::route_id(&current.app, &current.environment);
    let route = agent
        .routes
        .all()
        .into_iter()
        .find(|route| route.id == id && route.deployment_id == current.deployment_id);
    if let Some(mut route) = route {
        route.upstream = format!("127.0.0.1:{port}");
        match agent.caddy.apply(&route).await {
            Ok(()) => {
                agent.routes.set(route.clone());
                moved.push(format!(
                    "moved Caddy route {} to {}",
                    route.id, route.upstream
                ));
            }
            Err(err) => moved.push(format!(
                "could not move Caddy route {} (tried again in {}s): {err}",
                route.id,
                PERIOD.as_secs()
            )),
        }
    }
    if agent.monitor.move_port(
        &current.app,
        &current.environment,
        &current.deployment_id,
        port,
    ) {
        moved.push("moved the health check".into());
    }
    if moved.is_empty() {
        "nothing else pointed at the old port".into()
    } else {
        moved.join(", ")
    }
}
