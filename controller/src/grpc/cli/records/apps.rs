//! The app catalogue and its ratings as messages.

use berth_proto::v1 as pb;
use berth_shared::record::{
    AppDetail, AppSummary, DeploymentBrief, EnvironmentHistory, EnvironmentSummary, RatingSummary,
};

use super::deployment_status;

pub fn app_list(records: Vec<AppSummary>) -> pb::AppList {
    pb::AppList {
        apps: records.into_iter().map(app_summary).collect(),
    }
}

pub fn app_reply(record: AppDetail) -> pb::AppReply {
    let AppDetail {
        app,
        rating,
        environments,
    } = record;
    pb::AppReply {
        app: Some(pb::AppDetail {
            app,
            rating: Some(rating_summary(rating)),
            environments: environments.into_iter().map(environment_history).collect(),
        }),
    }
}

pub fn rating_reply(record: RatingSummary) -> pb::RatingReply {
    pb::RatingReply {
        rating: Some(rating_summary(record)),
    }
}

fn app_summary(record: AppSummary) -> pb::AppSummary {
    let AppSummary {
        app,
        environments,
        rating,
    } = record;
    pb::AppSummary {
        app,
        environments: environments.into_iter().map(environment_summary).collect(),
        rating: Some(rating_summary(rating)),
    }
}

fn environment_summary(record: EnvironmentSummary) -> pb::EnvironmentSummary {
    let EnvironmentSummary {
        environment,
        latest,
    } = record;
    pb::EnvironmentSummary {
        environment,
        latest: Some(deployment_brief(latest)),
    }
}

fn environment_history(record: EnvironmentHistory) -> pb::EnvironmentHistory {
    let EnvironmentHistory {
        environment,
        deployments,
    } = record;
    pb::EnvironmentHistory {
        environment,
        deployments: deployments.into_iter().map(deployment_brief).collect(),
    }
}

fn rating_summary(record: RatingSummary) -> pb::RatingSummary {
    let RatingSummary {
        count,
        average,
        histogram,
        my_stars,
    } = record;
    pb::RatingSummary {
        count,
        average,
        histogram: histogram.to_vec(),
        my_stars: my_stars.map(u32::from),
    }
}

fn deployment_brief(record: DeploymentBrief) -> pb::DeploymentBrief {
    let DeploymentBrief {
        id,
        version,
        status,
        created_at,
        triggered_by,
    } = record;
    pb::DeploymentBrief {
        id: id.to_string(),
        version,
        status: deployment_status(status).into(),
        created_at_ms: created_at.0,
        triggered_by,
    }
}
