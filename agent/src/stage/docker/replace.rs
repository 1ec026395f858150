//! Replacing and stopping an app's containers on this host: retire the
//! others once the new one runs (start-first), stop them first and start
//! them again if the new one fails (stop-first), `berth stop` and `berth
//! delete`.

use berth_proto::v1::{ContainerSpec, TaskSpec};
use bollard::Docker;
use bollard::query_parameters::StopContainerOptions;

use crate::stage::shell::Stream;

use super::{
    LABEL_APP, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_TASK, LineSink, list, name_of, remove,
    stop_grace,
};

/// berth's containers of the task's app and environment on this host.
async fn app_containers(
    docker: &Docker,
    task: &TaskSpec,
) -> Result<Vec<bollard::models::ContainerSummary>, String> {
    list(docker, &task.host, Some(&task.app), Some(&task.environment)).await
}

/// A container of berth's on this host, by the labels that say whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Made {
    pub name: String,
    pub app: String,
    pub environment: String,
}

/// berth's containers on `host` that one of `task_ids` made.
pub async fn made_by(
    docker: &Docker,
    host: &str,
    task_ids: &[String],
) -> Result<Vec<Made>, String> {
    let summaries = list(docker, host, None, None).await?;
    Ok(summaries
        .iter()
        .filter_map(|summary| {
            let labels = summary.labels.as_ref()?;
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            task_ids.contains(&label(LABEL_TASK)).then(|| Made {
                name: name_of(summary),
                app: label(LABEL_APP),
                environment: label(LABEL_ENVIRONMENT),
            })
        })
        .collect())
}

/// Stops one container with the app's stop grace.
async fn stop(
    docker: &Docker,
    name: &str,
    container: &ContainerSpec,
) -> Result<(), bollard::errors::Error> {
    let options = StopContainerOptions {
        t: Some(stop_grace(container)),
        ..Default::default()
    };
    docker.stop_container(name, Some(options)).await
}

/// Stops and removes the app's other containers once the new one runs.
pub async fn retire_others(
    docker: &Docker,
    task: &TaskSpec,
    container: &ContainerSpec,
    keep: &str,
    sink: &dyn LineSink,
) -> Result<Vec<String>, String> {
    let mut retired = Vec::new();
    for summary in app_containers(docker, task).await? {
        let name = name_of(&summary);
        if name == keep {
            continue;
        }
        let _ = stop(docker, &name, container).await;
        remove(docker, &name).await;
        sink.line(
            Stream::System,
            format!("stopped and removed the previous container {name}"),
        );
        retired.push(name);
    }
    Ok(retired)
}

/// `update = "stop-first"`: stops the app's other running containers
/// (kept, not removed, so they can start again) before the new one starts
/// on the same host port. Returns their names.
pub async fn stop_others(
    docker: &Docker,
    task: &TaskSpec,
    container: &ContainerSpec,
    keep: &str,
    sink: &dyn LineSink,
) -> Result<Vec<String>, String> {
    let mut stopped = Vec::new();
    for summary in app_containers(docker, task).await? {
        let name = name_of(&summary);
        if name == keep
            || summary.state != Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
        {
            continue;
        }
        if let Err(err) = stop(docker, &name, container).await {
            // The ones stopped already serve again: nothing was changed.
            start_again(docker, &stopped, sink).await;
            return Err(format!(
                "stop-first: could not stop the previous container {name}: {err}; nothing was changed"
            ));
        }
        sink.line(
            Stream::System,
            format!(
                "stop-first: stopped the previous container {name} before starting the new one"
            ),
        );
        stopped.push(name);
    }
    Ok(stopped)
}

/// Starts the containers [`stop_others`] stopped again, after the new one
/// failed; says what happened, for the failure message.
pub async fn start_again(docker: &Docker, names: &[String], sink: &dyn LineSink) -> String {
    let mut problems = Vec::new();
    for name in names {
        match docker.start_container(name, None).await {
            Ok(()) => sink.line(
                Stream::System,
                format!("stop-first: started the previous container {name} again"),
            ),
            Err(err) => problems.push(format!("{name}: {err}")),
        }
    }
    if problems.is_empty() {
        format!(
            "the previous container ({}) was started again and serves as before",
            names.join(", ")
        )
    } else {
        format!(
            "the previous container could not be started again ({}); start it with `docker start` or deploy again",
            problems.join("; ")
        )
    }
}

/// Removes every container of one deployment on this host (`berth delete`).
pub async fn remove_deployment(
    docker: &Docker,
    task: &TaskSpec,
    sink: &dyn LineSink,
) -> Result<usize, String> {
    let mut removed = 0;
    for summary in app_containers(docker, task).await? {
        let labels = summary.labels.clone().unwrap_or_default();
        if labels.get(LABEL_DEPLOYMENT) != Some(&task.deployment_id) {
            continue;
        }
        let name = name_of(&summary);
        remove(docker, &name).await;
        sink.line(Stream::System, format!("removed container {name}"));
        removed += 1;
    }
    Ok(removed)
}

/// Stops every running container of the app (`berth stop`).
pub async fn stop_app(
    docker: &Docker,
    task: &TaskSpec,
    container: &ContainerSpec,
    sink: &dyn LineSink,
) -> Result<usize, String> {
    let mut stopped = 0;
    for summary in app_containers(docker, task).await? {
        let name = name_of(&summary);
        stop(docker, &name, container)
            .await
            .map_err(|err| format!("stop {name}: {err}"))?;
        sink.line(Stream::System, format!("stopped container {name}"));
        stopped += 1;
    }
    Ok(stopped)
}
