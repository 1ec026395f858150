//! The round trip of the app catalogue's records (as `tests.rs` does for
//! the others): every field set, through these conversions, the protobuf
//! encoding and the CLI's `wire` module, back to the same JSON.

use berth_cli::wire;
use berth_shared::id::DeploymentId;
use berth_shared::record::{
    AppDetail, AppSummary, DeploymentBrief, EnvironmentHistory, EnvironmentSummary, RatingSummary,
    Timestamp,
};
use berth_shared::state::DeploymentStatus;

use super::apps::{app_list, app_reply, rating_reply};
use super::tests::round_trip;

fn brief(version: &str, status: DeploymentStatus) -> DeploymentBrief {
    DeploymentBrief {
        id: DeploymentId::new(),
        version: version.into(),
        status,
        created_at: Timestamp(1_700_000_000_123),
        triggered_by: "ana via token ci".into(),
    }
}

fn rating() -> RatingSummary {
    RatingSummary::new([1, 2, 3, 4, 5], Some(4))
}

#[test]
fn the_catalogue_and_ratings_round_trip() {
    round_trip(&rating(), rating_reply, wire::rating);
    let summary = AppSummary {
        app: "web".into(),
        environments: vec![
            EnvironmentSummary {
                environment: "prod".into(),
                latest: brief("1.4.2", DeploymentStatus::Deployed),
            },
            EnvironmentSummary {
                environment: "staging".into(),
                latest: brief("1.5.0-rc1", DeploymentStatus::Failed),
            },
        ],
        rating: rating(),
    };
    round_trip(&vec![summary.clone(), summary], app_list, wire::app_list);
    let detail = AppDetail {
        app: "web".into(),
        rating: rating(),
        environments: vec![EnvironmentHistory {
            environment: "prod".into(),
            deployments: vec![
                brief("1.4.2", DeploymentStatus::Deployed),
                brief("1.4.1", DeploymentStatus::Superseded),
            ],
        }],
    };
    round_trip(&detail, app_reply, wire::app);
}
