//! The `Cli` service: what the `berth` command line calls. A thin adapter
//! over the application layer (`crate::ops`): each method takes the caller
//! the interceptor authenticated, decodes the request, calls one
//! operation, and encodes its result; errors become statuses in one place
//! (`grpc/status.rs`). Roles and audit live in the operations.

use std::sync::Arc;

use berth_proto::v1 as pb;
use berth_proto::v1::cli_server::Cli;
use berth_proto::v1::{
    AgentList, AgentReply, AuditReply, CreateDeploymentRequest, CreateTokenRequest,
    CreateTokenResponse, DeploymentList, DeploymentReply, FleetExecEvent, FleetExecRequest,
    GetAgentRequest, GetDeploymentRequest, GetJobRequest, GetLogsRequest, GetStatusRequest,
    HostInspect, InspectAppRequest, JobList, JobReply, LabelAgentRequest, ListAgentsRequest,
    ListAuditRequest, ListDeploymentsRequest, ListDeploymentsResponse, ListJobsRequest,
    ListRegistriesRequest, ListTokensRequest, LogRecord, PurgeReply, PutBlobChunk, PutBlobResponse,
    RegistryList, RegistryLoginRequest, RegistryLogoutReply, RegistryLogoutRequest, RegistryReply,
    RerunRequest, ResolveDeploymentRequest, RevokeTokenRequest, RollbackRequest, StatBlobRequest,
    StatBlobResponse, StatusReply, StopAppRequest, StopSelectedRequest, TokenList, TokenReply,
    WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response, Status, Streaming};

use super::BoxStream;
use crate::ops::rerun::Claim;
use crate::server::Context;

mod apps;
mod codec;
mod deployments;
mod environments;
mod fleet;
mod people;
mod records;
mod secrets;

pub use codec::{chunks, first_chunk};

/// A unary method's answer.
type Reply<T> = Result<Response<T>, Status>;

pub struct CliApi {
    context: Arc<Context>,
}

impl CliApi {
    pub fn new(context: Arc<Context>) -> CliApi {
        CliApi { context }
    }
}

pub(super) fn claim(request: &RerunRequest) -> Claim {
    Claim {
        force: request.force,
        queue: request.queue,
    }
}

#[tonic::async_trait]
impl Cli for CliApi {
    type WatchDeploymentStream = BoxStream<DeploymentReply>;
    type GetLogsStream = BoxStream<LogRecord>;
    type ExecStream = BoxStream<FleetExecEvent>;
    type InspectStream = BoxStream<HostInspect>;

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        fleet::who_am_i(&self.context, request).await
    }

    async fn put_blob(
        &self,
        request: Request<Streaming<PutBlobChunk>>,
    ) -> Result<Response<PutBlobResponse>, Status> {
        deployments::put_blob(&self.context, request).await
    }

    async fn stat_blob(
        &self,
        request: Request<StatBlobRequest>,
    ) -> Result<Response<StatBlobResponse>, Status> {
        deployments::stat_blob(&self.context, request).await
    }

    async fn create_deployment(
        &self,
        request: Request<CreateDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::create_deployment(&self.context, request).await
    }

    async fn get_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::get_deployment(&self.context, request).await
    }

    async fn list_deployments(
        &self,
        request: Request<ListDeploymentsRequest>,
    ) -> Result<Response<ListDeploymentsResponse>, Status> {
        deployments::list_deployments(&self.context, request).await
    }

    async fn watch_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<Self::WatchDeploymentStream>, Status> {
        deployments::watch_deployment(&self.context, request).await
    }

    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        deployments::get_logs(&self.context, request).await
    }

    async fn stop_app(
        &self,
        request: Request<StopAppRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::stop_app(&self.context, request).await
    }

    async fn stop_selected(
        &self,
        request: Request<StopSelectedRequest>,
    ) -> Result<Response<DeploymentList>, Status> {
        deployments::stop_selected(&self.context, request).await
    }

    async fn delete_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::delete_deployment(&self.context, request).await
    }

    async fn cancel_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::cancel_deployment(&self.context, request).await
    }

    async fn approve_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::approve_deployment(&self.context, request).await
    }

    async fn retry_deployment(
        &self,
        request: Request<RerunRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::retry_deployment(&self.context, request).await
    }

    async fn redeploy_deployment(
        &self,
        request: Request<RerunRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::redeploy_deployment(&self.context, request).await
    }

    async fn start_app(
        &self,
        request: Request<StopAppRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::start_app(&self.context, request).await
    }

    async fn rollback(
        &self,
        request: Request<RollbackRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::rollback(&self.context, request).await
    }

    async fn purge_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<PurgeReply>, Status> {
        deployments::purge_deployment(&self.context, request).await
    }

    async fn exec(
        &self,
        request: Request<FleetExecRequest>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        fleet::exec(&self.context, request).await
    }

    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<AuditReply>, Status> {
        fleet::list_audit(&self.context, request).await
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<StatusReply>, Status> {
        fleet::get_status(&self.context, request).await
    }

    async fn inspect(
        &self,
        request: Request<InspectAppRequest>,
    ) -> Result<Response<Self::InspectStream>, Status> {
        fleet::inspect(&self.context, request).await
    }

    async fn registry_login(
        &self,
        request: Request<RegistryLoginRequest>,
    ) -> Result<Response<RegistryReply>, Status> {
        fleet::registry_login(&self.context, request).await
    }

    async fn list_registries(
        &self,
        request: Request<ListRegistriesRequest>,
    ) -> Result<Response<RegistryList>, Status> {
        fleet::list_registries(&self.context, request).await
    }

    async fn registry_logout(
        &self,
        request: Request<RegistryLogoutRequest>,
    ) -> Result<Response<RegistryLogoutReply>, Status> {
        fleet::registry_logout(&self.context, request).await
    }

    async fn resolve_deployment(
        &self,
        request: Request<ResolveDeploymentRequest>,
    ) -> Result<Response<DeploymentReply>, Status> {
        deployments::resolve_deployment(&self.context, request).await
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<JobList>, Status> {
        fleet::list_jobs(&self.context, request).await
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<JobReply>, Status> {
        fleet::get_job(&self.context, request).await
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<AgentList>, Status> {
        fleet::list_agents(&self.context, request).await
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<AgentReply>, Status> {
        fleet::get_agent(&self.context, request).await
    }

    async fn revoke_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<AgentReply>, Status> {
        fleet::revoke_agent(&self.context, request).await
    }

    async fn label_agent(
        &self,
        request: Request<LabelAgentRequest>,
    ) -> Result<Response<AgentReply>, Status> {
        fleet::label_agent(&self.context, request).await
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        fleet::create_token(&self.context, request).await
    }

    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<TokenList>, Status> {
        fleet::list_tokens(&self.context, request).await
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<TokenReply>, Status> {
        fleet::revoke_token(&self.context, request).await
    }
    async fn add_user(
        &self,
        request: Request<berth_proto::v1::AddUserRequest>,
    ) -> Result<Response<berth_proto::v1::UserReply>, Status> {
        people::add_user(&self.context, request).await
    }

    async fn list_users(
        &self,
        request: Request<berth_proto::v1::ListUsersRequest>,
    ) -> Result<Response<berth_proto::v1::UserList>, Status> {
        people::list_users(&self.context, request).await
    }

    async fn set_user_role(
        &self,
        request: Request<berth_proto::v1::SetUserRoleRequest>,
    ) -> Result<Response<berth_proto::v1::UserReply>, Status> {
        people::set_user_role(&self.context, request).await
    }

    async fn set_user_disabled(
        &self,
        request: Request<berth_proto::v1::SetUserDisabledRequest>,
    ) -> Result<Response<berth_proto::v1::UserReply>, Status> {
        people::set_user_disabled(&self.context, request).await
    }

    async fn remove_user(
        &self,
        request: Request<berth_proto::v1::RemoveUserRequest>,
    ) -> Result<Response<berth_proto::v1::UserReply>, Status> {
        people::remove_user(&self.context, request).await
    }

    async fn set_user_password(
        &self,
        request: Request<berth_proto::v1::SetUserPasswordRequest>,
    ) -> Result<Response<berth_proto::v1::UserReply>, Status> {
        people::set_user_password(&self.context, request).await
    }

    async fn create_setup_link(
        &self,
        request: Request<berth_proto::v1::CreateSetupLinkRequest>,
    ) -> Result<Response<berth_proto::v1::SetupLinkReply>, Status> {
        people::create_setup_link(&self.context, request).await
    }

    async fn issue_user_credential(
        &self,
        request: Request<berth_proto::v1::IssueUserCredentialRequest>,
    ) -> Result<Response<berth_proto::v1::UserCredentialReply>, Status> {
        people::issue_user_credential(&self.context, request).await
    }

    async fn create_api_token(
        &self,
        request: Request<berth_proto::v1::CreateApiTokenRequest>,
    ) -> Result<Response<berth_proto::v1::CreatedApiTokenReply>, Status> {
        people::create_api_token(&self.context, request).await
    }

    async fn list_api_tokens(
        &self,
        request: Request<berth_proto::v1::ListApiTokensRequest>,
    ) -> Result<Response<berth_proto::v1::ApiTokenList>, Status> {
        people::list_api_tokens(&self.context, request).await
    }

    async fn revoke_api_token(
        &self,
        request: Request<berth_proto::v1::RevokeApiTokenRequest>,
    ) -> Result<Response<berth_proto::v1::ApiTokenReply>, Status> {
        people::revoke_api_token(&self.context, request).await
    }

    async fn list_apps(
        &self,
        request: Request<berth_proto::v1::ListAppsRequest>,
    ) -> Result<Response<berth_proto::v1::AppList>, Status> {
        apps::list_apps(&self.context, request).await
    }

    async fn get_app(
        &self,
        request: Request<berth_proto::v1::GetAppRequest>,
    ) -> Result<Response<berth_proto::v1::AppReply>, Status> {
        apps::get_app(&self.context, request).await
    }

    async fn rate_app(
        &self,
        request: Request<berth_proto::v1::RateAppRequest>,
    ) -> Result<Response<berth_proto::v1::RatingReply>, Status> {
        apps::rate_app(&self.context, request).await
    }

    async fn clear_app_rating(
        &self,
        request: Request<berth_proto::v1::ClearAppRatingRequest>,
    ) -> Result<Response<berth_proto::v1::RatingReply>, Status> {
        apps::clear_app_rating(&self.context, request).await
    }

    async fn create_environment(
        &self,
        request: Request<berth_proto::v1::CreateEnvironmentRequest>,
    ) -> Result<Response<berth_proto::v1::EnvironmentReply>, Status> {
        environments::create_environment(&self.context, request).await
    }

    async fn list_environments(
        &self,
        request: Request<berth_proto::v1::ListEnvironmentsRequest>,
    ) -> Result<Response<berth_proto::v1::EnvironmentList>, Status> {
        environments::list_environments(&self.context, request).await
    }

    async fn get_environment(
        &self,
        request: Request<berth_proto::v1::GetEnvironmentRequest>,
    ) -> Result<Response<berth_proto::v1::EnvironmentReply>, Status> {
        environments::get_environment(&self.context, request).await
    }

    async fn set_environment(
        &self,
        request: Request<berth_proto::v1::SetEnvironmentRequest>,
    ) -> Result<Response<berth_proto::v1::EnvironmentReply>, Status> {
        environments::set_environment(&self.context, request).await
    }

    async fn remove_environment(
        &self,
        request: Request<berth_proto::v1::RemoveEnvironmentRequest>,
    ) -> Result<Response<berth_proto::v1::EnvironmentReply>, Status> {
        environments::remove_environment(&self.context, request).await
    }

    async fn set_secret(&self, request: Request<pb::SetSecretRequest>) -> Reply<pb::SecretReply> {
        secrets::set_secret(&self.context, request).await
    }

    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::SecretList> {
        secrets::list_secrets(&self.context, request).await
    }

    async fn remove_secret(
        &self,
        request: Request<pb::RemoveSecretRequest>,
    ) -> Reply<pb::SecretReply> {
        secrets::remove_secret(&self.context, request).await
    }
}
