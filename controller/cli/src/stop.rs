//! `berth stop` and `berth delete`: ask the controller, then follow the
//! hosts doing it in the live view.

use berth_proto::v1::{GetDeploymentRequest, StopAppRequest};
use berth_shared::exit;
use berth_shared::record::{Deployment, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use clap::Args;

use super::deploy::summary;
use super::live::follow;
use super::output::{emit, progress};
use super::wire;
use super::{Outcome, Session};

#[derive(Args, Debug)]
pub struct StopArgs {
    /// The app to stop (with --selector: only this app on those hosts).
    #[arg(required_unless_present = "selector")]
    pub app: Option<String>,
    /// The app's environment; needed only when the app runs in several.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Stop every berth-managed app (or APP) on the hosts whose labels
    /// match, k=v,k2=v2.
    #[arg(long)]
    pub selector: Option<String>,
    /// Return without waiting for the stop commands.
    #[arg(long)]
    pub detach: bool,
}

pub async fn stop(session: &mut Session, args: StopArgs) -> Outcome {
    if let Some(selector) = &args.selector {
        return stop_selected(session, selector, &args).await;
    }
    let app = args.app.clone().unwrap_or_default();
    let request = StopAppRequest {
        app: app.clone(),
        environment: args.environment.clone().unwrap_or_default(),
    };
    let reply = session.client.stop_app(request).await?.into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    let format = session.format;
    if let Some(code) = super::approvals::report_waiting(format, &deployment, args.detach) {
        return Ok(code);
    }
    progress(
        format,
        &format!(
            "stopping {app} in {} (deployment {})",
            deployment.environment, deployment.id
        ),
    );
    let last = if args.detach {
        deployment
    } else {
        follow(session, &deployment).await?
    };
    emit(format, &last, || summary(&last));
    let stopping = last
        .tasks
        .iter()
        .any(|task| task.kind == TaskKind::Stop && !task.status.is_final());
    Ok(
        if last.status == DeploymentStatus::Stopped || (args.detach && stopping) {
            exit::OK
        } else {
            exit::FAILED
        },
    )
}

/// `berth stop --selector`: every matching host's apps, each deployment
/// followed until its hosts are done; exit 0 when every stop succeeded.
async fn stop_selected(session: &mut Session, selector: &str, args: &StopArgs) -> Outcome {
    let request = berth_proto::v1::StopSelectedRequest {
        selector: selector.to_string(),
        app: args.app.clone().unwrap_or_default(),
    };
    let reply = session.client.stop_selected(request).await?.into_inner();
    let started: Vec<Deployment> = wire::deployments(reply.deployments)?;
    let format = session.format;
    let mut ended = Vec::new();
    for deployment in started {
        progress(
            format,
            &format!(
                "stopping {} in {} on the hosts matching {selector} (deployment {})",
                deployment.app, deployment.environment, deployment.id
            ),
        );
        ended.push(if args.detach {
            deployment
        } else {
            follow(session, &deployment).await?
        });
    }
    let failed: Vec<&Deployment> = ended
        .iter()
        .filter(|deployment| {
            deployment.tasks.iter().any(|task| {
                task.kind == TaskKind::Stop
                    && task.status.is_final()
                    && task.status != TaskStatus::Done
            })
        })
        .collect();
    emit(format, &ended, || {
        ended.iter().map(summary).collect::<Vec<_>>().join("\n")
    });
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

pub async fn delete(session: &mut Session, id: &str, detach: bool) -> Outcome {
    let reply = session
        .client
        .delete_deployment(GetDeploymentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    let format = session.format;
    progress(format, &format!("deleting deployment {}", deployment.id));
    let last = if detach {
        deployment
    } else {
        follow(session, &deployment).await?
    };
    emit(format, &last, || summary(&last));
    Ok(if last.status == DeploymentStatus::Deleted || detach {
        exit::OK
    } else {
        exit::FAILED
    })
}
