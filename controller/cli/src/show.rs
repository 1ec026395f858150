//! `berth ls` and `berth show`.

use berth_proto::v1::{GetDeploymentRequest, ListDeploymentsRequest};
use berth_shared::exit;
use berth_shared::record::Deployment;
use berth_shared::state::DeploymentStatus;
use clap::Args;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};
use berth_shared::query::Sort;

/// `berth ls`: filters, order and page. Unknown statuses and sort orders
/// are refused by clap (exit 2) with the accepted values.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only this environment.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Only these statuses; repeat the flag or separate them with commas.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<DeploymentStatus>,
    /// Only deployments this user triggered.
    #[arg(long = "by", value_name = "USER", conflicts_with = "mine")]
    pub triggered_by: Option<String>,
    /// Only deployments you triggered (with any of your credentials).
    #[arg(long)]
    pub mine: bool,
    /// Free text: part of an app or user name, or the start of a deployment id.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Order by `created`, `status` (lifecycle order) or `app` (then environment).
    #[arg(long, default_value_t = Sort::Created)]
    pub sort: Sort,
    /// Ascending instead of descending; by default the newest come first.
    #[arg(long)]
    pub asc: bool,
    /// At most this many deployments (1 to 1000; default 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Skip this many deployments of the sorted list first.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub offset: u32,
}

pub async fn ls(session: &mut Session, args: LsArgs) -> Outcome {
    let request = ListDeploymentsRequest {
        app: args.app.unwrap_or_default(),
        environment: args.environment.unwrap_or_default(),
        status: args.status.iter().map(ToString::to_string).collect(),
        // 0 lets the controller pick its default page size.
        limit: args.limit.unwrap_or(0),
        triggered_by: if args.mine {
            "me".into()
        } else {
            args.triggered_by.unwrap_or_default()
        },
        search: args.search.unwrap_or_default(),
        sort: args.sort.to_string(),
        ascending: args.asc,
        offset: args.offset,
    };
    let reply = session.client.list_deployments(request).await?.into_inner();
    let deployments: Vec<Deployment> = wire::deployments(reply.deployments)?;
    emit(session.format, &deployments, || {
        let mut rows = grid(
            session.format,
            &[
                Column::Id("ID"),
                Column::Text("APP"),
                Column::Text("ENV"),
                Column::Text("VERSION"),
                Column::Text("STATUS"),
                Column::Wide("HOSTS"),
                Column::Text("CREATED"),
                Column::Wide("BY"),
            ],
        );
        for deployment in &deployments {
            rows.row(vec![
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
    let deployment: Deployment = wire::deployment(reply)?;
    emit(session.format, &deployment, || {
        describe(&deployment, session.format)
    });
    Ok(exit::OK)
}

/// Why and from what, and how long its last run took: only the lines
/// that have something to say.
fn provenance(d: &Deployment) -> String {
    let mut text = format!("  trigger:      {}\n", d.trigger);
    let lines = [
        ("message", d.message.clone()),
        ("ref", d.source_ref.clone()),
        ("commit", d.commit_sha.clone()),
        ("committed", d.commit_time.map(|at| at.to_string())),
        ("author", d.commit_author.clone()),
        ("build", d.build_url.clone()),
        ("started", d.started_at.map(|at| at.to_string())),
        (
            "finished",
            d.finished_at.map(|at| match d.duration_ms {
                Some(ms) => format!(
                    "{at} (took {})",
                    berth_shared::time::format_duration(std::time::Duration::from_millis(ms))
                ),
                None => at.to_string(),
            }),
        ),
    ];
    for (label, value) in lines {
        if let Some(value) = value {
            let label = format!("{label}:");
            text.push_str(&format!(
                "  {label:<13} {}\n",
                berth_shared::text::clip(&value, 200)
            ));
        }
    }
    text
}

fn describe(d: &Deployment, format: super::Format) -> String {
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
    match (d.origin.as_str(), d.parent_id) {
        ("retry", Some(parent)) => {
            text.push_str(&format!(
                "  origin:       retry {} of {parent}\n",
                d.retry_count
            ));
        }
        ("rollback", Some(parent)) => {
            text.push_str(&format!(
                "  origin:       rollback to the snapshot of {parent}\n"
            ));
        }
        _ => {}
    }
    text.push_str(&provenance(d));
    text.push_str(&format!(
        "  timeout:      {}{}\n",
        berth_shared::time::format_duration(d.manifest.timeout),
        if d.queued {
            " (queued: waits for the app's running deployment)"
        } else {
            ""
        }
    ));
    if let Some(approval) = &d.approval {
        text.push_str(&format!("  approval:     {}\n", approval.text()));
    }
    if let Some(step) = &d.error_step {
        text.push_str(&format!("  error step:   {step}\n"));
    }
    if let Some(message) = &d.error_message {
        text.push_str(&format!("  error:        {message}\n"));
    }
    let mut tasks = grid(
        format,
        &[
            Column::Text("HOST"),
            Column::Text("KIND"),
            Column::Text("STATUS"),
            Column::Wide("GEN"),
            Column::Text("STAGES"),
            Column::Full("ERROR"),
        ],
    );
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
            berth_shared::record::TaskKind::Build => "build",
            berth_shared::record::TaskKind::Restore => "restore",
        };
        tasks.row(vec![
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
    text.push_str(&variables(d));
    text.push_str(&format!("\nmanifest\n{}", d.manifest_toml.trim_end()));
    text
}

/// The variables the deployment's scripts and container see: berth's own
/// (BERTH_*), then its snapshot, each with where its value came from (a
/// secret's value is never in the record: `***`).
fn variables(d: &Deployment) -> String {
    let mut text = String::from("\nvariables\n");
    for (name, value) in [
        ("BERTH_APP", d.app.as_str()),
        ("BERTH_ENVIRONMENT", d.environment.as_str()),
        ("BERTH_VERSION", d.version.as_str()),
    ] {
        text.push_str(&format!("  {name}={value}\n"));
    }
    text.push_str(&format!("  BERTH_DEPLOYMENT_ID={}\n", d.id));
    text.push_str("  BERTH_HOST, BERTH_TASK_ID, BERTH_STAGE, BERTH_WORK_DIR: per host\n");
    if d.variables.is_empty() {
        // A record from before variables: its container's own env.
        if let Some(container) = &d.manifest.container {
            for (name, value) in &container.env {
                text.push_str(&format!("  {name}={value} (container)\n"));
            }
        }
    }
    for variable in &d.variables {
        let version = match (&variable.secret_scope, variable.secret_version) {
            (Some(scope), Some(version)) => format!(" {scope} v{version}"),
            (None, Some(version)) => format!(" v{version}"),
            _ => String::new(),
        };
        text.push_str(&format!(
            "  {}={} ({}{version})\n",
            variable.name,
            variable.value,
            variable.source.as_str()
        ));
    }
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
