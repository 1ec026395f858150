//! `Cli` methods about the fleet and its administration: agents, exec,
//! inspect, status, audit, jobs, join tokens and registries.

use std::sync::Arc;

use berth_proto::v1::{
    AgentList, AgentReply, AuditReply, ControllerListReply, CreateTokenRequest,
    CreateTokenResponse, FleetExecEvent, FleetExecRequest, GetAgentRequest, GetJobRequest,
    GetStatusRequest, HostInspect, InspectAppRequest, JobList, JobReply, LabelAgentRequest,
    ListAgentsRequest, ListAuditRequest, ListControllersRequest, ListJobsRequest,
    ListRegistriesRequest, ListTokensRequest, RegistryList, RegistryLoginRequest,
    RegistryLogoutReply, RegistryLogoutRequest, RegistryReply, RevokeTokenRequest, StatusReply,
    TokenList, TokenReply, WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response, Status};

use super::codec::{self, stream_of};
use super::records;
use crate::grpc::BoxStream;
use crate::grpc::auth::caller;
use crate::ops;
use crate::server::Context;

pub async fn who_am_i(
    context: &Arc<Context>,
    request: Request<WhoAmIRequest>,
) -> Result<Response<WhoAmIResponse>, Status> {
    let me = ops::auth::who_am_i(context, &caller(&request)?)?;
    Ok(Response::new(WhoAmIResponse {
        principal: me.principal,
        role: me.role.as_str().into(),
        store_problem: me.store_problem.unwrap_or_default(),
        store_problem_since_ms: me.store_problem_since_ms.unwrap_or(0),
    }))
}

pub async fn exec(
    context: &Arc<Context>,
    request: Request<FleetExecRequest>,
) -> Result<Response<BoxStream<FleetExecEvent>>, Status> {
    let caller = caller(&request)?;
    let exec = codec::exec_request(request.into_inner());
    let events = ops::exec::exec(context.clone(), &caller, exec)?;
    Ok(Response::new(stream_of(events, codec::exec_event)))
}

pub async fn list_audit(
    context: &Arc<Context>,
    request: Request<ListAuditRequest>,
) -> Result<Response<AuditReply>, Status> {
    let ListAuditRequest { limit, target } = request.get_ref();
    let entries = ops::deployments::audit_log(context, &caller(&request)?, target, *limit)?;
    Ok(Response::new(records::audit(entries)))
}

pub async fn get_status(
    context: &Arc<Context>,
    request: Request<GetStatusRequest>,
) -> Result<Response<StatusReply>, Status> {
    let environment = &request.get_ref().environment;
    let apps = ops::status::status(context, &caller(&request)?, environment)?;
    Ok(Response::new(records::app_statuses(apps)))
}

pub async fn list_controllers(
    context: &Arc<Context>,
    request: Request<ListControllersRequest>,
) -> Result<Response<ControllerListReply>, Status> {
    let list = ops::controllers::list(context, &caller(&request)?)?;
    Ok(Response::new(records::controller_list(list)))
}

pub async fn inspect(
    context: &Arc<Context>,
    request: Request<InspectAppRequest>,
) -> Result<Response<BoxStream<HostInspect>>, Status> {
    let InspectAppRequest { app, selector } = request.get_ref();
    let hosts = ops::agents::inspect(context, &caller(&request)?, selector, app).await?;
    let replies = hosts
        .into_iter()
        .map(|host| Ok(records::host_inspect(host)));
    Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
}

pub async fn registry_login(
    context: &Arc<Context>,
    request: Request<RegistryLoginRequest>,
) -> Result<Response<RegistryReply>, Status> {
    let caller = caller(&request)?;
    let RegistryLoginRequest {
        server,
        username,
        password,
    } = request.into_inner();
    let login = ops::registries::RegistryLogin {
        server,
        username,
        password,
    };
    let stored = ops::registries::login(context, &caller, login).await?;
    Ok(Response::new(records::registry(stored)))
}

pub async fn list_registries(
    context: &Arc<Context>,
    request: Request<ListRegistriesRequest>,
) -> Result<Response<RegistryList>, Status> {
    let registries = ops::registries::list(context, &caller(&request)?)?;
    Ok(Response::new(records::registry_list(registries)))
}

pub async fn registry_logout(
    context: &Arc<Context>,
    request: Request<RegistryLogoutRequest>,
) -> Result<Response<RegistryLogoutReply>, Status> {
    let server = &request.get_ref().server;
    let removed = ops::registries::logout(context, &caller(&request)?, server).await?;
    Ok(Response::new(records::logged_out(removed)))
}

pub async fn list_jobs(
    context: &Arc<Context>,
    request: Request<ListJobsRequest>,
) -> Result<Response<JobList>, Status> {
    let jobs = ops::exec::list_jobs(context, &caller(&request)?, request.get_ref().limit)?;
    Ok(Response::new(records::job_list(jobs)))
}

pub async fn get_job(
    context: &Arc<Context>,
    request: Request<GetJobRequest>,
) -> Result<Response<JobReply>, Status> {
    let job = ops::exec::get_job(context, &caller(&request)?, &request.get_ref().id)?;
    Ok(Response::new(records::job(job)))
}

pub async fn list_agents(
    context: &Arc<Context>,
    request: Request<ListAgentsRequest>,
) -> Result<Response<AgentList>, Status> {
    let agents = ops::agents::list(context, &caller(&request)?)?;
    Ok(Response::new(records::agent_list(agents)))
}

pub async fn get_agent(
    context: &Arc<Context>,
    request: Request<GetAgentRequest>,
) -> Result<Response<AgentReply>, Status> {
    let agent = ops::agents::show(context, &caller(&request)?, &request.get_ref().name)?;
    Ok(Response::new(records::agent(agent)))
}

pub async fn revoke_agent(
    context: &Arc<Context>,
    request: Request<GetAgentRequest>,
) -> Result<Response<AgentReply>, Status> {
    let name = &request.get_ref().name;
    let revoked = ops::agents::revoke(context, &caller(&request)?, name).await?;
    Ok(Response::new(records::agent(revoked)))
}

pub async fn label_agent(
    context: &Arc<Context>,
    request: Request<LabelAgentRequest>,
) -> Result<Response<AgentReply>, Status> {
    let LabelAgentRequest { name, set, remove } = request.get_ref();
    let labeled = ops::agents::label(context, &caller(&request)?, name, set, remove).await?;
    Ok(Response::new(records::agent(labeled)))
}

pub async fn create_token(
    context: &Arc<Context>,
    request: Request<CreateTokenRequest>,
) -> Result<Response<CreateTokenResponse>, Status> {
    let caller = caller(&request)?;
    let CreateTokenRequest {
        labels,
        ttl_secs,
        uses,
    } = request.into_inner();
    let new = ops::tokens::NewToken {
        labels: labels.into_iter().collect(),
        ttl: std::time::Duration::from_secs(ttl_secs),
        uses,
    };
    let token = ops::tokens::create(context, &caller, new).await?;
    Ok(Response::new(CreateTokenResponse {
        token: token.token,
        token_id: token.id,
        expires_at: token.expires_at.to_string(),
    }))
}

pub async fn list_tokens(
    context: &Arc<Context>,
    request: Request<ListTokensRequest>,
) -> Result<Response<TokenList>, Status> {
    let tokens = ops::tokens::list(context, &caller(&request)?)?;
    Ok(Response::new(records::token_list(tokens)))
}

pub async fn revoke_token(
    context: &Arc<Context>,
    request: Request<RevokeTokenRequest>,
) -> Result<Response<TokenReply>, Status> {
    let id = &request.get_ref().token_id;
    let revoked = ops::tokens::revoke(context, &caller(&request)?, id).await?;
    Ok(Response::new(records::token(revoked)))
}
