//! The fleet's messages (agents, tokens, `berth status` rows, the
//! controllers, `berth inspect` answers, fleet jobs) and the replies that carry them, as the
//! berth-shared records.

use berth_proto::v1 as pb;
use berth_shared::record::{
    AgentView, AppStatus, ContainerView, ControllerList, ControllerRole, ControllerView, Facts,
    FleetJob, HostInspect, HostRun, HostState, RunningTaskView, Timestamp, TokenView,
};

use super::{
    all, deployment_status, parse, parse_opt, required, task_status, ts, ts_opt, unreadable,
};
use crate::Failure;

pub fn agents(reply: pb::AgentList) -> Result<Vec<AgentView>, Failure> {
    let pb::AgentList { agents } = reply;
    all(agents, agent_view)
}

pub fn agent(reply: pb::AgentReply) -> Result<AgentView, Failure> {
    let pb::AgentReply { agent } = reply;
    agent_view(required(agent, "agent")?)
}

fn agent_view(message: pb::AgentView) -> Result<AgentView, Failure> {
    let pb::AgentView {
        id,
        name,
        online,
        status,
        labels,
        auto_labels,
        facts,
        version,
        enrolled_at_ms,
        last_seen_at_ms,
        cert_expires_at_ms,
        valid_certificates,
        running_tasks,
    } = message;
    Ok(AgentView {
        id: parse(&id, "an agent id")?,
        name,
        online,
        status,
        labels: labels.into_iter().collect(),
        auto_labels: auto_labels.into_iter().collect(),
        facts: facts.map(host_facts),
        version,
        enrolled_at: ts(enrolled_at_ms),
        last_seen_at: ts_opt(last_seen_at_ms),
        cert_expires_at: ts(cert_expires_at_ms),
        valid_certificates: usize::try_from(valid_certificates)
            .map_err(|_| unreadable(format!("a certificate count ({valid_certificates})")))?,
        running_tasks: all(running_tasks, running_task)?,
    })
}

fn host_facts(message: pb::Facts) -> Facts {
    let pb::Facts {
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
    } = message;
    Facts {
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

fn running_task(message: pb::RunningTaskView) -> Result<RunningTaskView, Failure> {
    let pb::RunningTaskView {
        deployment_id,
        task_id,
        app,
        status,
    } = message;
    Ok(RunningTaskView {
        deployment_id: parse(&deployment_id, "a deployment id")?,
        task_id: parse(&task_id, "a task id")?,
        app,
        status: task_status(status)?,
    })
}

pub fn tokens(reply: pb::TokenList) -> Vec<TokenView> {
    let pb::TokenList { tokens } = reply;
    tokens.into_iter().map(token_view).collect()
}

pub fn token(reply: pb::TokenReply) -> Result<TokenView, Failure> {
    let pb::TokenReply { token } = reply;
    Ok(token_view(required(token, "token")?))
}

fn token_view(message: pb::TokenView) -> TokenView {
    let pb::TokenView {
        id,
        labels,
        created_at_ms,
        expires_at_ms,
        uses_allowed,
        uses,
        revoked,
        created_by,
        state,
    } = message;
    TokenView {
        id,
        labels: labels.into_iter().collect(),
        created_at: ts(created_at_ms),
        expires_at: ts(expires_at_ms),
        uses_allowed,
        uses,
        revoked,
        created_by,
        state,
    }
}

pub fn app_statuses(reply: pb::StatusReply) -> Result<Vec<AppStatus>, Failure> {
    let pb::StatusReply { apps } = reply;
    all(apps, app_status)
}

fn app_status(message: pb::AppStatus) -> Result<AppStatus, Failure> {
    let pb::AppStatus {
        app,
        environment,
        version,
        deployment_id,
        status,
        since_ms,
        hosts,
        in_progress,
        queued,
        build_state,
        health,
        host_states,
        approval,
    } = message;
    Ok(AppStatus {
        app,
        environment,
        version,
        deployment_id: parse(&deployment_id, "a deployment id")?,
        status: deployment_status(status)?,
        since: ts(since_ms),
        hosts,
        in_progress: parse_opt(in_progress, "a deployment id")?,
        queued: all(queued, |id| parse(&id, "a deployment id"))?,
        build_state,
        health,
        host_states: host_states.into_iter().map(host_state).collect(),
        approval,
    })
}

fn host_state(message: pb::HostState) -> HostState {
    let pb::HostState {
        host,
        online,
        version,
        deployment_id,
        state,
        health,
        since_ms,
        last_repair,
        last_repair_at_ms,
        secrets_changed,
        resources,
    } = message;
    HostState {
        secrets_changed,
        resources: resources.into_iter().map(resource_state).collect(),
        host,
        online,
        version,
        deployment_id,
        state,
        health,
        since: ts_opt(since_ms),
        last_repair,
        last_repair_at: ts_opt(last_repair_at_ms),
    }
}

fn resource_state(message: pb::ResourceState) -> berth_shared::record::ResourceState {
    let pb::ResourceState {
        name,
        image,
        state,
        health,
        volumes,
    } = message;
    berth_shared::record::ResourceState {
        name,
        image,
        state,
        health,
        volumes,
    }
}

pub fn host_inspect(message: pb::HostInspect) -> Result<HostInspect, Failure> {
    let pb::HostInspect {
        host,
        online,
        answered,
        error,
        containers,
        facts,
        running_tasks,
        routes,
    } = message;
    Ok(HostInspect {
        host,
        online,
        answered,
        error,
        containers: containers.into_iter().map(container).collect(),
        facts: facts.map(host_facts),
        running_tasks: all(running_tasks, running_task)?,
        routes,
    })
}

fn container(message: pb::ContainerView) -> ContainerView {
    let pb::ContainerView {
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
    } = message;
    ContainerView {
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

pub fn jobs(reply: pb::JobList) -> Vec<FleetJob> {
    let pb::JobList { jobs } = reply;
    jobs.into_iter().map(fleet_job).collect()
}

pub fn job(reply: pb::JobReply) -> Result<FleetJob, Failure> {
    let pb::JobReply { job } = reply;
    Ok(fleet_job(required(job, "fleet job")?))
}

pub fn fleet_job(message: pb::FleetJob) -> FleetJob {
    let pb::FleetJob {
        id,
        argv,
        selector,
        triggered_by,
        timeout_ms,
        started_at_ms,
        finished_at_ms,
        hosts,
    } = message;
    FleetJob {
        id,
        argv,
        selector,
        triggered_by,
        timeout_ms,
        started_at: ts(started_at_ms),
        finished_at: ts(finished_at_ms),
        hosts: hosts.into_iter().map(host_run).collect(),
    }
}

fn host_run(message: pb::HostRun) -> HostRun {
    let pb::HostRun {
        host,
        status,
        exit_code,
        output,
        error,
        duration_ms,
    } = message;
    HostRun {
        host,
        status,
        exit_code,
        output,
        error,
        duration_ms,
    }
}

/// The controllers of the store (`berth status --controllers`).
pub fn controllers(reply: pb::ControllerListReply) -> Result<ControllerList, Failure> {
    let pb::ControllerListReply { store, controllers } = reply;
    let controllers = all(controllers, |view| {
        let pb::ControllerView {
            role,
            host,
            pid,
            listen,
            since_ms,
            agents,
            holds,
            token,
        } = view;
        let role = match role.as_str() {
            "serving" => ControllerRole::Serving,
            other => return Err(unreadable(format!("the controller role `{other}`"))),
        };
        Ok(ControllerView {
            role,
            host,
            pid,
            listen,
            since: Timestamp(since_ms),
            agents,
            holds,
            token,
        })
    })?;
    Ok(ControllerList { store, controllers })
}
