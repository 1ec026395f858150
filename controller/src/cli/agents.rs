//! `berth agents ls|show|revoke`.

use berth_proto::v1::{GetAgentRequest, ListAgentsRequest};
use berth_shared::exit;
use berth_shared::labels::format_labels;
use berth_shared::record::AgentView;
use clap::Subcommand;

use super::deploy::parse;
use super::output::{ago, emit, size, table};
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List every enrolled agent.
    Ls,
    /// Show one agent.
    Show { name: String },
    /// Revoke an agent: cut its stream now and refuse it from then on.
    Revoke { name: String },
}

pub async fn run(session: &mut Session, command: AgentsCommand) -> Outcome {
    match command {
        AgentsCommand::Ls => {
            let reply = session
                .client
                .list_agents(ListAgentsRequest {})
                .await?
                .into_inner();
            let agents: Vec<AgentView> = parse(&reply.json)?;
            emit(session.format, &agents, || {
                let mut rows = table(&[
                    "NAME",
                    "ONLINE",
                    "STATUS",
                    "LABELS",
                    "OS",
                    "CPUS",
                    "MEMORY",
                    "DISK FREE",
                    "LAST SEEN",
                    "TASKS",
                ]);
                for agent in &agents {
                    let facts = agent.facts.clone().unwrap_or_default();
                    rows.add_row(vec![
                        agent.name.clone(),
                        if agent.online {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        agent.status.clone(),
                        format_labels(&agent.labels),
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
            let agent: AgentView = parse(&reply.json)?;
            emit(session.format, &agent, || describe(&agent));
        }
        AgentsCommand::Revoke { name } => {
            let reply = session
                .client
                .revoke_agent(GetAgentRequest { name })
                .await?
                .into_inner();
            let agent: AgentView = parse(&reply.json)?;
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
        "agent {}\n  id:           {}\n  online:       {}\n  status:       {}\n  labels:       {}\n  version:      {}\n  enrolled:     {}\n  last seen:    {}\n  cert expires: {}\n",
        agent.name,
        agent.id,
        agent.online,
        agent.status,
        format_labels(&agent.labels),
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
    let reply = session.client.inspect(request).await?.into_inner();
    let hosts: Vec<berth_shared::record::HostInspect> = parse(&reply.json)?;
    emit(session.format, &hosts, || {
        let mut rows = table(&[
            "HOST",
            "CONTAINER",
            "APP",
            "VERSION",
            "STATE",
            "HEALTH",
            "STATUS",
            "IMAGE",
            "PORTS",
            "RESTARTS",
        ]);
        let mut notes = Vec::new();
        for host in &hosts {
            if !host.online {
                notes.push(format!("{}: offline", host.host));
            } else if let Some(error) = &host.error {
                notes.push(format!("{}: {error}", host.host));
            } else if host.containers.is_empty() {
                notes.push(format!("{}: no berth containers", host.host));
            }
            for container in &host.containers {
                rows.add_row(vec![
                    host.host.clone(),
                    container.name.clone(),
                    container.app.clone(),
                    container.version.clone(),
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
