//! Environments' records as messages.

use berth_proto::v1 as pb;
use berth_shared::record::EnvironmentView;

pub fn environment_list(records: Vec<EnvironmentView>) -> pb::EnvironmentList {
    pb::EnvironmentList {
        environments: records.into_iter().map(environment).collect(),
    }
}

pub fn environment_reply(record: EnvironmentView) -> pb::EnvironmentReply {
    pb::EnvironmentReply {
        environment: Some(environment(record)),
    }
}

fn environment(record: EnvironmentView) -> pb::EnvironmentView {
    let EnvironmentView {
        app,
        name,
        kind,
        is_default,
        protected,
        approvals,
        window,
        vars,
        created_at,
        created_by,
        updated_at,
        updated_by,
    } = record;
    pb::EnvironmentView {
        app,
        name,
        kind,
        is_default,
        protected,
        approvals: approvals.into(),
        window,
        vars: vars.into_iter().collect(),
        created_at_ms: created_at.0,
        created_by,
        updated_at_ms: updated_at.0,
        updated_by,
    }
}

#[cfg(test)]
mod tests {
    use berth_cli::wire;
    use berth_shared::record::Timestamp;

    use super::super::tests::round_trip;
    use super::*;

    #[test]
    fn environments_round_trip() {
        let record = EnvironmentView {
            app: "web".into(),
            name: "prod".into(),
            kind: "production".into(),
            is_default: true,
            protected: true,
            approvals: 2,
            window: Some("Mon-Fri 09:00-17:00 Europe/Berlin".into()),
            vars: [("LOG".to_string(), "info".to_string())].into(),
            created_at: Timestamp(1_700_000_000_123),
            created_by: "olga".into(),
            updated_at: Timestamp(1_700_000_000_456),
            updated_by: "ada via token ci".into(),
        };
        round_trip(&record, environment_reply, wire::environment);
        let list = vec![record.clone(), record];
        round_trip(&list, environment_list, wire::environments);
    }
}
