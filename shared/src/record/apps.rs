//! The app catalogue: every app that has deployments, the newest one in
//! each of its environments, its recent history, and how people rate it
//! (1 to 5 stars, one rating per user), as `berth apps` and
//! `GET /api/v1/apps` give them.

use serde::{Deserialize, Serialize};

use super::{Deployment, Timestamp};
use crate::id::DeploymentId;
use crate::state::DeploymentStatus;

/// A deployment in brief, as the catalogue lists it (the whole record is
/// `GET /api/v1/deployments/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentBrief {
    pub id: DeploymentId,
    pub version: String,
    pub status: DeploymentStatus,
    pub created_at: Timestamp,
    pub triggered_by: String,
}

impl From<&Deployment> for DeploymentBrief {
    fn from(deployment: &Deployment) -> DeploymentBrief {
        DeploymentBrief {
            id: deployment.id,
            version: deployment.version.clone(),
            status: deployment.status,
            created_at: deployment.created_at,
            triggered_by: deployment.triggered_by.clone(),
        }
    }
}

/// An app's ratings: how many people rated it, their average, and the
/// caller's own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatingSummary {
    /// Ratings given, one per user.
    pub count: u64,
    /// The mean of the stars, rounded to one decimal; `null` while no one
    /// rated the app.
    pub average: Option<f64>,
    /// How many ratings gave 1, 2, 3, 4 and 5 stars, in that order.
    #[cfg_attr(feature = "openapi", schema(min_items = 5, max_items = 5))]
    pub histogram: [u64; 5],
    /// The caller's own stars, if it rated the app.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub my_stars: Option<u8>,
}

impl RatingSummary {
    /// The summary of the ratings counted per number of stars in
    /// `histogram` (how many gave 1, 2, 3, 4 and 5).
    pub fn new(histogram: [u64; 5], my_stars: Option<u8>) -> RatingSummary {
        let count = histogram.iter().sum::<u64>();
        let sum: u64 = (1..).zip(histogram).map(|(stars, n)| stars * n).sum();
        let average = (count > 0).then(|| (sum as f64 * 10.0 / count as f64).round() / 10.0);
        RatingSummary {
            count,
            average,
            histogram,
            my_stars,
        }
    }
}

/// An app's newest deployment in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentSummary {
    pub environment: String,
    /// The newest deployment, whatever its status.
    pub latest: DeploymentBrief,
}

/// One app of the catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppSummary {
    pub app: String,
    /// Every environment the app has deployments in, by name.
    pub environments: Vec<EnvironmentSummary>,
    pub rating: RatingSummary,
}

/// An app's recent deployments in one environment, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentHistory {
    pub environment: String,
    /// At most 20; `GET /api/v1/deployments?app=&environment=` pages
    /// through the rest.
    pub deployments: Vec<DeploymentBrief>,
}

/// One app: its ratings and its recent history in each environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppDetail {
    pub app: String,
    pub rating: RatingSummary,
    /// Every environment the app has deployments in, by name.
    pub environments: Vec<EnvironmentHistory>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(histogram: [u64; 5], count: u64, average: Option<f64>) {
        let summary = RatingSummary::new(histogram, None);
        assert_eq!((summary.count, summary.average), (count, average));
    }

    #[test]
    fn the_average_is_rounded_to_one_decimal() {
        check([0; 5], 0, None);
        check([0, 0, 0, 0, 1], 1, Some(5.0));
        check([0, 0, 0, 1, 1], 2, Some(4.5));
        check([2, 1, 0, 0, 0], 3, Some(1.3));
        check([1, 2, 0, 0, 0], 3, Some(1.7));
        check([0, 0, 2, 2, 0], 4, Some(3.5));
    }
}
