//! `Cli` methods about people: users (admin) and API tokens.

use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::{
    AddUserRequest, ApiTokenList, ApiTokenReply, CreateApiTokenRequest, CreateSetupLinkRequest,
    CreatedApiTokenReply, IssueUserCredentialRequest, ListApiTokensRequest, ListUsersRequest,
    RemoveUserRequest, RevokeApiTokenRequest, SetUserDisabledRequest, SetUserPasswordRequest,
    SetUserRoleRequest, SetupLinkReply, UserCredentialReply, UserList, UserReply,
};
use tonic::{Request, Response, Status};

use super::records::people as records;
use crate::grpc::auth::caller;
use crate::ops::{self, Error};
use crate::server::Context;
use crate::store::Role;

/// A role named in a request.
fn role(text: &str) -> Result<Role, Status> {
    text.parse()
        .map_err(|err: String| Error::invalid(err).into())
}

pub async fn add_user(
    context: &Arc<Context>,
    request: Request<AddUserRequest>,
) -> Result<Response<UserReply>, Status> {
    let caller = caller(&request)?;
    let AddUserRequest {
        name,
        role: text,
        email,
    } = request.into_inner();
    let new = ops::users::NewUser {
        name,
        role: role(&text)?,
        email,
    };
    let user = ops::users::add(context, &caller, new).await?;
    Ok(Response::new(records::user(user)))
}

pub async fn list_users(
    context: &Arc<Context>,
    request: Request<ListUsersRequest>,
) -> Result<Response<UserList>, Status> {
    let users = ops::users::list(context, &caller(&request)?)?;
    Ok(Response::new(records::users(users)))
}

pub async fn set_user_role(
    context: &Arc<Context>,
    request: Request<SetUserRoleRequest>,
) -> Result<Response<UserReply>, Status> {
    let SetUserRoleRequest { name, role: text } = request.get_ref();
    let user = ops::users::set_role(context, &caller(&request)?, name, role(text)?).await?;
    Ok(Response::new(records::user(user)))
}

pub async fn set_user_disabled(
    context: &Arc<Context>,
    request: Request<SetUserDisabledRequest>,
) -> Result<Response<UserReply>, Status> {
    let SetUserDisabledRequest { name, disabled } = request.get_ref();
    let user = ops::users::set_disabled(context, &caller(&request)?, name, *disabled).await?;
    Ok(Response::new(records::user(user)))
}

pub async fn remove_user(
    context: &Arc<Context>,
    request: Request<RemoveUserRequest>,
) -> Result<Response<UserReply>, Status> {
    let user = ops::users::remove(context, &caller(&request)?, &request.get_ref().name).await?;
    Ok(Response::new(records::user(user)))
}

pub async fn set_user_password(
    context: &Arc<Context>,
    request: Request<SetUserPasswordRequest>,
) -> Result<Response<UserReply>, Status> {
    let SetUserPasswordRequest { name, password } = request.get_ref();
    let user = ops::users::set_password(context, &caller(&request)?, name, password).await?;
    Ok(Response::new(records::user(user)))
}

pub async fn create_setup_link(
    context: &Arc<Context>,
    request: Request<CreateSetupLinkRequest>,
) -> Result<Response<SetupLinkReply>, Status> {
    let CreateSetupLinkRequest {
        name,
        expires_in_secs,
    } = request.get_ref();
    let ttl = (*expires_in_secs > 0).then(|| Duration::from_secs(*expires_in_secs));
    let link = ops::setup_links::create(context, &caller(&request)?, name, ttl).await?;
    Ok(Response::new(SetupLinkReply {
        user: link.user,
        url: link.url,
        expires_at_ms: link.expires_at.0,
    }))
}

pub async fn issue_user_credential(
    context: &Arc<Context>,
    request: Request<IssueUserCredentialRequest>,
) -> Result<Response<UserCredentialReply>, Status> {
    let IssueUserCredentialRequest { name, csr_pem } = request.get_ref();
    let issued = ops::users::credential(context, &caller(&request)?, name, csr_pem).await?;
    Ok(Response::new(UserCredentialReply {
        user: issued.user,
        cert_pem: issued.cert_pem,
        ca_pem: issued.ca_pem,
    }))
}

pub async fn create_api_token(
    context: &Arc<Context>,
    request: Request<CreateApiTokenRequest>,
) -> Result<Response<CreatedApiTokenReply>, Status> {
    let caller = caller(&request)?;
    let CreateApiTokenRequest {
        name,
        expires_in_secs,
        role_cap,
    } = request.into_inner();
    let role_cap = match role_cap.as_str() {
        "" => None,
        text => Some(role(text)?),
    };
    let new = ops::api_tokens::NewApiToken {
        name,
        expires_in: Duration::from_secs(expires_in_secs),
        role_cap,
    };
    let created = ops::api_tokens::create(context, &caller, new).await?;
    Ok(Response::new(records::created_api_token(created)))
}

pub async fn list_api_tokens(
    context: &Arc<Context>,
    request: Request<ListApiTokensRequest>,
) -> Result<Response<ApiTokenList>, Status> {
    let tokens = ops::api_tokens::list(context, &caller(&request)?)?;
    Ok(Response::new(records::api_tokens(tokens)))
}

pub async fn revoke_api_token(
    context: &Arc<Context>,
    request: Request<RevokeApiTokenRequest>,
) -> Result<Response<ApiTokenReply>, Status> {
    let token = ops::api_tokens::revoke(context, &caller(&request)?, &request.get_ref().id).await?;
    Ok(Response::new(records::api_token(token)))
}
