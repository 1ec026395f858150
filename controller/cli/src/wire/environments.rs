//! Environments' records from their messages.

use berth_proto::v1 as pb;
use berth_shared::record::EnvironmentView;

use super::{all, required, ts, unreadable};
use crate::Failure;

pub fn environments(reply: pb::EnvironmentList) -> Result<Vec<EnvironmentView>, Failure> {
    let pb::EnvironmentList { environments } = reply;
    all(environments, environment_view)
}

pub fn environment(reply: pb::EnvironmentReply) -> Result<EnvironmentView, Failure> {
    let pb::EnvironmentReply { environment } = reply;
    environment_view(required(environment, "environment")?)
}

fn environment_view(message: pb::EnvironmentView) -> Result<EnvironmentView, Failure> {
    let pb::EnvironmentView {
        app,
        name,
        kind,
        is_default,
        protected,
        approvals,
        vars,
        created_at_ms,
        created_by,
        updated_at_ms,
        updated_by,
        window,
    } = message;
    let approvals = u8::try_from(approvals)
        .map_err(|_| unreadable(format!("an environment needing {approvals} approvals")))?;
    Ok(EnvironmentView {
        app,
        name,
        kind,
        is_default,
        protected,
        approvals,
        window,
        vars: vars.into_iter().collect(),
        created_at: ts(created_at_ms),
        created_by,
        updated_at: ts(updated_at_ms),
        updated_by,
    })
}
