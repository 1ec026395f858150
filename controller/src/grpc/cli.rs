//! The `Cli` service: what the `berth` command line calls. A thin adapter
//! over the application layer (`crate::ops`): each method takes the caller
//! the interceptor authenticated, decodes the request, calls one
//! operation, and encodes its result; errors become statuses in one place
//! (`grpc/status.rs`). Roles and audit live in the operations.

use std::sync::Arc;

use berth_proto::v1 as pb;
use berth_proto::v1::cli_server::Cli;
use berth_proto::v1::{
    AgentList, AgentReply, AuditReply, ControllerListReply, CreateDeploymentRequest,
    CreateTokenRequest, CreateTokenResponse, DeleteDeploymentRequest, DeploymentList,
    DeploymentReply, FleetExecEvent, FleetExecRequest, GetAgentRequest, GetDeploymentRequest,
    GetJobRequest, GetLogsRequest, GetStatusRequest, HostInspect, InspectAppRequest, JobList,
    JobReply, LabelAgentRequest, ListAgentsRequest, ListAuditRequest, ListControllersRequest,
    ListDeploymentsRequest, ListDeploymentsResponse, ListJobsRequest, ListRegistriesRequest,
    ListTokensRequest, LogRecord, PurgeReply, PutBlobChunk, PutBlobResponse, RegistryList,
    RegistryLoginRequest, RegistryLogoutReply, RegistryLogoutRequest, RegistryReply, RerunRequest,
    ResolveDeploymentRequest, RevokeTokenRequest, RollbackRequest, StatBlobRequest,
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
mod hooks;
mod people;
mod records;
mod resources;
mod secrets;
mod webhooks;

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

    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Reply<WhoAmIResponse> {
        fleet::who_am_i(&self.context, request).await
    }

    async fn put_blob(&self, request: Request<Streaming<PutBlobChunk>>) -> Reply<PutBlobResponse> {
        deployments::put_blob(&self.context, request).await
    }

    async fn stat_blob(&self, request: Request<StatBlobRequest>) -> Reply<StatBlobResponse> {
        deployments::stat_blob(&self.context, request).await
    }

    async fn create_deployment(
        &self,
        request: Request<CreateDeploymentRequest>,
    ) -> Reply<DeploymentReply> {
        deployments::create_deployment(&self.context, request).await
    }

    async fn get_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Reply<DeploymentReply> {
        deployments::get_deployment(&self.context, request).await
    }

    async fn list_deployments(
        &self,
        request: Request<ListDeploymentsRequest>,
    ) -> Reply<ListDeploymentsResponse> {
        deployments::list_deployments(&self.context, request).await
    }

    async fn watch_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Reply<Self::WatchDeploymentStream> {
        deployments::watch_deployment(&self.context, request).await
    }

    async fn get_logs(&self, request: Request<GetLogsRequest>) -> Reply<Self::GetLogsStream> {
        deployments::get_logs(&self.context, request).await
    }

    async fn stop_app(&self, request: Request<StopAppRequest>) -> Reply<DeploymentReply> {
        deployments::stop_app(&self.context, request).await
    }

    async fn stop_selected(&self, request: Request<StopSelectedRequest>) -> Reply<DeploymentList> {
        deployments::stop_selected(&self.context, request).await
    }

    async fn delete_deployment(
        &self,
        request: Request<DeleteDeploymentRequest>,
    ) -> Reply<DeploymentReply> {
        deployments::delete_deployment(&self.context, request).await
    }

    async fn cancel_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Reply<DeploymentReply> {
        deployments::cancel_deployment(&self.context, request).await
    }

    async fn approve_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Reply<DeploymentReply> {
        deployments::approve_deployment(&self.context, request).await
    }

    async fn retry_deployment(&self, request: Request<RerunRequest>) -> Reply<DeploymentReply> {
        deployments::retry_deployment(&self.context, request).await
    }

    async fn redeploy_deployment(&self, request: Request<RerunRequest>) -> Reply<DeploymentReply> {
        deployments::redeploy_deployment(&self.context, request).await
    }

    async fn start_app(&self, request: Request<StopAppRequest>) -> Reply<DeploymentReply> {
        deployments::start_app(&self.context, request).await
    }

    async fn rollback(&self, request: Request<RollbackRequest>) -> Reply<DeploymentReply> {
        deployments::rollback(&self.context, request).await
    }

    async fn purge_deployment(&self, request: Request<GetDeploymentRequest>) -> Reply<PurgeReply> {
        deployments::purge_deployment(&self.context, request).await
    }

    async fn exec(&self, request: Request<FleetExecRequest>) -> Reply<Self::ExecStream> {
        fleet::exec(&self.context, request).await
    }

    async fn list_audit(&self, request: Request<ListAuditRequest>) -> Reply<AuditReply> {
        fleet::list_audit(&self.context, request).await
    }

    async fn get_status(&self, request: Request<GetStatusRequest>) -> Reply<StatusReply> {
        fleet::get_status(&self.context, request).await
    }
    async fn list_controllers(
        &self,
        request: Request<ListControllersRequest>,
    ) -> Reply<ControllerListReply> {
        fleet::list_controllers(&self.context, request).await
    }

    async fn inspect(&self, request: Request<InspectAppRequest>) -> Reply<Self::InspectStream> {
        fleet::inspect(&self.context, request).await
    }

    async fn registry_login(&self, request: Request<RegistryLoginRequest>) -> Reply<RegistryReply> {
        fleet::registry_login(&self.context, request).await
    }

    async fn list_registries(
        &self,
        request: Request<ListRegistriesRequest>,
    ) -> Reply<RegistryList> {
        fleet::list_registries(&self.context, request).await
    }

    async fn registry_logout(
        &self,
        request: Request<RegistryLogoutRequest>,
    ) -> Reply<RegistryLogoutReply> {
        fleet::registry_logout(&self.context, request).await
    }

    async fn resolve_deployment(
        &self,
        request: Request<ResolveDeploymentRequest>,
    ) -> Reply<DeploymentReply> {
        deployments::resolve_deployment(&self.context, request).await
    }

    async fn list_jobs(&self, request: Request<ListJobsRequest>) -> Reply<JobList> {
        fleet::list_jobs(&self.context, request).await
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Reply<JobReply> {
        fleet::get_job(&self.context, request).await
    }

    async fn list_agents(&self, request: Request<ListAgentsRequest>) -> Reply<AgentList> {
        fleet::list_agents(&self.context, request).await
    }

    async fn get_agent(&self, request: Request<GetAgentRequest>) -> Reply<AgentReply> {
        fleet::get_agent(&self.context, request).await
    }

    async fn revoke_agent(&self, request: Request<GetAgentRequest>) -> Reply<AgentReply> {
        fleet::revoke_agent(&self.context, request).await
    }

    async fn label_agent(&self, request: Request<LabelAgentRequest>) -> Reply<AgentReply> {
        fleet::label_agent(&self.context, request).await
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Reply<CreateTokenResponse> {
        fleet::create_token(&self.context, request).await
    }

    async fn list_tokens(&self, request: Request<ListTokensRequest>) -> Reply<TokenList> {
        fleet::list_tokens(&self.context, request).await
    }

    async fn revoke_token(&self, request: Request<RevokeTokenRequest>) -> Reply<TokenReply> {
        fleet::revoke_token(&self.context, request).await
    }
    async fn add_user(&self, request: Request<pb::AddUserRequest>) -> Reply<pb::UserReply> {
        people::add_user(&self.context, request).await
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Reply<pb::UserList> {
        people::list_users(&self.context, request).await
    }

    async fn set_user_role(
        &self,
        request: Request<pb::SetUserRoleRequest>,
    ) -> Reply<pb::UserReply> {
        people::set_user_role(&self.context, request).await
    }

    async fn set_user_disabled(
        &self,
        request: Request<pb::SetUserDisabledRequest>,
    ) -> Reply<pb::UserReply> {
        people::set_user_disabled(&self.context, request).await
    }

    async fn remove_user(&self, request: Request<pb::RemoveUserRequest>) -> Reply<pb::UserReply> {
        people::remove_user(&self.context, request).await
    }

    async fn set_user_password(
        &self,
        request: Request<pb::SetUserPasswordRequest>,
    ) -> Reply<pb::UserReply> {
        people::set_user_password(&self.context, request).await
    }

    async fn create_setup_link(
        &self,
        request: Request<pb::CreateSetupLinkRequest>,
    ) -> Reply<pb::SetupLinkReply> {
        people::create_setup_link(&self.context, request).await
    }

    async fn issue_user_credential(
        &self,
        request: Request<pb::IssueUserCredentialRequest>,
    ) -> Reply<pb::UserCredentialReply> {
        people::issue_user_credential(&self.context, request).await
    }

    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Reply<pb::CreatedApiTokenReply> {
        people::create_api_token(&self.context, request).await
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Reply<pb::ApiTokenList> {
        people::list_api_tokens(&self.context, request).await
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Reply<pb::ApiTokenReply> {
        people::revoke_api_token(&self.context, request).await
    }

    async fn list_apps(&self, request: Request<pb::ListAppsRequest>) -> Reply<pb::AppList> {
        apps::list_apps(&self.context, request).await
    }

    async fn get_app(&self, request: Request<pb::GetAppRequest>) -> Reply<pb::AppReply> {
        apps::get_app(&self.context, request).await
    }

    async fn rate_app(&self, request: Request<pb::RateAppRequest>) -> Reply<pb::RatingReply> {
        apps::rate_app(&self.context, request).await
    }

    async fn clear_app_rating(
        &self,
        request: Request<pb::ClearAppRatingRequest>,
    ) -> Reply<pb::RatingReply> {
        apps::clear_app_rating(&self.context, request).await
    }

    async fn create_environment(
        &self,
        request: Request<pb::CreateEnvironmentRequest>,
    ) -> Reply<pb::EnvironmentReply> {
        environments::create_environment(&self.context, request).await
    }

    async fn list_environments(
        &self,
        request: Request<pb::ListEnvironmentsRequest>,
    ) -> Reply<pb::EnvironmentList> {
        environments::list_environments(&self.context, request).await
    }

    async fn get_environment(
        &self,
        request: Request<pb::GetEnvironmentRequest>,
    ) -> Reply<pb::EnvironmentReply> {
        environments::get_environment(&self.context, request).await
    }

    async fn set_environment(
        &self,
        request: Request<pb::SetEnvironmentRequest>,
    ) -> Reply<pb::EnvironmentReply> {
        environments::set_environment(&self.context, request).await
    }

    async fn remove_environment(
        &self,
        request: Request<pb::RemoveEnvironmentRequest>,
    ) -> Reply<pb::EnvironmentReply> {
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

    async fn add_webhook(
        &self,
        r: Request<pb::AddWebhookRequest>,
    ) -> Reply<pb::CreatedWebhookReply> {
        webhooks::add(&self.context, r).await
    }

    async fn list_webhooks(&self, r: Request<pb::ListWebhooksRequest>) -> Reply<pb::WebhookList> {
        webhooks::list(&self.context, r).await
    }

    async fn remove_webhook(&self, r: Request<pb::WebhookIdRequest>) -> Reply<pb::WebhookReply> {
        webhooks::remove(&self.context, r).await
    }

    async fn enable_webhook(&self, r: Request<pb::WebhookIdRequest>) -> Reply<pb::WebhookReply> {
        webhooks::enable(&self.context, r).await
    }

    async fn test_webhook(&self, r: Request<pb::WebhookIdRequest>) -> Reply<pb::DeliveryReply> {
        webhooks::test(&self.context, r).await
    }

    async fn add_hook(&self, r: Request<pb::AddHookRequest>) -> Reply<pb::CreatedHookReply> {
        hooks::add(&self.context, r).await
    }

    async fn list_hooks(&self, r: Request<pb::ListHooksRequest>) -> Reply<pb::HookList> {
        hooks::list(&self.context, r).await
    }

    async fn remove_hook(&self, r: Request<pb::HookIdRequest>) -> Reply<pb::HookReply> {
        hooks::remove(&self.context, r).await
    }

    async fn list_deliveries(
        &self,
        r: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::DeliveryList> {
        webhooks::deliveries(&self.context, r).await
    }

    async fn get_dora(&self, request: Request<pb::GetDoraRequest>) -> Reply<pb::DoraReply> {
        apps::get_dora(&self.context, request).await
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Reply<pb::SnapshotList> {
        resources::list_snapshots(&self.context, request).await
    }

    async fn restore_snapshot(
        &self,
        request: Request<pb::RestoreSnapshotRequest>,
    ) -> Reply<pb::RestoreReply> {
        resources::restore_snapshot(&self.context, request).await
    }
}
