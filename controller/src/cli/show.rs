//! `berth ls`, `berth show` and `berth status`.

use berth_proto::v1::{GetDeploymentRequest, GetStatusRequest, ListDeploymentsRequest};
use berth_shared::exit;
use berth_shared::record::{AppStatus, Deployment};
use clap::Args;

use super::deploy::parse;
use super::output::{ago, emit, table};
use super::{Outcome, Session};

#[derive(Args, Debug)]
pub struct LsArgs {
    #[arg(long)]
    pub app: Option<String>,
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Status to include; repeat for several.
    #[arg(long)]
    pub status: Vec<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

pub async fn ls(session: &mut Session, args: LsArgs) -> Outcome {
    for status in &args.status {
        status
            .parse::<berth_shared::state::DeploymentStatus>()
            .map_err(super::Failure::usage)?;
    }
    let request = ListDeploymentsRequest {
        app: args.app.unwrap_or_default(),
        environment: args.environment.unwrap_or_default(),
        status: args.status,
        limit: args.limit,
    };
    let reply = session.client.list_deployments(request).await?.into_inner();
    let deployments: Vec<Deployment> = parse(&reply.json)?;
    emit(session.format, &deployments, || {
        let mut rows = table(&[
            "ID", "APP", "ENV", "VERSION", "STATUS", "HOSTS", "CREATED", "BY",
        ]);
        for deployment in &deployments {
            rows.add_row(vec![
                deployment.id.to_string(),
                deployment.app.clone(),
                deployment.environment.clone(),
                deployment.version.clone(),
                deployment.status.to_string(),
                deployment
                    .tasks
                    .iter()
                    .filter(|t| t.kind == berth_shared::record::TaskKind::Deploy)
                    .count()
                    .to_string(),
                ago(deployment.created_at),
                deployment.triggered_by.clone(),
            ]);
        }
        if deployments.is_empty() {
            "no deployments".to_string()
        } else {
            rows.to_string()
        }
    });
    Ok(exit::OK)
}

pub async fn show(session: &mut Session, id: &str) -> Outcome {
    let reply = session
        .client
        .get_deployment(GetDeploymentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let deployment: Deployment = parse(&reply.json)?;
    emit(session.format, &deployment, || describe(&deployment));
    Ok(exit::OK)
}

fn describe(d: &Deployment) -> String {
    let mut text = format!(
        "deployment {}\n  app:          {}\n  environment:  {}\n  version:      {}\n  status:       {}\n  created:      {} by {}\n  bundle:       {} ({} bytes)\n",
        d.id,
        d.app,
        d.environment,
        d.version,
        d.status,
        d.created_at,
        d.triggered_by,
        d.bundle_digest,
        d.bundle_size
    );
    if let Some(step) = &d.error_step {
        text.push_str(&format!("  error step:   {step}\n"));
    }
    if let Some(message) = &d.error_message {
        text.push_str(&format!("  error:        {message}\n"));
    }
    let mut tasks = table(&["HOST", "KIND", "STATUS", "GEN", "STAGES", "ERROR"]);
    for task in &d.tasks {
        let stages: Vec<String> = task
            .stages
            .iter()
            .map(|stage| {
                let code = stage
                    .exit_code
                    .map(|code| format!(" exit {code}"))
                    .unwrap_or_default();
                let took = stage
                    .duration_ms
                    .map(|ms| format!(" {:.1}s", ms as f64 / 1000.0))
                    .unwrap_or_default();
                format!("{} {}{code}{took}", stage.stage, stage.outcome)
            })
            .collect();
        let kind = match task.kind {
            berth_shared::record::TaskKind::Deploy => "deploy",
            berth_shared::record::TaskKind::Stop => "stop",
            berth_shared::record::TaskKind::Delete => "delete",
        };
        tasks.add_row(vec![
            task.host.clone(),
            kind.into(),
            task.status.to_string(),
            task.generation.to_string(),
            stages.join("; "),
            task.error_message.clone().unwrap_or_default(),
        ]);
    }
    text.push_str(&format!("\ntasks\n{tasks}\n"));
    text.push_str(&stage_details(d));
    text.push_str("\nhistory\n");
    for transition in &d.transitions {
        text.push_str(&format!(
            "  {}  {}\n",
            transition.at,
            super::output::transition_text(transition)
        ));
    }
    text.push_str(&format!("\nmanifest\n{}", d.manifest_toml.trim_end()));
    text
}

/// What each stage made or, for a failed one, the evidence it kept
/// (probe answer, command output, the container's last lines).
fn stage_details(d: &Deployment) -> String {
    let mut text = String::new();
    for task in &d.tasks {
        for stage in task
            .stages
            .iter()
            .filter(|stage| !stage.details.is_empty() || stage.error.is_some())
        {
            text.push_str(&format!(
                "  {} {} ({})\n",
                task.host, stage.stage, stage.outcome
            ));
            if let Some(error) = &stage.error {
                text.push_str(&format!("    error: {error}\n"));
            }
            for (key, value) in &stage.details {
                if value.contains('\n') {
                    text.push_str(&format!("    {key}:\n"));
                    for line in value.lines() {
                        text.push_str(&format!("      {line}\n"));
                    }
                } else {
                    text.push_str(&format!("    {key}: {value}\n"));
                }
            }
        }
    }
    if text.is_empty() {
        text
    } else {
        format!("\nstages\n{text}")
    }
}

pub async fn status(session: &mut Session, environment: Option<String>) -> Outcome {
    let reply = session
        .client
        .get_status(GetStatusRequest {
            environment: environment.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let rows: Vec<AppStatus> = parse(&reply.json)?;
    emit(session.format, &rows, || {
        let mut out = table(&[
            "APP",
            "ENV",
            "VERSION",
            "STATUS",
            "HEALTH",
            "SINCE",
            "HOSTS",
            "DEPLOYMENT",
            "IN PROGRESS",
        ]);
        for row in &rows {
            out.add_row(vec![
                row.app.clone(),
                row.environment.clone(),
                row.version.clone(),
                row.status.to_string(),
                row.health.clone().unwrap_or_else(|| "-".into()),
                ago(row.since),
                row.hosts.join(", "),
                row.deployment_id.to_string(),
                row.in_progress.map(|id| id.to_string()).unwrap_or_default(),
            ]);
        }
        if rows.is_empty() {
            "nothing deployed yet".to_string()
        } else {
            out.to_string()
        }
    });
    Ok(exit::OK)
}
