//! `berth status --controllers`: the controllers of this store, the one
//! serving (the one answering: a standby does not listen) and those
//! standing by, with the agents and the one-at-a-time work each holds.

use berth_shared::record::{ControllerList, ControllerRole, ControllerView, Timestamp};

use super::{Caller, Result};
use crate::server::Context;
use crate::store::Role;

/// The work one controller of a store does at a time; the serving one
/// holds all of it.
pub const ONE_AT_A_TIME: &[&str] = &[
    "dispatch",
    "lost-task and deadline sweeper",
    "log retention",
    "webhook delivery",
    "git push worker",
    "blob eviction",
];

/// The controllers of this store, the serving one first.
pub fn list(context: &Context, caller: &Caller) -> Result<ControllerList> {
    caller.require(Role::Viewer)?;
    let store = &context.store;
    let serving = store.serving_controller()?;
    let mut controllers = Vec::new();
    if let Some(serving) = serving {
        controllers.push(ControllerView {
            role: ControllerRole::Serving,
            host: serving.host,
            pid: serving.pid,
            listen: serving.listen,
            since: timestamp(serving.since_ms),
            agents: u32::try_from(context.registry.online()).unwrap_or(u32::MAX),
            holds: ONE_AT_A_TIME.iter().map(|work| work.to_string()).collect(),
        });
    }
    for standby in store.standbys()? {
        controllers.push(ControllerView {
            role: ControllerRole::Standby,
            host: standby.host,
            pid: standby.pid,
            listen: standby.listen,
            since: timestamp(standby.since_ms),
            agents: 0,
            holds: Vec::new(),
        });
    }
    Ok(ControllerList {
        store: store.engine()?.to_string(),
        controllers,
    })
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}
