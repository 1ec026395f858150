//! Why `berth logs -f` ended: when a newer deployment of the same app and
//! environment took over (it was superseded, or its container was retired
//! by a deployment still running), say so and how to follow the new one,
//! instead of ending silently.

use berth_proto::v1::{GetDeploymentRequest, ListDeploymentsRequest};
use berth_shared::record::{Deployment, Transition};
use berth_shared::state::DeploymentStatus;

use super::Session;
use super::wire;

/// The notice for deployment `id` once its follow ended, if a newer
/// deployment replaces it.
pub async fn notice(session: &mut Session, id: &str) -> Option<String> {
    let reply = session
        .client
        .get_deployment(GetDeploymentRequest { id: id.to_string() })
        .await
        .ok()?
        .into_inner();
    let deployment: Deployment = wire::deployment(reply).ok()?;
    if let Some(newer) = superseded_by(deployment.status, &deployment.transitions) {
        return Some(format!(
            "deployment {id} was superseded by {newer}; follow the new one with `berth logs {newer} -f`"
        ));
    }
    if deployment.status != DeploymentStatus::Deployed {
        return None;
    }
    // Its container was retired by a newer deployment not yet deployed.
    let reply = session
        .client
        .list_deployments(ListDeploymentsRequest {
            app: deployment.app.clone(),
            environment: deployment.environment.clone(),
            limit: 1,
            ..ListDeploymentsRequest::default()
        })
        .await
        .ok()?
        .into_inner();
    let newest: Vec<Deployment> = wire::deployments(reply.deployments).ok()?;
    let newer = newest
        .into_iter()
        .next()
        .filter(|newer| newer.id > deployment.id)?;
    Some(format!(
        "deployment {id} is being replaced by {} ({}); follow the new one with `berth logs {} -f`",
        newer.id, newer.status, newer.id
    ))
}

/// The deployment that superseded one with this status and history.
fn superseded_by(status: DeploymentStatus, transitions: &[Transition]) -> Option<String> {
    if status != DeploymentStatus::Superseded {
        return None;
    }
    transitions
        .iter()
        .rev()
        .filter(|transition| transition.to == "superseded")
        .find_map(|transition| {
            let reason = transition.reason.as_deref()?;
            let newer = reason.strip_prefix("superseded by ")?;
            Some(newer.split_whitespace().next()?.to_string())
        })
}

#[cfg(test)]
mod tests {
    use berth_shared::record::{Timestamp, Transition};
    use berth_shared::state::DeploymentStatus;

    use super::superseded_by;

    #[test]
    fn the_superseding_deployment_comes_from_the_history() {
        let transitions = vec![Transition {
            at: Timestamp(1),
            subject: "deployment".into(),
            from: Some("deployed".into()),
            to: "superseded".into(),
            reason: Some("superseded by 01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F".into()),
            seq: None,
            task: None,
        }];
        assert_eq!(
            superseded_by(DeploymentStatus::Superseded, &transitions).as_deref(),
            Some("01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F")
        );
        assert_eq!(
            superseded_by(DeploymentStatus::Deployed, &transitions),
            None
        );
    }
}
