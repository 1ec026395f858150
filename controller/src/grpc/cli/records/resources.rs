//! `berth resource`'s records as messages: snapshots and a restore's lines.

use berth_proto::v1 as pb;
use berth_shared::record::{Restored, SnapshotList, SnapshotView};

pub fn snapshot_list(record: SnapshotList) -> pb::SnapshotList {
    let SnapshotList {
        snapshots,
        unanswered,
    } = record;
    pb::SnapshotList {
        snapshots: snapshots.into_iter().map(snapshot).collect(),
        unanswered,
    }
}

fn snapshot(record: SnapshotView) -> pb::SnapshotView {
    let SnapshotView {
        host,
        app,
        environment,
        resource,
        volume,
        file,
        taken_at,
        bytes,
    } = record;
    pb::SnapshotView {
        host,
        app,
        environment,
        resource,
        volume,
        file,
        taken_at_ms: taken_at.0,
        bytes,
    }
}

pub fn restore_reply(record: Restored) -> pb::RestoreReply {
    let Restored { host, lines } = record;
    pb::RestoreReply { host, lines }
}

#[cfg(test)]
mod tests {
    use berth_cli::wire;
    use berth_shared::record::Timestamp;

    use super::super::tests::round_trip;
    use super::*;

    #[test]
    fn snapshots_and_restores_round_trip() {
        let list = SnapshotList {
            snapshots: vec![SnapshotView {
                host: "web-1".into(),
                app: "web".into(),
                environment: "production".into(),
                resource: "db".into(),
                volume: "data".into(),
                file: "data-20261206T194500123Z.tar".into(),
                taken_at: Timestamp(1_796_586_300_123),
                bytes: 4096,
            }],
            unanswered: vec!["web-2: the host is offline".into()],
        };
        round_trip(&list, snapshot_list, wire::snapshot_list);
        let restored = Restored {
            host: "web-1".into(),
            lines: vec!["stopped resource db".into()],
        };
        round_trip(&restored, restore_reply, wire::restored);
    }
}
