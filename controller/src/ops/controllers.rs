//! `berth status --controllers`: the controllers serving from this store,
//! each with its agents, and the one running the once-per-store work with
//! its fencing token.

use berth_shared::record::{ControllerList, ControllerRole, ControllerView, Timestamp};

use super::{Caller, Result};
use crate::server::Context;
use crate::store::{Member, Role};

/// The work one controller of a store does at a time (`store/serving.rs`).
pub const ONE_AT_A_TIME: &[&str] = &[
    "lost-task and deadline sweeper",
    "log retention",
    "webhook delivery",
    "git push worker",
    "blob eviction",
];

/// The controllers of this store, longest serving first.
pub fn list(context: &Context, caller: &Caller) -> Result<ControllerList> {
    caller.require(Role::Viewer)?;
    let store = &context.store;
    let holder = store.serving_controller()?;
    let agents = context.agents_by_controller();
    let mut members = store.members()?;
    if members.is_empty() {
        // sled: this controller is the only one.
        members.push(context.cluster.me.clone());
    }
    let controllers = members
        .into_iter()
        .map(|member: Member| {
            let token = holder
                .as_ref()
                .filter(|h| {
                    h.pid == member.pid && h.host == member.host && h.listen == member.listen
                })
                .map_or(0, |h| h.token);
            let holds = if token > 0 {
                ONE_AT_A_TIME.iter().map(|work| work.to_string()).collect()
            } else {
                Vec::new()
            };
            ControllerView {
                role: ControllerRole::Serving,
                agents: agents.get(&member.id).copied().unwrap_or(0),
                host: member.host,
                pid: member.pid,
                listen: member.listen,
                since: timestamp(member.since_ms),
                holds,
                token,
            }
        })
        .collect();
    Ok(ControllerList {
        store: store.engine()?.to_string(),
        controllers,
    })
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}
