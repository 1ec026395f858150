//! The secret store's records as messages: names, scopes and versions,
//! never a value.

use berth_proto::v1 as pb;
use berth_shared::record::SecretView;

pub fn secret_list(records: Vec<SecretView>) -> pb::SecretList {
    pb::SecretList {
        secrets: records.into_iter().map(secret_view).collect(),
    }
}

pub fn secret_reply(record: SecretView) -> pb::SecretReply {
    pb::SecretReply {
        secret: Some(secret_view(record)),
    }
}

fn secret_view(record: SecretView) -> pb::SecretView {
    let SecretView {
        name,
        scope,
        version,
        updated_at,
        updated_by,
        created_at,
        created_by,
    } = record;
    pb::SecretView {
        name,
        scope: scope.to_string(),
        version,
        updated_at_ms: updated_at.0,
        updated_by,
        created_at_ms: created_at.0,
        created_by,
    }
}

#[cfg(test)]
mod tests {
    use berth_cli::wire;
    use berth_shared::record::{SecretScope, Timestamp};

    use super::*;
    use crate::grpc::cli::records::tests::round_trip;

    #[test]
    fn secrets_round_trip_through_the_wire() {
        let view = |scope: SecretScope| SecretView {
            name: "DB_URL".into(),
            scope,
            version: 12,
            updated_at: Timestamp(1_700_000_000_123),
            updated_by: "ana via token ci".into(),
            created_at: Timestamp(1_600_000_000_456),
            created_by: "admin".into(),
        };
        let app = view(SecretScope::app("web", "prod").expect("scope"));
        round_trip(&app, secret_reply, wire::secret);
        let both = vec![view(SecretScope::Fleet), app];
        round_trip(&both, secret_list, wire::secrets);
    }
}
