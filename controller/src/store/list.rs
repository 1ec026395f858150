//! Deployment history queries (`berth ls`): filters, free-text search,
//! sorting and paging, answered from the secondary indexes.
//!
//! One index drives a query, the narrowest its filters allow (app and
//! environment, app, user, search, statuses, environment, or id order).
//! Only that index's candidates are read from `deployments` and checked
//! against the remaining conditions, so a listing never walks every record.
//! When the driving index's keys already hold what the sort compares, the
//! candidates are ordered from the keys and records are read lazily until
//! the page is full. App and environment names (checked like the
//! manifest's) and principal names hold no NUL byte, which keeps every
//! `name \0` prefix of the indexes contiguous. Searching lives in
//! `search`, ordering in `sort`.

mod candidates;
mod search;
mod sort;

use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use berth_shared::state::DeploymentStatus;

use super::{Store, StoreError, decode};
use search::is_found;
pub use sort::Sort;
use sort::{SortKey, order};

/// Results a query returns when it names no limit.
pub const DEFAULT_LIMIT: usize = 50;

/// Filters, order and page of a deployment listing; every filter given
/// must match.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub app: Option<String>,
    pub environment: Option<String>,
    /// Any of these statuses; empty means any status.
    pub statuses: Vec<DeploymentStatus>,
    /// At most this many results; 0 means [`DEFAULT_LIMIT`].
    pub limit: usize,
    /// Only deployments this principal triggered (exact match).
    pub triggered_by: Option<String>,
    /// Free text, case-insensitive: part of the app name, part of
    /// `triggered_by`, or the start of the id. Blank means no search.
    pub search: Option<String>,
    pub sort: Sort,
    /// Sort key ascending rather than descending (descending `created` is
    /// newest first). Deployments with equal keys stay newest first.
    pub ascending: bool,
    /// Results to skip after sorting.
    pub offset: usize,
    /// Only deployments made up to this id: a listing's snapshot, so that
    /// deployments made since do not shift its later pages.
    pub until: Option<DeploymentId>,
}

impl ListQuery {
    /// The search text, trimmed and lowercased, when there is any.
    fn needle(&self) -> Option<String> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_lowercase)
    }

    /// Whether a loaded deployment meets every condition.
    fn matches(&self, deployment: &Deployment, needle: Option<&str>) -> bool {
        self.app.as_ref().is_none_or(|app| &deployment.app == app)
            && self
                .environment
                .as_ref()
                .is_none_or(|env| &deployment.environment == env)
            && self
                .triggered_by
                .as_ref()
                .is_none_or(|user| berth_shared::record::user_of(&deployment.triggered_by) == user)
            && (self.statuses.is_empty() || self.statuses.contains(&deployment.status))
            && needle.is_none_or(|needle| is_found(deployment, needle))
    }
}

/// The index that supplies a query's candidates.
#[derive(Debug)]
enum Driver<'q> {
    AppEnvironment(&'q str, &'q str),
    App(&'q str),
    User(&'q str),
    Search(&'q str),
    Statuses(&'q [DeploymentStatus]),
    Environment(&'q str),
    Everything,
}

impl<'q> Driver<'q> {
    /// The narrowest index the query's filters allow.
    fn choose(query: &'q ListQuery, needle: Option<&'q str>) -> Driver<'q> {
        match (&query.app, &query.environment) {
            (Some(app), Some(env)) => Driver::AppEnvironment(app, env),
            (Some(app), None) => Driver::App(app),
            _ => {
                if let Some(user) = &query.triggered_by {
                    Driver::User(user)
                } else if let Some(needle) = needle {
                    Driver::Search(needle)
                } else if !query.statuses.is_empty() {
                    Driver::Statuses(&query.statuses)
                } else if let Some(env) = &query.environment {
                    Driver::Environment(env)
                } else {
                    Driver::Everything
                }
            }
        }
    }

    /// Whether the candidates are exactly the matches, so skipping
    /// `offset` of them needs no record.
    fn is_exact(&self, query: &ListQuery, needle: Option<&str>) -> bool {
        let by_app = matches!(self, Driver::AppEnvironment(..) | Driver::App(_));
        let by_env = matches!(self, Driver::AppEnvironment(..) | Driver::Environment(_));
        (query.app.is_none() || by_app)
            && (query.environment.is_none() || by_env)
            && (query.triggered_by.is_none() || matches!(self, Driver::User(_)))
            && (needle.is_none() || matches!(self, Driver::Search(_)))
            && (query.statuses.is_empty() || matches!(self, Driver::Statuses(_)))
    }
}

/// Candidate ids from an index, by how much of the order they carry.
enum Candidates<'a> {
    /// Already in the final order.
    Ordered(Box<dyn Iterator<Item = Result<DeploymentId, StoreError>> + 'a>),
    /// With their sort keys, read from the index keys.
    Keyed(Vec<(SortKey, DeploymentId)>),
    /// Without sort keys: those come from the records.
    Unkeyed(Vec<DeploymentId>),
}

/// What one listing reads: the query, its search text and its page size.
struct Page<'q> {
    query: &'q ListQuery,
    needle: Option<&'q str>,
    /// The candidates are exactly the matches (see [`Driver::is_exact`]).
    exact: bool,
    limit: usize,
}

fn short_key(tree: &'static str) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: "index key shorter than an id".into(),
    }
}

impl Store {
    /// The newest deployment of `app` in `environment` with one of
    /// `statuses`.
    pub fn latest(
        &self,
        app: &str,
        environment: &str,
        statuses: &[DeploymentStatus],
    ) -> Result<Option<Deployment>, StoreError> {
        Ok(self
            .list_deployments(&ListQuery {
                app: Some(app.to_string()),
                environment: Some(environment.to_string()),
                statuses: statuses.to_vec(),
                limit: 1,
                ..Default::default()
            })?
            .into_iter()
            .next())
    }

    /// Deployments matching `query`, sorted and paged, read through the
    /// secondary indexes.
    pub fn list_deployments(&self, query: &ListQuery) -> Result<Vec<Deployment>, StoreError> {
        let needle = query.needle();
        let needle = needle.as_deref();
        let driver = Driver::choose(query, needle);
        let page = Page {
            query,
            needle,
            exact: driver.is_exact(query, needle),
            limit: if query.limit == 0 {
                DEFAULT_LIMIT
            } else {
                query.limit
            },
        };
        let made_by_then = |id: &DeploymentId| query.until.is_none_or(|until| *id <= until);
        match self.candidates(&driver, query.sort, query.ascending)? {
            Candidates::Ordered(ids) => {
                let ids = ids.filter(|id| id.as_ref().map_or(true, made_by_then));
                self.read_in_order(ids, &page)
            }
            Candidates::Keyed(mut keyed) => {
                keyed.retain(|(_, id)| made_by_then(id));
                keyed.sort_by(order(query.ascending));
                self.read_in_order(keyed.into_iter().map(|(_, id)| Ok(id)), &page)
            }
            Candidates::Unkeyed(mut ids) => {
                ids.retain(made_by_then);
                self.read_then_sort(ids, &page)
            }
        }
    }

    /// Reads candidates already in the final order until the page is full;
    /// when they are exactly the matches, the offset skips them unread.
    fn read_in_order(
        &self,
        ids: impl Iterator<Item = Result<DeploymentId, StoreError>>,
        page: &Page<'_>,
    ) -> Result<Vec<Deployment>, StoreError> {
        let offset = page.query.offset;
        let mut skipped = 0;
        let mut found = Vec::new();
        for id in ids {
            let id = id?;
            if page.exact && skipped < offset {
                skipped += 1;
                continue;
            }
            let Some(deployment) = self.find_deployment(id)? else {
                continue;
            };
            if !page.query.matches(&deployment, page.needle) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            found.push(deployment);
            if found.len() >= page.limit {
                break;
            }
        }
        Ok(found)
    }

    /// Reads every candidate, keeps the matches, sorts them by their
    /// records and cuts the page.
    fn read_then_sort(
        &self,
        ids: Vec<DeploymentId>,
        page: &Page<'_>,
    ) -> Result<Vec<Deployment>, StoreError> {
        let query = page.query;
        let mut found = Vec::new();
        for id in ids {
            if let Some(deployment) = self.find_deployment(id)?
                && query.matches(&deployment, page.needle)
            {
                found.push(((SortKey::of(query.sort, &deployment), id), deployment));
            }
        }
        let compare = order(query.ascending);
        found.sort_by(|(a, _), (b, _)| compare(a, b));
        let found = found.into_iter().skip(query.offset).take(page.limit);
        Ok(found.map(|(_, deployment)| deployment).collect())
    }

    /// One deployment, or `None` when an index outlived it (purged between
    /// the index scan and the read).
    pub(super) fn find_deployment(
        &self,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, StoreError> {
        self.t()?
            .deployments
            .get(id.to_bytes())?
            .map(|bytes| decode("deployments", &bytes))
            .transpose()
    }
}
