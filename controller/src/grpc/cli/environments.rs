//! `Cli` methods of environments as records (`berth env`).

use std::sync::Arc;

use berth_proto::v1::{
    CreateEnvironmentRequest, EnvironmentList, EnvironmentReply, GetEnvironmentRequest,
    ListEnvironmentsRequest, RemoveEnvironmentRequest, SetEnvironmentRequest,
};
use tonic::{Request, Response, Status};

use super::records::environments as records;
use crate::grpc::auth::caller;
use crate::ops::environments::{self, EnvironmentChange, NewEnvironment, parse_kind};
use crate::server::Context;

pub async fn create_environment(
    context: &Arc<Context>,
    request: Request<CreateEnvironmentRequest>,
) -> Result<Response<EnvironmentReply>, Status> {
    let caller = caller(&request)?;
    let CreateEnvironmentRequest {
        app,
        name,
        kind,
        is_default,
        protected,
        approvals,
        vars,
        window,
    } = request.into_inner();
    let new = NewEnvironment {
        app,
        name,
        kind: parse_kind(&kind)?,
        is_default,
        protected,
        approvals,
        window,
        vars: vars.into_iter().collect(),
    };
    let environment = environments::create(context, &caller, new).await?;
    Ok(Response::new(records::environment_reply(environment)))
}

pub async fn list_environments(
    context: &Arc<Context>,
    request: Request<ListEnvironmentsRequest>,
) -> Result<Response<EnvironmentList>, Status> {
    let app = request.get_ref().app.as_deref();
    let listed = environments::list(context, &caller(&request)?, app)?;
    Ok(Response::new(records::environment_list(listed)))
}

pub async fn get_environment(
    context: &Arc<Context>,
    request: Request<GetEnvironmentRequest>,
) -> Result<Response<EnvironmentReply>, Status> {
    let GetEnvironmentRequest { app, name } = request.get_ref();
    let environment = environments::get(context, &caller(&request)?, app, name)?;
    Ok(Response::new(records::environment_reply(environment)))
}

pub async fn set_environment(
    context: &Arc<Context>,
    request: Request<SetEnvironmentRequest>,
) -> Result<Response<EnvironmentReply>, Status> {
    let caller = caller(&request)?;
    let SetEnvironmentRequest {
        app,
        name,
        kind,
        is_default,
        protected,
        approvals,
        set_vars,
        unset_vars,
        window,
    } = request.into_inner();
    let change = EnvironmentChange {
        kind: kind.as_deref().map(parse_kind).transpose()?,
        is_default,
        protected,
        approvals,
        window,
        set_vars: set_vars.into_iter().collect(),
        unset_vars,
    };
    let environment = environments::set(context, &caller, &app, &name, change).await?;
    Ok(Response::new(records::environment_reply(environment)))
}

pub async fn remove_environment(
    context: &Arc<Context>,
    request: Request<RemoveEnvironmentRequest>,
) -> Result<Response<EnvironmentReply>, Status> {
    let RemoveEnvironmentRequest { app, name } = request.get_ref();
    let environment = environments::remove(context, &caller(&request)?, app, name).await?;
    Ok(Response::new(records::environment_reply(environment)))
}
