//! How a listing orders deployments: the [`Sort`] a caller names (on the
//! command line and on the wire), the [`SortKey`] each one compares (taken
//! from an index key when the driving index holds it, else from the
//! record), and the comparison that puts equal keys newest first.

use std::cmp::Ordering;

use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use berth_shared::state::{DEPLOYMENT_STATUSES, DeploymentStatus};

use super::super::keys::app_prefix;

pub use berth_shared::query::Sort;

/// What a sort compares before the id, from an index key or a record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SortKey {
    /// [`Sort::Created`]: only the id counts.
    Id,
    /// Position in [`DEPLOYMENT_STATUSES`].
    Status(usize),
    /// The `app \0 env \0` bytes, which sort as (app, env) would.
    App(Vec<u8>),
}

impl SortKey {
    pub(super) fn of(sort: Sort, deployment: &Deployment) -> SortKey {
        match sort {
            Sort::Created => SortKey::Id,
            Sort::Status => SortKey::Status(rank(deployment.status)),
            Sort::App => SortKey::App(app_prefix(&deployment.app, &deployment.environment)),
        }
    }
}

/// Position of a status in lifecycle order.
pub(super) fn rank(status: DeploymentStatus) -> usize {
    DEPLOYMENT_STATUSES
        .iter()
        .position(|known| *known == status)
        .unwrap_or(DEPLOYMENT_STATUSES.len())
}

/// Orders by key in the query's direction, then newest first (or, for
/// [`Sort::Created`] ascending, oldest first).
pub(super) fn order(
    ascending: bool,
) -> impl Fn(&(SortKey, DeploymentId), &(SortKey, DeploymentId)) -> Ordering {
    move |(key_a, id_a), (key_b, id_b)| {
        let by_key = if ascending {
            key_a.cmp(key_b)
        } else {
            key_b.cmp(key_a)
        };
        by_key.then_with(|| match (key_a, ascending) {
            (SortKey::Id, true) => id_a.cmp(id_b),
            _ => id_b.cmp(id_a),
        })
    }
}
