//! What berth runs on this host (`berth inspect`) and a container's live
//! output.

use std::collections::BTreeMap;

use berth_shared::record::ContainerView;
use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use super::{LABEL_APP, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_VERSION, list, name_of, short};

/// What berth runs on this host, for `berth inspect`.
pub async fn inspect(
    docker: &Docker,
    host: &str,
    app: Option<&str>,
) -> Result<Vec<ContainerView>, String> {
    let mut views = Vec::new();
    for summary in list(docker, host, app, None).await? {
        let name = name_of(&summary);
        let labels = summary.labels.clone().unwrap_or_default();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        let restart_count = docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|inspect| inspect.restart_count)
            .unwrap_or(0);
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "5".into(),
            ..Default::default()
        };
        let mut logs = docker.logs(&name, Some(options));
        let mut recent = String::new();
        while let Some(Ok(output)) = logs.next().await {
            recent.push_str(&output.to_string());
        }
        views.push(ContainerView {
            name,
            id: short(summary.id.as_deref().unwrap_or_default()).to_string(),
            app: label(LABEL_APP),
            environment: label(LABEL_ENVIRONMENT),
            deployment_id: label(LABEL_DEPLOYMENT),
            version: label(LABEL_VERSION),
            image: summary.image.clone().unwrap_or_default(),
            state: summary
                .state
                .map(|state| state.to_string())
                .unwrap_or_default(),
            status: summary.status.clone().unwrap_or_default(),
            ports: super::ports_of(&summary),
            restart_count,
            recent_logs: recent.lines().map(str::to_string).collect(),
            health: String::new(),
            resource: String::new(),
            volumes: Vec::new(),
        });
    }
    views.extend(super::resource::inspect(docker, host, app).await?);
    views.sort_by(|a, b| (&a.app, &a.resource, &a.name).cmp(&(&b.app, &b.resource, &b.name)));
    Ok(views)
}

/// Details of a started container, for the stage result.
pub fn details(
    id: &str,
    name: &str,
    image: &str,
    host_port: Option<String>,
    retired: &[String],
) -> BTreeMap<String, String> {
    let mut details = BTreeMap::from([
        ("container_id".to_string(), short(id).to_string()),
        ("container_name".to_string(), name.to_string()),
        ("image".to_string(), image.to_string()),
    ]);
    details.extend(host_port.map(|port| ("host_port".to_string(), port)));
    if !retired.is_empty() {
        details.insert("replaced".to_string(), retired.join(","));
    }
    details
}

/// Follows a container's output from now on, in batches of lines; ends
/// when the container stops or `cancel` fires.
pub async fn follow_output(
    docker: &Docker,
    name: &str,
    cancel: &tokio_util::sync::CancellationToken,
    batch: impl FnMut(Vec<String>) -> bool,
) {
    output(docker, name, cancel, None, true, batch).await;
}

/// A container's output in batches of lines: its last `tail` lines (or,
/// without, only what it prints from now on), then with `follow` what it
/// prints until it stops or `cancel` fires.
pub async fn output(
    docker: &Docker,
    name: &str,
    cancel: &tokio_util::sync::CancellationToken,
    tail: Option<u32>,
    follow: bool,
    mut batch: impl FnMut(Vec<String>) -> bool,
) {
    let since = if tail.is_some() {
        0
    } else {
        i32::try_from(berth_shared::time::now_ms() / 1000).unwrap_or(0)
    };
    let options = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        since,
        tail: tail.map_or_else(|| "all".to_string(), |lines| lines.to_string()),
        ..Default::default()
    };
    let mut logs = docker.logs(name, Some(options));
    let mut pending = String::new();
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => return,
            chunk = logs.next() => chunk,
        };
        let Some(Ok(output)) = chunk else {
            if !pending.trim().is_empty() {
                batch(vec![pending.trim_end().to_string()]);
            }
            return;
        };
        pending.push_str(&output.to_string());
        let mut lines = Vec::new();
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            lines.push(line.trim_end().to_string());
        }
        if !lines.is_empty() && !batch(lines) {
            return;
        }
    }
}
