//! `berth resource`'s messages as the berth-shared records.

use berth_proto::v1 as pb;
use berth_shared::record::{Restored, SnapshotList, SnapshotView};

use super::ts;
use crate::Failure;

pub fn snapshot_list(message: pb::SnapshotList) -> Result<SnapshotList, Failure> {
    let pb::SnapshotList {
        snapshots,
        unanswered,
    } = message;
    Ok(SnapshotList {
        snapshots: snapshots.into_iter().map(snapshot).collect(),
        unanswered,
    })
}

fn snapshot(message: pb::SnapshotView) -> SnapshotView {
    let pb::SnapshotView {
        host,
        app,
        environment,
        resource,
        volume,
        file,
        taken_at_ms,
        bytes,
    } = message;
    SnapshotView {
        host,
        app,
        environment,
        resource,
        volume,
        file,
        taken_at: ts(taken_at_ms),
        bytes,
    }
}

pub fn restored(message: pb::RestoreReply) -> Result<Restored, Failure> {
    let pb::RestoreReply { host, lines } = message;
    Ok(Restored { host, lines })
}
