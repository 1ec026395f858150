//! The fleet's records as messages (agents, tokens, `berth status` rows,
//! `berth inspect` answers, fleet jobs), and the replies that carry them.

use berth_proto::v1 as pb;
use berth_shared::labels::Labels;
use berth_shared::record::{
    AgentView, AppStatus, ContainerView, Facts, FleetJob, HostInspect, HostRun, HostState,
    RunningTaskView, TokenView,
};

use super::{deployment_status, ms, task_status};

pub fn agent_list(records: Vec<AgentView>) -> pb::AgentList {
    pb::AgentList {
        agents: records.into_iter().map(agent_view).collect(),
    }
}

pub fn agent(record: AgentView) -> pb::AgentReply {
    pb::AgentReply {
        agent: Some(agent_view(record)),
    }
}

fn agent_view(record: AgentView) -> pb::AgentView {
    let AgentView {
        id,
        name,
        online,
        status,
        labels,
        auto_labels,
        facts,
        version,
        enrolled_at,
        last_seen_at,
        cert_expires_at,
        valid_certificates,
        running_tasks,
    } = record;
    pb::AgentView {
        id: id.to_string(),
        name,
        online,
        status,
        labels: map(labels),
        auto_labels: map(auto_labels),
        facts: facts.map(host_facts),
        version,
        enrolled_at_ms: enrolled_at.0,
        last_seen_at_ms: ms(last_seen_at),
        cert_expires_at_ms: cert_expires_at.0,
        valid_certificates: u64::try_from(valid_certificates).unwrap_or(u64::MAX),
        running_tasks: running_tasks.into_iter().map(running_task).collect(),
    }
}

fn map(labels: Labels) -> std::collections::HashMap<String, String> {
    labels.into_iter().collect()
}

fn host_facts(record: Facts) -> pb::Facts {
    let Facts {
        hostname,
        os,
        os_family,
        os_version,
        kernel,
        arch,
        cpus,
        memory_total_bytes,
        memory_used_bytes,
        disk_total_bytes,
        disk_free_bytes,
        uptime_secs,
        load_1m,
        docker_version,
        docker_error,
    } = record;
    pb::Facts {
        hostname,
        os,
        os_family,
        os_version,
        kernel,
        arch,
        cpus,
        memory_total_bytes,
        memory_used_bytes,
        disk_total_bytes,
        disk_free_bytes,
        uptime_secs,
        load_1m,
        docker_version,
        docker_error,
    }
}

fn running_task(record: RunningTaskView) -> pb::RunningTaskView {
    let RunningTaskView {
        deployment_id,
        task_id,
        app,
        status,
    } = record;
    pb::RunningTaskView {
        deployment_id: deployment_id.to_string(),
        task_id: task_id.to_string(),
        app,
        status: task_status(status).into(),
    }
}

pub fn token_list(records: Vec<TokenView>) -> pb::TokenList {
    pb::TokenList {
        tokens: records.into_iter().map(token_view).collect(),
    }
}

pub fn token(record: TokenView) -> pb::TokenReply {
    pb::TokenReply {
        token: Some(token_view(record)),
    }
}

fn token_view(record: TokenView) -> pb::TokenView {
    let TokenView {
        id,
        labels,
        created_at,
        expires_at,
        uses_allowed,
        uses,
        revoked,
        created_by,
        state,
    } = record;
    pb::TokenView {
        id,
        labels: map(labels),
        created_at_ms: created_at.0,
        expires_at_ms: expires_at.0,
        uses_allowed,
        uses,
        revoked,
        created_by,
        state,
    }
}

pub fn controller_list(list: berth_shared::record::ControllerList) -> pb::ControllerListReply {
    pb::ControllerListReply {
        store: list.store,
        controllers: list
            .controllers
            .into_iter()
            .map(|view| pb::ControllerView {
                role: view.role.as_str().to_string(),
                host: view.host,
                pid: view.pid,
                listen: view.listen,
                since_ms: view.since.0,
                agents: view.agents,
                holds: view.holds,
                token: view.token,
            })
            .collect(),
    }
}

pub fn app_statuses(records: Vec<AppStatus>) -> pb::StatusReply {
    pb::StatusReply {
        apps: records.into_iter().map(app_status).collect(),
    }
}

fn app_status(record: AppStatus) -> pb::AppStatus {
    let AppStatus {
        app,
        environment,
        version,
        deployment_id,
        status,
        since,
        hosts,
        in_progress,
        queued,
        build_state,
        health,
        host_states,
        approval,
    } = record;
    pb::AppStatus {
        app,
        environment,
        version,
        deployment_id: deployment_id.to_string(),
        status: deployment_status(status).into(),
        since_ms: since.0,
        hosts,
        in_progress: in_progress.map(|id| id.to_string()),
        queued: queued.iter().map(ToString::to_string).collect(),
        build_state,
        health,
        host_states: host_states.into_iter().map(host_state).collect(),
        approval,
    }
}

fn host_state(record: HostState) -> pb::HostState {
    let HostState {
        host,
        online,
        version,
        deployment_id,
        state,
        health,
        since,
        last_repair,
        last_repair_at,
        secrets_changed,
        resources,
    } = record;
    pb::HostState {
        secrets_changed,
        resources: resources.into_iter().map(resource_state).collect(),
        host,
        online,
        version,
        deployment_id,
        state,
        health,
        since_ms: ms(since),
        last_repair,
        last_repair_at_ms: ms(last_repair_at),
    }
}

/// A resource's state, as the agent reports it and as `berth status` gets it.
pub fn resource_state(record: berth_shared::record::ResourceState) -> pb::ResourceState {
    let berth_shared::record::ResourceState {
        name,
        image,
        state,
        health,
        volumes,
    } = record;
    pb::ResourceState {
        name,
        image,
        state,
        health,
        volumes,
    }
}

pub fn host_inspect(record: HostInspect) -> pb::HostInspect {
    let HostInspect {
        host,
        online,
        answered,
        error,
        containers,
        facts,
        running_tasks,
        routes,
    } = record;
    pb::HostInspect {
        host,
        online,
        answered,
        error,
        containers: containers.into_iter().map(container).collect(),
        facts: facts.map(host_facts),
        running_tasks: running_tasks.into_iter().map(running_task).collect(),
        routes,
    }
}

fn container(record: ContainerView) -> pb::ContainerView {
    let ContainerView {
        name,
        id,
        app,
        environment,
        deployment_id,
        version,
        image,
        state,
        status,
        ports,
        restart_count,
        recent_logs,
        health,
        resource,
        volumes,
    } = record;
    pb::ContainerView {
        name,
        id,
        app,
        environment,
        deployment_id,
        version,
        image,
        state,
        status,
        ports,
        restart_count,
        recent_logs,
        health,
        resource,
        volumes,
    }
}

pub fn job_list(records: Vec<FleetJob>) -> pb::JobList {
    pb::JobList {
        jobs: records.into_iter().map(fleet_job).collect(),
    }
}

pub fn job(record: FleetJob) -> pb::JobReply {
    pb::JobReply {
        job: Some(fleet_job(record)),
    }
}

pub fn fleet_job(record: FleetJob) -> pb::FleetJob {
    let FleetJob {
        id,
        argv,
        selector,
        triggered_by,
        timeout_ms,
        started_at,
        finished_at,
        hosts,
    } = record;
    pb::FleetJob {
        id,
        argv,
        selector,
        triggered_by,
        timeout_ms,
        started_at_ms: started_at.0,
        finished_at_ms: finished_at.0,
        hosts: hosts.into_iter().map(host_run).collect(),
    }
}

fn host_run(record: HostRun) -> pb::HostRun {
    let HostRun {
        host,
        status,
        exit_code,
        output,
        error,
        duration_ms,
    } = record;
    pb::HostRun {
        host,
        status,
        exit_code,
        output,
        error,
        duration_ms,
    }
}
