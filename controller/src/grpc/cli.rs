//! The `Cli` service: what the `berth` command line calls. Reads need the
//! viewer role, deploys and stops the operator role, tokens and agents the
//! admin role. Every mutating call is audited.

use std::sync::Arc;

use berth_proto::v1::cli_server::Cli;
use berth_proto::v1::{
    CreateDeploymentRequest, CreateTokenRequest, CreateTokenResponse, DeploymentReply,
    GetAgentRequest, GetDeploymentRequest, GetLogsRequest, GetStatusRequest, InspectAppRequest,
    JsonReply, ListAgentsRequest, ListDeploymentsRequest, ListDeploymentsResponse,
    ListRegistriesRequest, ListTokensRequest, LogRecord, PutBlobChunk, PutBlobResponse,
    RegistryLoginRequest, RegistryLogoutRequest, RevokeTokenRequest, StatBlobRequest,
    StatBlobResponse, StopAppRequest, WhoAmIRequest, WhoAmIResponse,
};
use berth_proto::v1::{
    FleetExecEvent, FleetExecRequest, ListAuditRequest, RerunRequest, RollbackRequest,
};
use berth_shared::id::DeploymentId;
use berth_shared::record::Timestamp;
use berth_shared::state::DeploymentStatus;
use tonic::{Request, Response, Status, Streaming};

use super::BoxStream;
use super::auth::require;
use super::status::json;
use crate::server::Context;
use crate::store::{ListQuery, Role, Sort};

mod agents;
mod build;
pub(crate) mod deploy;
mod domain;
mod exec;
mod hosts;
mod lifecycle;
mod resolve;
mod target;
mod tokens;

pub struct CliApi {
    context: Arc<Context>,
}

impl CliApi {
    pub fn new(context: Arc<Context>) -> CliApi {
        CliApi { context }
    }
}

/// Parses a deployment id from a request, as a not-found-style error.
pub fn parse_deployment_id(text: &str) -> Result<DeploymentId, Status> {
    text.parse()
        .map_err(|err: String| Status::invalid_argument(err))
}

/// Most deployments one `ListDeployments` call returns.
const MAX_LIST_LIMIT: u32 = 1000;
/// Longest free-text search, in characters.
const MAX_SEARCH_CHARS: usize = 200;
/// Largest `offset`, so one call cannot make the store walk without end.
const MAX_LIST_OFFSET: u32 = 1_000_000;

/// Checks a `ListDeploymentsRequest` and turns it into a store query.
fn list_query(request: ListDeploymentsRequest) -> Result<ListQuery, Status> {
    let statuses = request
        .status
        .iter()
        .map(|status| status.parse::<DeploymentStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Status::invalid_argument(format!("status: {err}")))?;
    let sort = match request.sort.as_str() {
        "" => Sort::default(),
        text => text
            .parse::<Sort>()
            .map_err(|err| Status::invalid_argument(format!("sort: {err}")))?,
    };
    if request.search.chars().count() > MAX_SEARCH_CHARS {
        return Err(Status::invalid_argument(format!(
            "search: at most {MAX_SEARCH_CHARS} characters"
        )));
    }
    if request.offset > MAX_LIST_OFFSET {
        return Err(Status::invalid_argument(format!(
            "offset: at most {MAX_LIST_OFFSET}; narrow the query with filters instead"
        )));
    }
    let given = |text: String| Some(text).filter(|text| !text.is_empty());
    Ok(ListQuery {
        app: given(request.app),
        environment: given(request.environment),
        statuses,
        // 0 asks for the store's default page size.
        limit: request.limit.min(MAX_LIST_LIMIT) as usize,
        triggered_by: given(request.triggered_by),
        search: given(request.search),
        sort,
        ascending: request.ascending,
        offset: request.offset as usize,
    })
}

#[tonic::async_trait]
impl Cli for CliApi {
    type WatchDeploymentStream = BoxStream<DeploymentReply>;
    type GetLogsStream = BoxStream<LogRecord>;
    type ExecStream = BoxStream<FleetExecEvent>;
    type InspectStream = BoxStream<JsonReply>;

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = require(&request, Role::Viewer)?;
        let health = self.context.store.health();
        Ok(Response::new(WhoAmIResponse {
            principal: caller.principal.name,
            role: caller.principal.role.as_str().into(),
            store_problem: health.problem.unwrap_or_default(),
            store_problem_since_ms: health.since_ms.unwrap_or(0),
        }))
    }

    async fn put_blob(
        &self,
        request: Request<Streaming<PutBlobChunk>>,
    ) -> Result<Response<PutBlobResponse>, Status> {
        let caller = require(&request, Role::Operator)?;
        deploy::put_blob(&self.context, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn stat_blob(
        &self,
        request: Request<StatBlobRequest>,
    ) -> Result<Response<StatBlobResponse>, Status> {
        require(&request, Role::Viewer)?;
        let size = self.context.store.blob_size(&request.get_ref().digest)?;
        let present =
            size.is_some() && self.context.blobs.path(&request.get_ref().digest)?.exists();
        Ok(Response::new(StatBlobResponse {
            present,
            size: size.unwrap_or(0),
        }))
    }

    async fn create_deployment(
        &self,
        request: Request<CreateDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let (deployment, existing) =
            deploy::create(&self.context, &caller, request.into_inner()).await?;
        let mut response = Response::new(DeploymentReply {
            json: json(&deployment)?,
        });
        if existing {
            response.metadata_mut().insert(
                berth_proto::EXISTING_DEPLOYMENT_METADATA,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        Ok(response)
    }

    async fn get_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        require(&request, Role::Viewer)?;
        let id = parse_deployment_id(&request.get_ref().id)?;
        let deployment = self.context.store.get_deployment(id)?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn list_deployments(
        &self,
        request: Request<ListDeploymentsRequest>,
    ) -> Result<Response<ListDeploymentsResponse>, Status> {
        require(&request, Role::Viewer)?;
        let query = list_query(request.into_inner())?;
        // A search or a sort by status or app may read many index keys.
        let store = self.context.store.clone();
        let deployments = tokio::task::spawn_blocking(move || store.list_deployments(&query))
            .await
            .map_err(|err| Status::internal(format!("list deployments: {err}")))??;
        Ok(Response::new(ListDeploymentsResponse {
            json: json(&deployments)?,
        }))
    }

    async fn watch_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<Self::WatchDeploymentStream>, Status> {
        require(&request, Role::Viewer)?;
        let id = parse_deployment_id(&request.get_ref().id)?;
        super::follow::watch(self.context.clone(), id).map(Response::new)
    }

    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        require(&request, Role::Viewer)?;
        super::follow::logs(self.context.clone(), request.into_inner()).map(Response::new)
    }

    async fn stop_app(
        &self,
        request: Request<StopAppRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let deployment = deploy::stop(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn stop_selected(
        &self,
        request: Request<berth_proto::v1::StopSelectedRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let stopped = deploy::stop_selected(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(JsonReply {
            json: json(&stopped)?,
        }))
    }

    async fn delete_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let id = parse_deployment_id(&request.get_ref().id)?;
        let deployment = deploy::delete(&self.context, &caller, id).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn cancel_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let id = parse_deployment_id(&request.get_ref().id)?;
        let deployment = lifecycle::cancel(&self.context, &caller, id).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn retry_deployment(
        &self,
        request: Request<RerunRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let deployment = lifecycle::retry(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn redeploy_deployment(
        &self,
        request: Request<RerunRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let deployment = lifecycle::redeploy(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn start_app(
        &self,
        request: Request<StopAppRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let deployment = lifecycle::start(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn rollback(
        &self,
        request: Request<RollbackRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let deployment = lifecycle::rollback(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn purge_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Operator)?;
        let id = parse_deployment_id(&request.get_ref().id)?;
        let reply = lifecycle::purge(&self.context, &caller, id).await?;
        Ok(Response::new(JsonReply {
            json: json(&reply)?,
        }))
    }

    async fn exec(
        &self,
        request: Request<FleetExecRequest>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let caller = require(&request, Role::Operator)?;
        exec::exec(self.context.clone(), &caller, request.into_inner()).map(Response::new)
    }

    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let entries = lifecycle::audit_log(&self.context, request.get_ref())?;
        Ok(Response::new(JsonReply {
            json: json(&entries)?,
        }))
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let rows = deploy::status(&self.context, &request.get_ref().environment)?;
        Ok(Response::new(JsonReply { json: json(&rows)? }))
    }

    async fn inspect(
        &self,
        request: Request<InspectAppRequest>,
    ) -> Result<Response<Self::InspectStream>, Status> {
        require(&request, Role::Viewer)?;
        let hosts = agents::inspect(&self.context, request.get_ref()).await?;
        let replies: Vec<Result<JsonReply, Status>> = hosts
            .iter()
            .map(|host| json(host).map(|json| JsonReply { json }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn registry_login(
        &self,
        request: Request<RegistryLoginRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Admin)?;
        let view = tokens::registry_login(&self.context, &caller, request.into_inner()).await?;
        Ok(Response::new(JsonReply { json: json(&view)? }))
    }

    async fn list_registries(
        &self,
        request: Request<ListRegistriesRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let views: Vec<_> = self
            .context
            .store
            .list_registries()?
            .iter()
            .map(|record| record.view())
            .collect();
        Ok(Response::new(JsonReply {
            json: json(&views)?,
        }))
    }

    async fn registry_logout(
        &self,
        request: Request<RegistryLogoutRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Admin)?;
        let server = request.into_inner().server;
        if !self.context.store.remove_registry(&server)? {
            return Err(Status::not_found(format!(
                "no credentials are held for registry `{server}`"
            )));
        }
        self.context
            .store
            .audit(&caller.who(), "registry.logout", &server, "ok")?;
        self.context.store.flush().await?;
        Ok(Response::new(JsonReply {
            json: json(&serde_json::json!({ "server": server, "removed": true }))?,
        }))
    }

    async fn resolve_deployment(
        &self,
        request: Request<berth_proto::v1::ResolveDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        require(&request, Role::Viewer)?;
        let request = request.get_ref();
        let deployment =
            resolve::current_deployment(&self.context, &request.app, &request.environment)?;
        Ok(Response::new(DeploymentReply {
            json: json(&deployment)?,
        }))
    }

    async fn list_jobs(
        &self,
        request: Request<berth_proto::v1::ListJobsRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let jobs = exec::list_jobs(&self.context, request.get_ref().limit)?;
        Ok(Response::new(JsonReply { json: json(&jobs)? }))
    }

    async fn get_job(
        &self,
        request: Request<berth_proto::v1::GetJobRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let job = self.context.store.get_job(&request.get_ref().id)?;
        Ok(Response::new(JsonReply { json: json(&job)? }))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let views = agents::list(&self.context)?;
        Ok(Response::new(JsonReply {
            json: json(&views)?,
        }))
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Viewer)?;
        let view = agents::show(&self.context, &request.get_ref().name)?;
        Ok(Response::new(JsonReply { json: json(&view)? }))
    }

    async fn revoke_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Admin)?;
        let view = agents::revoke(&self.context, &caller, &request.get_ref().name).await?;
        Ok(Response::new(JsonReply { json: json(&view)? }))
    }

    async fn label_agent(
        &self,
        request: Request<berth_proto::v1::LabelAgentRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Admin)?;
        let view = agents::label(&self.context, &caller, request.get_ref()).await?;
        Ok(Response::new(JsonReply { json: json(&view)? }))
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let caller = require(&request, Role::Admin)?;
        tokens::create(&self.context, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        require(&request, Role::Admin)?;
        let now = Timestamp::now();
        let views: Vec<_> = self
            .context
            .store
            .list_tokens()?
            .iter()
            .map(|token| token.view(now))
            .collect();
        Ok(Response::new(JsonReply {
            json: json(&views)?,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = require(&request, Role::Admin)?;
        let view = tokens::revoke(&self.context, &caller, &request.get_ref().token_id).await?;
        Ok(Response::new(JsonReply { json: json(&view)? }))
    }
}
