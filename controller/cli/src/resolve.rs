//! Naming a deployment where one is expected: by its id, or by its app
//! (with `--env`, needed only when the app runs in several environments),
//! which means the app's current (newest) deployment there.

use berth_proto::v1::{GetDeploymentRequest, ResolveDeploymentRequest};
use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;

use super::wire;
use super::{Failure, Session};

/// The deployment `target` names: an id, or else an app. Says on stderr
/// which deployment an app name stood for.
pub async fn deployment(
    session: &mut Session,
    target: &str,
    environment: Option<&str>,
) -> Result<Deployment, Failure> {
    if target.parse::<DeploymentId>().is_ok() {
        if let Some(environment) = environment {
            return Err(Failure::usage(format!(
                "--env {environment} goes with an app name, and `{target}` is a deployment id; drop --env, or name the app instead"
            )));
        }
        let reply = session
            .client
            .get_deployment(GetDeploymentRequest {
                id: target.to_string(),
            })
            .await?
            .into_inner();
        return wire::deployment(reply);
    }
    let reply = session
        .client
        .resolve_deployment(ResolveDeploymentRequest {
            app: target.to_string(),
            environment: environment.unwrap_or_default().to_string(),
        })
        .await?
        .into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    eprintln!(
        "{target} in {}: deployment {} ({}, {})",
        deployment.environment, deployment.id, deployment.version, deployment.status
    );
    Ok(deployment)
}
