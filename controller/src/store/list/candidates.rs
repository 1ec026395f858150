//! The ids a query's driving index yields, before the records are read
//! and checked against the remaining conditions.

use std::collections::BTreeSet;

use berth_shared::id::DeploymentId;
use berth_shared::state::{DEPLOYMENT_STATUSES, DeploymentStatus};

use super::super::keys::{app_prefix, id_from_suffix, name_prefix, status_prefix};
use super::super::{Store, StoreError};
use super::sort::{Sort, SortKey, rank};
use super::{Candidates, Driver, short_key};

impl Store {
    pub(super) fn candidates(
        &self,
        driver: &Driver<'_>,
        sort: Sort,
        ascending: bool,
    ) -> Result<Candidates<'_>, StoreError> {
        let keyed = |ids: Vec<DeploymentId>| match sort {
            Sort::Created => {
                Candidates::Keyed(ids.into_iter().map(|id| (SortKey::Id, id)).collect())
            }
            Sort::Status | Sort::App => Candidates::Unkeyed(ids),
        };
        Ok(match driver {
            Driver::AppEnvironment(app, env) => {
                self.by_app_index(&app_prefix(app, env), |_| true, sort)?
            }
            Driver::App(app) => self.by_app_index(&name_prefix(app), |_| true, sort)?,
            Driver::Environment(env) => {
                self.by_app_index(b"", |group| environment_of(group) == env.as_bytes(), sort)?
            }
            Driver::User(user) => keyed(self.ids_of_user(user)?),
            Driver::Search(needle) => keyed(self.search_ids(needle)?),
            Driver::Statuses(statuses) => self.by_status_index(statuses, sort)?,
            Driver::Everything => match sort {
                Sort::Created => Candidates::Ordered(self.ids_by_time(ascending)),
                Sort::Status => self.by_status_index(&DEPLOYMENT_STATUSES, sort)?,
                Sort::App => self.by_app_index(b"", |_| true, sort)?,
            },
        })
    }

    /// Every id in `deployments`, newest first (oldest first when
    /// `ascending`), read lazily.
    fn ids_by_time(
        &self,
        ascending: bool,
    ) -> Box<dyn Iterator<Item = Result<DeploymentId, StoreError>> + '_> {
        let to_id = |key: Result<super::super::kv::IVec, StoreError>| {
            id_from_suffix(&key?).ok_or_else(|| short_key("deployments"))
        };
        let t = match self.t() {
            Ok(t) => t,
            Err(err) => return Box::new(std::iter::once(Err(err))),
        };
        if ascending {
            Box::new(t.deployments.iter().keys().map(to_id))
        } else {
            Box::new(t.deployments.iter().keys().rev().map(to_id))
        }
    }

    /// Ids under `prefix` in `idx_app_env` whose `app \0 env \0` part
    /// passes `keep`; keyed unless the sort needs the status.
    fn by_app_index(
        &self,
        prefix: &[u8],
        keep: impl Fn(&[u8]) -> bool,
        sort: Sort,
    ) -> Result<Candidates<'_>, StoreError> {
        let mut keyed = Vec::new();
        for key in self.t()?.idx_app.scan_prefix(prefix).keys() {
            let key = key?;
            let id = id_from_suffix(&key).ok_or_else(|| short_key("idx_app_env"))?;
            let group = &key[..key.len() - 16];
            if keep(group) {
                let sort_key = match sort {
                    Sort::App => SortKey::App(group.to_vec()),
                    Sort::Created | Sort::Status => SortKey::Id,
                };
                keyed.push((sort_key, id));
            }
        }
        Ok(match sort {
            Sort::Status => Candidates::Unkeyed(keyed.into_iter().map(|(_, id)| id).collect()),
            Sort::Created | Sort::App => Candidates::Keyed(keyed),
        })
    }

    /// Ids with any of `statuses`; keyed unless the sort needs the app.
    fn by_status_index(
        &self,
        statuses: &[DeploymentStatus],
        sort: Sort,
    ) -> Result<Candidates<'_>, StoreError> {
        let wanted: BTreeSet<usize> = statuses.iter().map(|status| rank(*status)).collect();
        let mut keyed = Vec::new();
        for rank in wanted {
            let Some(status) = DEPLOYMENT_STATUSES.get(rank) else {
                continue;
            };
            for key in self
                .t()?
                .idx_status
                .scan_prefix(status_prefix(*status))
                .keys()
            {
                let id = id_from_suffix(&key?).ok_or_else(|| short_key("idx_status"))?;
                let sort_key = match sort {
                    Sort::Status => SortKey::Status(rank),
                    Sort::Created | Sort::App => SortKey::Id,
                };
                keyed.push((sort_key, id));
            }
        }
        Ok(match sort {
            Sort::App => Candidates::Unkeyed(keyed.into_iter().map(|(_, id)| id).collect()),
            Sort::Created | Sort::Status => Candidates::Keyed(keyed),
        })
    }

    /// Ids of deployments `user` triggered.
    fn ids_of_user(&self, user: &str) -> Result<Vec<DeploymentId>, StoreError> {
        let prefix = name_prefix(user);
        let mut ids = Vec::new();
        for key in self.t()?.idx_user.scan_prefix(&prefix).keys() {
            let key = key?;
            if key.len() == prefix.len() + 16 {
                ids.extend(id_from_suffix(&key));
            }
        }
        Ok(ids)
    }
}

/// The `env` of an `app \0 env \0` group.
fn environment_of(group: &[u8]) -> &[u8] {
    let rest = group
        .iter()
        .position(|byte| *byte == 0)
        .map_or(&[][..], |end| &group[end + 1..]);
    rest.strip_suffix(&[0]).unwrap_or(rest)
}
