//! `berth agents ls|show|label|revoke` and `berth inspect`.

use berth_proto::v1::{GetAgentRequest, LabelAgentRequest, ListAgentsRequest};
use berth_shared::exit;
use berth_shared::labels::format_labels;
use berth_shared::record::AgentView;
use clap::Subcommand;

use super::output::{Column, ago, emit, grid, size};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List every enrolled agent.
    Ls,
    /// Show one agent.
    Show { name: String },
    /// Set or remove an agent's own labels (not the automatic os, arch,
    /// hostname).
    Label {
        name: String,
        /// Labels to set or overwrite, each key=value.
        #[arg(value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// A label to remove (repeatable).
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
    },
    /// Revoke an agent: cut its stream now and refuse it from then on.
    Revoke { name: String },
}

/// An agent's labels for people: its own, then the automatic ones marked
/// `auto:`; own labels win on a clash, so an automatic one they hide is
/// left out.
fn all_labels(agent: &AgentView) -> String {
    let automatic: berth_shared::labels::Labels = agent
        .auto_labels
        .iter()
        .filter(|(key, _)| !agent.labels.contains_key(*key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    match (agent.labels.is_empty(), automatic.is_empty()) {
        (_, true) => format_labels(&agent.labels),
        (true, false) => format!("auto: {}", format_labels(&automatic)),
        (false, false) => format!(
            "{} auto: {}",
            format_labels(&agent.labels),
            format_labels(&automatic)
        ),
    }
}

pub async fn run(session: &mut Session, command: AgentsCommand) -> Outcome {
    match command {
        AgentsCommand::Ls => {
            let reply = session
                .client
                .list_agents(ListAgentsRequest {})
                .await?
                .into_inner();
            let agents: Vec<AgentView> = wire::agents(reply)?;
            emit(session.format, &agents, || {
                let mut rows = grid(
                    session.format,
                    &[
                        Column::Text("NAME"),
                        Column::Text("ONLINE"),
                        Column::Wide("STATUS"),
                        Column::Text("VERSION"),
                        Column::Full("LABELS"),
                        Column::Wide("OS"),
                        Column::Wide("CPUS"),
                        Column::Text("MEMORY"),
                        Column::Wide("DISK FREE"),
                        Column::Text("LAST SEEN"),
                        Column::Wide("TASKS"),
                    ],
                );
                for agent in &agents {
                    let facts = agent.facts.clone().unwrap_or_default();
                    rows.row(vec![
                        agent.name.clone(),
                        if agent.online {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        agent.status.clone(),
                        agent.version.clone().unwrap_or_default(),
                        all_labels(agent),
                        format!("{} {}", facts.os, facts.os_version)
                            .trim()
                            .to_string(),
                        facts.cpus.to_string(),
                        format!(
                            "{} / {}",
                            size(facts.memory_used_bytes),
                            size(facts.memory_total_bytes)
                        ),
                        size(facts.disk_free_bytes),
                        agent
                            .last_seen_at
                            .map(ago)
                            .unwrap_or_else(|| "never".into()),
                        agent.running_tasks.len().to_string(),
                    ]);
                }
                if agents.is_empty() {
                    "no agents; add one with `berth token create`".to_string()
                } else {
                    rows.to_string()
                }
            });
        }
        AgentsCommand::Show { name } => {
            let reply = session
                .client
                .get_agent(GetAgentRequest { name })
                .await?
                .into_inner();
            let agent: AgentView = wire::agent(reply)?;
            emit(session.format, &agent, || describe(&agent));
        }
        AgentsCommand::Label {
            name,
            labels,
            remove,
        } => {
            let change = berth_shared::labels::LabelChange::parse(&labels, &remove)
                .map_err(|err| super::Failure::usage(format!("agent `{name}`: {err}")))?;
            let request = LabelAgentRequest {
                name,
                set: labels,
                remove: change.remove,
            };
            let reply = session.client.label_agent(request).await?.into_inner();
            let agent: AgentView = wire::agent(reply)?;
            emit(session.format, &agent, || {
                format!("agent {} labels: {}", agent.name, all_labels(&agent))
            });
        }
        AgentsCommand::Revoke { name } => {
            let reply = session
                .client
                .revoke_agent(GetAgentRequest { name })
                .await?
                .into_inner();
            let agent: AgentView = wire::agent(reply)?;
            emit(session.format, &agent, || {
                format!(
                    "agent {} revoked; its stream was cut and it cannot reconnect",
                    agent.name
                )
            });
        }
    }
    Ok(exit::OK)
}

fn describe(agent: &AgentView) -> String {
    let facts = agent.facts.clone().unwrap_or_default();
    let mut text = format!(
        "agent {}\n  id:           {}\n  online:       {}\n  status:       {}\n  labels:       {}\n  auto labels:  {}\n  version:      {}\n  enrolled:     {}\n  last seen:    {}\n  cert expires: {}\n",
        agent.name,
        agent.id,
        agent.online,
        agent.status,
        format_labels(&agent.labels),
        format_labels(&agent.auto_labels),
        agent.version.clone().unwrap_or_default(),
        agent.enrolled_at,
        agent
            .last_seen_at
            .map(|at| at.to_string())
            .unwrap_or_else(|| "never".into()),
        agent.cert_expires_at,
    );
    text.push_str(&format!(
        "  host:         {} ({} {}, kernel {}, {})\n  cpus:         {} (load {:.2})\n  memory:       {} used of {}\n  disk:         {} free of {}\n  uptime:       {}\n",
        facts.hostname,
        facts.os,
        facts.os_version,
        facts.kernel,
        facts.arch,
        facts.cpus,
        facts.load_1m,
        size(facts.memory_used_bytes),
        size(facts.memory_total_bytes),
        size(facts.disk_free_bytes),
        size(facts.disk_total_bytes),
        humantime::format_duration(std::time::Duration::from_secs(facts.uptime_secs)),
    ));
    for task in &agent.running_tasks {
        text.push_str(&format!(
            "  running:      {} {} ({})\n",
            task.app, task.deployment_id, task.status
        ));
    }
    text
}

/// `berth inspect [--selector k=v] [APP]`.
pub async fn inspect(session: &mut Session, app: Option<String>, selector: String) -> Outcome {
    berth_shared::labels::parse_labels(&selector)
        .map_err(|err| super::Failure::usage(format!("--selector: {err}")))?;
    let request = berth_proto::v1::InspectAppRequest {
        app: app.unwrap_or_default(),
        selector,
    };
    let mut replies = session.client.inspect(request).await?.into_inner();
    let mut hosts: Vec<berth_shared::record::HostInspect> = Vec::new();
    while let Some(reply) = replies.message().await? {
        hosts.push(wire::host_inspect(reply)?);
    }
    emit(session.format, &hosts, || {
        let mut rows = grid(
            session.format,
            &[
                Column::Text("HOST"),
                Column::Text("CONTAINER"),
                Column::Text("APP"),
                Column::Text("VERSION"),
                Column::Text("STATE"),
                Column::Text("HEALTH"),
                Column::Wide("STATUS"),
                Column::Wide("IMAGE"),
                Column::Text("PORTS"),
                Column::Wide("RESTARTS"),
            ],
        );
        let mut notes = Vec::new();
        for host in &hosts {
            if let Some(facts) = &host.facts {
                notes.push(format!(
                    "{}: load {:.2}, memory {} of {} used, disk {} free of {}",
                    host.host,
                    facts.load_1m,
                    super::output::size(facts.memory_used_bytes),
                    super::output::size(facts.memory_total_bytes),
                    super::output::size(facts.disk_free_bytes),
                    super::output::size(facts.disk_total_bytes)
                ));
            }
            for task in &host.running_tasks {
                notes.push(format!(
                    "{}: running {} of {} (deployment {})",
                    host.host, task.status, task.app, task.deployment_id
                ));
            }
            for route in &host.routes {
                notes.push(format!("{}: route {route}", host.host));
            }
            if !host.online {
                notes.push(format!("{}: offline", host.host));
            } else if let Some(error) = &host.error {
                notes.push(format!("{}: {error}", host.host));
            } else if host.containers.is_empty() {
                notes.push(format!("{}: no berth containers", host.host));
            }
            for container in &host.containers {
                rows.row(vec![
                    host.host.clone(),
                    container.name.clone(),
                    container.app.clone(),
                    if container.resource.is_empty() {
                        container.version.clone()
                    } else {
                        format!("resource {}", container.resource)
                    },
                    container.state.clone(),
                    if container.health.is_empty() {
                        "-".to_string()
                    } else {
                        container.health.clone()
                    },
                    container.status.clone(),
                    container.image.clone(),
                    container.ports.join(" "),
                    container.restart_count.to_string(),
                ]);
                if !container.volumes.is_empty() {
                    notes.push(format!(
                        "{}: {} volumes {}",
                        host.host,
                        container.name,
                        container.volumes.join(", ")
                    ));
                }
            }
        }
        let mut text = rows.to_string();
        for note in notes {
            text.push_str(&format!("\n{note}"));
        }
        text
    });
    Ok(exit::OK)
}
