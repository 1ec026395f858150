//! The app's resources as `berth inspect` shows them: state, image,
//! volumes, and the answer of their health check now.

use berth_shared::record::ContainerView;
use bollard::Docker;
use bollard::models::ContainerSummary;

use super::super::{name_of, short};
use super::{LABEL_HEALTH, LABEL_PORT, LABEL_RESOURCE, address, all_containers, is_running, label};
use crate::stage::docker::{LABEL_APP, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT};

/// The app's resources on this host as `berth inspect` shows them: state,
/// image, volumes, and the answer of their health check now.
pub async fn inspect(
    docker: &Docker,
    host: &str,
    app: Option<&str>,
) -> Result<Vec<ContainerView>, String> {
    let mut views = Vec::new();
    for summary in all_containers(docker, host, app).await? {
        let name = name_of(&summary);
        let recent = crate::stage::docker::tail(docker, &name, 5).await;
        let volumes = super::super::volumes_of(&summary);
        let health = if is_running(&summary) {
            health_now(docker, &summary, &name).await
        } else {
            String::new()
        };
        views.push(ContainerView {
            id: short(summary.id.as_deref().unwrap_or_default()).to_string(),
            app: label(&summary, LABEL_APP),
            environment: label(&summary, LABEL_ENVIRONMENT),
            deployment_id: label(&summary, LABEL_DEPLOYMENT),
            version: String::new(),
            image: summary.image.clone().unwrap_or_default(),
            state: summary
                .state
                .map(|state| state.to_string())
                .unwrap_or_default(),
            status: summary.status.clone().unwrap_or_default(),
            ports: super::super::ports_of(&summary),
            restart_count: 0,
            recent_logs: recent.lines().map(str::to_string).collect(),
            resource: label(&summary, LABEL_RESOURCE),
            volumes,
            health,
            name,
        });
    }
    Ok(views)
}

/// One probe of a running resource's health check (2 s at most):
/// `healthy`, `unhealthy: WHY`, or empty without a check.
pub async fn health_now(docker: &Docker, summary: &ContainerSummary, name: &str) -> String {
    use base64::Engine;
    use prost::Message;
    let encoded = label(summary, LABEL_HEALTH);
    let Some(spec) = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .ok()
        .filter(|bytes| !bytes.is_empty())
        .and_then(|bytes| berth_proto::v1::HealthSpec::decode(bytes.as_slice()).ok())
    else {
        return String::new();
    };
    let network = summary
        .host_config
        .as_ref()
        .and_then(|config| config.network_mode.clone())
        .unwrap_or_default();
    let port = summary
        .labels
        .as_ref()
        .and_then(|labels| labels.get(LABEL_PORT))
        .cloned()
        .unwrap_or_default();
    let address = address(docker, name, &network)
        .await
        .map(|ip| format!("{ip}:{port}"));
    let env = std::collections::BTreeMap::new();
    let target = crate::stage::health::Target {
        host_port: None,
        address,
        inside: Some((docker, name)),
        work_dir: None,
        env: &env,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let probe = crate::stage::health::probe_once(&spec, &target, &cancel);
    match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok((true, _)) => "healthy".to_string(),
        Ok((false, why)) => format!("unhealthy: {why}"),
        Err(_) => "unhealthy: no answer within 2s".to_string(),
    }
}
