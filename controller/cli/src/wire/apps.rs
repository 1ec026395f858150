//! The app catalogue and its ratings from their messages.

use berth_proto::v1 as pb;
use berth_shared::record::{
    AppDetail, AppSummary, DeploymentBrief, EnvironmentHistory, EnvironmentSummary, RatingSummary,
};

use super::{all, deployment_status, parse, required, ts, unreadable};
use crate::Failure;

pub fn app_list(reply: pb::AppList) -> Result<Vec<AppSummary>, Failure> {
    let pb::AppList { apps } = reply;
    all(apps, app_summary)
}

pub fn app(reply: pb::AppReply) -> Result<AppDetail, Failure> {
    let pb::AppReply { app } = reply;
    let pb::AppDetail {
        app,
        rating,
        environments,
    } = required(app, "app")?;
    Ok(AppDetail {
        app,
        rating: rating_summary(required(rating, "rating")?)?,
        environments: all(environments, environment_history)?,
    })
}

pub fn rating(reply: pb::RatingReply) -> Result<RatingSummary, Failure> {
    let pb::RatingReply { rating } = reply;
    rating_summary(required(rating, "rating")?)
}

fn app_summary(message: pb::AppSummary) -> Result<AppSummary, Failure> {
    let pb::AppSummary {
        app,
        environments,
        rating,
    } = message;
    Ok(AppSummary {
        app,
        environments: all(environments, environment_summary)?,
        rating: rating_summary(required(rating, "rating")?)?,
    })
}

fn environment_summary(message: pb::EnvironmentSummary) -> Result<EnvironmentSummary, Failure> {
    let pb::EnvironmentSummary {
        environment,
        latest,
    } = message;
    Ok(EnvironmentSummary {
        environment,
        latest: deployment_brief(required(latest, "latest deployment")?)?,
    })
}

fn environment_history(message: pb::EnvironmentHistory) -> Result<EnvironmentHistory, Failure> {
    let pb::EnvironmentHistory {
        environment,
        deployments,
    } = message;
    Ok(EnvironmentHistory {
        environment,
        deployments: all(deployments, deployment_brief)?,
    })
}

fn rating_summary(message: pb::RatingSummary) -> Result<RatingSummary, Failure> {
    let pb::RatingSummary {
        count,
        average,
        histogram,
        my_stars,
    } = message;
    let histogram = <[u64; 5]>::try_from(histogram.as_slice())
        .map_err(|_| unreadable(format!("a histogram of {} counts", histogram.len())))?;
    let my_stars = my_stars
        .map(|stars| u8::try_from(stars).map_err(|_| unreadable(format!("{stars} stars"))))
        .transpose()?;
    Ok(RatingSummary {
        count,
        average,
        histogram,
        my_stars,
    })
}

fn deployment_brief(message: pb::DeploymentBrief) -> Result<DeploymentBrief, Failure> {
    let pb::DeploymentBrief {
        id,
        version,
        status,
        created_at_ms,
        triggered_by,
    } = message;
    Ok(DeploymentBrief {
        id: parse(&id, "a deployment id")?,
        version,
        status: deployment_status(status)?,
        created_at: ts(created_at_ms),
        triggered_by,
    })
}
