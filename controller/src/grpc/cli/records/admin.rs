//! The administration's records as messages (the audit log, registry
//! credentials, what purge and logout removed), and the replies that
//! carry them.

use berth_proto::v1 as pb;
use berth_shared::record::{AuditEntry, LoggedOut, Purged, RegistryView};

pub fn audit(records: Vec<AuditEntry>) -> pb::AuditReply {
    pb::AuditReply {
        entries: records.into_iter().map(audit_entry).collect(),
    }
}

fn audit_entry(record: AuditEntry) -> pb::AuditEntry {
    let AuditEntry {
        at,
        who,
        action,
        target,
        outcome,
    } = record;
    pb::AuditEntry {
        at_ms: at.0,
        who,
        action,
        target,
        outcome,
    }
}

pub fn registry_list(records: Vec<RegistryView>) -> pb::RegistryList {
    pb::RegistryList {
        registries: records.into_iter().map(registry_view).collect(),
    }
}

pub fn registry(record: RegistryView) -> pb::RegistryReply {
    pb::RegistryReply {
        registry: Some(registry_view(record)),
    }
}

fn registry_view(record: RegistryView) -> pb::RegistryView {
    let RegistryView {
        server,
        username,
        created_at,
        created_by,
    } = record;
    pb::RegistryView {
        server,
        username,
        created_at_ms: created_at.0,
        created_by,
    }
}

pub fn purged(record: Purged) -> pb::PurgeReply {
    let Purged {
        id,
        app,
        environment,
        purged,
        log_lines_removed,
    } = record;
    pb::PurgeReply {
        id: id.to_string(),
        app,
        environment,
        purged,
        log_lines_removed,
    }
}

pub fn logged_out(record: LoggedOut) -> pb::RegistryLogoutReply {
    let LoggedOut { server, removed } = record;
    pb::RegistryLogoutReply { server, removed }
}
