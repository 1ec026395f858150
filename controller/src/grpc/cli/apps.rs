//! `Cli` methods of the app catalogue and its ratings (`berth apps`), and
//! an app's DORA figures (`berth metrics dora`).

use std::sync::Arc;

use berth_proto::v1::{
    AppList, AppReply, ClearAppRatingRequest, DoraReply, GetAppRequest, GetDoraRequest,
    ListAppsRequest, RateAppRequest, RatingReply,
};
use tonic::{Request, Response, Status};

use super::records::apps as records;
use crate::grpc::auth::caller;
use crate::ops;
use crate::server::Context;

pub async fn list_apps(
    context: &Arc<Context>,
    request: Request<ListAppsRequest>,
) -> Result<Response<AppList>, Status> {
    let apps = ops::apps::list(context, &caller(&request)?).await?;
    Ok(Response::new(records::app_list(apps)))
}

pub async fn get_app(
    context: &Arc<Context>,
    request: Request<GetAppRequest>,
) -> Result<Response<AppReply>, Status> {
    let app = ops::apps::get(context, &caller(&request)?, &request.get_ref().app).await?;
    Ok(Response::new(records::app_reply(app)))
}

pub async fn rate_app(
    context: &Arc<Context>,
    request: Request<RateAppRequest>,
) -> Result<Response<RatingReply>, Status> {
    let RateAppRequest { app, stars } = request.get_ref();
    let rating = ops::ratings::rate(context, &caller(&request)?, app, *stars).await?;
    Ok(Response::new(records::rating_reply(rating)))
}

pub async fn clear_app_rating(
    context: &Arc<Context>,
    request: Request<ClearAppRatingRequest>,
) -> Result<Response<RatingReply>, Status> {
    let rating = ops::ratings::clear(context, &caller(&request)?, &request.get_ref().app).await?;
    Ok(Response::new(records::rating_reply(rating)))
}

pub async fn get_dora(
    context: &Arc<Context>,
    request: Request<GetDoraRequest>,
) -> Result<Response<DoraReply>, Status> {
    let GetDoraRequest {
        app,
        environment,
        since,
        fix_window,
    } = request.get_ref().clone();
    let dora = ops::dora::DoraRequest {
        app,
        environment,
        since,
        fix_window,
    };
    let report = ops::dora::report(context, &caller(&request)?, &dora).await?;
    Ok(Response::new(super::records::dora::dora_reply(report)))
}
