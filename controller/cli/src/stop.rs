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
use super::{Failure, Outcome, Session};

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
    /// Stop the app's resources (`[resources.NAME]`) too; without it they
    /// keep running.
    #[arg(long, conflicts_with = "selector")]
    pub with_resources: bool,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Deployment id.
    pub id: String,
    /// Return without waiting for the hosts.
    #[arg(long)]
    pub detach: bool,
    /// Remove the app's resource containers and its network too (their
    /// volumes stay).
    #[arg(long)]
    pub with_resources: bool,
    /// Remove the resources' named volumes too: their data, for good.
    /// Implies --with-resources; asks for the app's name back.
    #[arg(long)]
    pub purge_volumes: bool,
    /// The app's name, to confirm --purge-volumes without a question.
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

pub async fn stop(session: &mut Session, args: StopArgs) -> Outcome {
    if let Some(selector) = &args.selector {
        return stop_selected(session, selector, &args).await;
    }
    let app = args.app.clone().unwrap_or_default();
    let request = StopAppRequest {
        app: app.clone(),
        environment: args.environment.clone().unwrap_or_default(),
        with_resources: args.with_resources,
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

pub async fn delete(session: &mut Session, args: DeleteArgs) -> Outcome {
    let detach = args.detach;
    let confirm = match (&args.confirm, args.purge_volumes) {
        (Some(confirm), _) => confirm.clone(),
        (None, true) => ask_app_name(session, &args.id).await?,
        (None, false) => String::new(),
    };
    let request = berth_proto::v1::DeleteDeploymentRequest {
        id: args.id.clone(),
        with_resources: args.with_resources,
        purge_volumes: args.purge_volumes,
        confirm,
    };
    let reply = session
        .client
        .delete_deployment(request)
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

/// `--purge-volumes` in a terminal: the app's name, typed back. Without a
/// terminal nothing is asked, and the controller refuses the delete
/// (`resource/confirm`) naming `--confirm`.
async fn ask_app_name(session: &mut Session, id: &str) -> Result<String, Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(String::new());
    }
    let reply = session
        .client
        .get_deployment(GetDeploymentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    eprint!(
        "This removes the volumes of app {}'s resources in {} on its hosts: their data, for good.\nType the app's name to confirm: ",
        deployment.app, deployment.environment
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| Failure::usage(format!("could not read the answer: {err}")))?;
    Ok(line.trim().to_string())
}
