//! The controllers serving from one store at once, and whose agent is
//! whose.
//!
//! On PostgreSQL every controller holds, for as long as it serves, the
//! advisory lock `controller` of its own id on a session named
//! `berth-controller ID PID LISTEN HOST`: the controllers alive are the
//! sessions holding their lock (a killed controller's session ends at once,
//! a lost machine's within about 11 s: `kv/pg/lock.rs`). Each also holds
//! the lock `offline` shared, which offline commands (`rotate-key`) take
//! exclusively: neither runs while the other does.
//!
//! An agent's lease names the controller its stream is connected to, and
//! the connection: it is written when the stream's hello is reconciled and
//! removed when the stream ends. A lease is good while its controller is
//! alive, which is what PostgreSQL says of its session, not a clock: a
//! controller that lost its session stops serving (`server.rs`), so a good
//! lease is never held by a controller that gave up its agents.

use std::collections::HashMap;

use berth_shared::id::AgentId;
use serde::{Deserialize, Serialize};

use super::kv::pg::SessionLock;
use super::kv::{Db, TxError};
use super::{Store, StoreError};

/// The name of the advisory lock each serving controller holds on its id.
const MEMBER_LOCK: &str = "controller";
/// The lock offline commands take exclusively and controllers shared.
pub(super) const OFFLINE_LOCK: &str = "offline";
/// How a controller's own session names itself.
const MEMBER_PREFIX: &str = "berth-controller ";
/// Where leases are kept in `meta`: `agent_lease \0 AGENT`.
const LEASE_PREFIX: &[u8] = b"agent_lease\0";
/// Where agents' last reports are kept in `meta`: `agent_report \0 AGENT`.
const REPORT_PREFIX: &[u8] = b"agent_report\0";

/// One controller serving from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its id, new at every start.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// Its gRPC address.
    pub listen: String,
    /// Since when it serves, in Unix milliseconds.
    pub since_ms: u64,
}

impl Member {
    fn session_name(&self) -> String {
        format!(
            "{MEMBER_PREFIX}{} {} {} {}",
            self.id, self.pid, self.listen, self.host
        )
    }

    fn parse(name: &str, since_ms: u64) -> Option<Member> {
        let mut words = name.strip_prefix(MEMBER_PREFIX)?.splitn(4, ' ');
        Some(Member {
            id: words.next()?.to_string(),
            pid: words.next()?.parse().ok()?,
            listen: words.next()?.to_string(),
            host: words.next().unwrap_or_default().to_string(),
            since_ms,
        })
    }
}

/// The lease of an agent's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The id of the controller its stream is connected to.
    pub controller: String,
    /// That controller's number for the connection.
    pub conn: u64,
}

fn lease_key(agent: AgentId) -> Vec<u8> {
    let mut key = LEASE_PREFIX.to_vec();
    key.extend_from_slice(&agent.to_bytes());
    key
}

fn report_key(agent: AgentId) -> Vec<u8> {
    let mut key = REPORT_PREFIX.to_vec();
    key.extend_from_slice(&agent.to_bytes());
    key
}

impl Store {
    /// Joins the controllers serving from this store as `me` (see the
    /// module's note); `None` on sled, where the file lock already makes a
    /// controller the only one.
    pub fn join(&self, me: &Member) -> Result<Option<SessionLock>, StoreError> {
        let pool = match &self.t()?.db {
            Db::Sled(_) => return Ok(None),
            Db::Pg(pool) => pool.clone(),
        };
        let own = pool.lock_id(MEMBER_LOCK, me.id.as_bytes());
        let offline = pool.lock_id(OFFLINE_LOCK, b"");
        pool.try_session_locks(own, offline, &me.session_name())?
            .map(Some)
            .ok_or_else(|| {
                StoreError::Refused(
                    "an offline command (rotate-key) runs on this PostgreSQL store; start the controller again once it has finished".into(),
                )
            })
    }

    /// The store's LISTEN/NOTIFY channel, started (`cluster.rs`); `None`
    /// on sled.
    pub fn bus(
        &self,
    ) -> Result<
        Option<(
            super::kv::pg::BusSender,
            tokio::sync::mpsc::UnboundedReceiver<super::kv::pg::Heard>,
        )>,
        StoreError,
    > {
        Ok(match &self.t()?.db {
            Db::Sled(_) => None,
            Db::Pg(pool) => Some(pool.bus()),
        })
    }

    /// The controllers serving from this store now, longest serving first
    /// (none on sled: the caller knows it is the only one).
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        let pool = match &self.t()?.db {
            Db::Sled(_) => return Ok(Vec::new()),
            Db::Pg(pool) => pool.clone(),
        };
        Ok(pool
            .holding(MEMBER_PREFIX)?
            .into_iter()
            .filter_map(|session| {
                let member = Member::parse(&session.name, session.since_ms)?;
                let own = pool.lock_id(MEMBER_LOCK, member.id.as_bytes());
                session.locks.contains(&own).then_some(member)
            })
            .collect())
    }

    /// Records that `agent`'s stream is connected to controller `me`.
    pub fn put_lease(&self, agent: AgentId, lease: &Lease) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(lease)
            .map_err(|err| StoreError::Database(format!("encode an agent's lease: {err}")))?;
        self.t()?.meta.insert(lease_key(agent), bytes)?;
        Ok(())
    }

    /// Removes `agent`'s lease if it is still `lease` (a newer stream,
    /// here or on another controller, keeps its own).
    pub fn drop_lease(&self, agent: AgentId, lease: &Lease) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(lease)
            .map_err(|err| StoreError::Database(format!("encode an agent's lease: {err}")))?;
        let _ = self
            .t()?
            .meta
            .compare_and_swap(lease_key(agent), Some(&bytes), None)?;
        Ok(())
    }

    /// Claims a task of deployment `id` for `agent` in one transaction:
    /// refused (`Conflict`) when `me` is given and the agent's lease names
    /// another controller (its stream moved there), else the next
    /// generation is drawn and `change` applied with it.
    pub fn claim_task<R>(
        &self,
        id: berth_shared::id::DeploymentId,
        agent: AgentId,
        me: Option<&str>,
        change: impl Fn(&mut berth_shared::record::Deployment, u64) -> Result<R, StoreError>,
    ) -> Result<(berth_shared::record::Deployment, R), StoreError> {
        let lease = lease_key(agent);
        self.change_deployment(id, &[&lease[..], b"generation"], |meta, deployment| {
            if let Some(me) = me
                && let Some(bytes) = meta.get(&lease)?
                && let Ok(lease) = serde_json::from_slice::<Lease>(&bytes)
                && lease.controller != me
            {
                return Err(TxError::Abort(StoreError::Conflict(format!(
                    "agent {agent}'s stream is on controller {} now",
                    lease.controller
                ))));
            }
            let generation = super::bump_generation(meta)?;
            let result = change(deployment, generation).map_err(TxError::Abort)?;
            Ok((result, Vec::new()))
        })
        .map(|(deployment, result, _)| (deployment, result))
    }

    /// Stores `agent`'s last report (`cluster/reports.rs`), stamped now.
    pub fn put_report(&self, agent: AgentId, report: &[u8]) -> Result<(), StoreError> {
        let mut value = super::health::now_ms().to_be_bytes().to_vec();
        value.extend_from_slice(report);
        self.t()?.meta.insert(report_key(agent), value)?;
        Ok(())
    }

    /// `agent`'s last stored report and when it was stored (Unix ms).
    pub fn report(&self, agent: AgentId) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let Some(value) = self.t()?.meta.get(report_key(agent))? else {
            return Ok(None);
        };
        let Some((at, report)) = value.split_first_chunk::<8>() else {
            return Ok(None);
        };
        Ok(Some((
            i64::try_from(u64::from_be_bytes(*at)).unwrap_or(i64::MAX),
            report.to_vec(),
        )))
    }

    /// `agent`'s lease, good or not.
    pub fn lease(&self, agent: AgentId) -> Result<Option<Lease>, StoreError> {
        let Some(bytes) = self.t()?.meta.get(lease_key(agent))? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Every agent's lease, good or not.
    pub fn leases(&self) -> Result<Vec<(AgentId, Lease)>, StoreError> {
        let mut leases = Vec::new();
        for entry in self.t()?.meta.scan_prefix(LEASE_PREFIX) {
            let (key, value) = entry?;
            let agent = key
                .get(LEASE_PREFIX.len()..)
                .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
                .map(AgentId::from_bytes);
            if let (Some(agent), Ok(lease)) = (agent, serde_json::from_slice::<Lease>(&value)) {
                leases.push((agent, lease));
            }
        }
        Ok(leases)
    }

    /// How many leases each controller holds, by its id.
    pub fn leases_by_controller(&self) -> Result<HashMap<String, u32>, StoreError> {
        let mut counts = HashMap::new();
        for (_, lease) in self.leases()? {
            *counts.entry(lease.controller).or_insert(0) += 1;
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_name_reads_back_as_its_member() {
        let me = Member {
            id: "0a1b2c3d".into(),
            host: "ctl-1 eu".into(),
            pid: 42,
            listen: "198.18.0.1:7443".into(),
            since_ms: 7,
        };
        assert_eq!(Member::parse(&me.session_name(), 7), Some(me));
        assert_eq!(Member::parse("berth-standby 1 a h", 0), None);
        assert_eq!(Member::parse("berth-controller x notapid a h", 0), None);
    }
}
