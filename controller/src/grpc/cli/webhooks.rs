//! `Cli` methods of outgoing webhooks (`berth webhook ...`): decode, call
//! `ops::webhooks`, encode.

use std::sync::Arc;

use berth_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::records::webhooks as records;
use crate::grpc::auth::caller;
use crate::ops;
use crate::ops::webhooks::AddWebhook;
use crate::server::Context;

type Reply<T> = Result<Response<T>, Status>;

pub async fn add(
    context: &Arc<Context>,
    mut request: Request<pb::AddWebhookRequest>,
) -> Reply<pb::CreatedWebhookReply> {
    let caller = caller(&request)?;
    let pb::AddWebhookRequest {
        url,
        events,
        app,
        environment,
        format,
    } = std::mem::take(request.get_mut());
    let request = AddWebhook {
        url,
        events,
        app,
        environment,
        format,
    };
    let created = ops::webhooks::add(context, &caller, request).await?;
    Ok(Response::new(records::created(created)))
}

pub async fn list(
    context: &Arc<Context>,
    request: Request<pb::ListWebhooksRequest>,
) -> Reply<pb::WebhookList> {
    let webhooks = ops::webhooks::list(context, &caller(&request)?)?;
    Ok(Response::new(records::list(webhooks)))
}

pub async fn remove(
    context: &Arc<Context>,
    request: Request<pb::WebhookIdRequest>,
) -> Reply<pb::WebhookReply> {
    let removed = ops::webhooks::remove(context, &caller(&request)?, &request.get_ref().id).await?;
    Ok(Response::new(records::reply(removed)))
}

pub async fn enable(
    context: &Arc<Context>,
    request: Request<pb::WebhookIdRequest>,
) -> Reply<pb::WebhookReply> {
    let enabled = ops::webhooks::enable(context, &caller(&request)?, &request.get_ref().id).await?;
    Ok(Response::new(records::reply(enabled)))
}

pub async fn test(
    context: &Arc<Context>,
    request: Request<pb::WebhookIdRequest>,
) -> Reply<pb::DeliveryReply> {
    let queued = ops::webhooks::test(context, &caller(&request)?, &request.get_ref().id).await?;
    Ok(Response::new(pb::DeliveryReply {
        delivery: Some(records::delivery(queued)),
    }))
}

pub async fn deliveries(
    context: &Arc<Context>,
    request: Request<pb::ListDeliveriesRequest>,
) -> Reply<pb::DeliveryList> {
    let pb::ListDeliveriesRequest { id, limit } = request.get_ref();
    let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
    let deliveries = ops::webhooks::deliveries(context, &caller(&request)?, id, limit)?;
    Ok(Response::new(pb::DeliveryList {
        deliveries: deliveries.into_iter().map(records::delivery).collect(),
    }))
}
