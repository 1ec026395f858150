//! The administration's messages (the audit log, registry credentials,
//! what purge and logout removed) as the berth-shared records.

use berth_proto::v1 as pb;
use berth_shared::record::{AuditEntry, LoggedOut, Purged, RegistryView};

use super::{parse, required, ts};
use crate::Failure;

pub fn audit(reply: pb::AuditReply) -> Vec<AuditEntry> {
    let pb::AuditReply { entries } = reply;
    entries.into_iter().map(audit_entry).collect()
}

fn audit_entry(message: pb::AuditEntry) -> AuditEntry {
    let pb::AuditEntry {
        at_ms,
        who,
        action,
        target,
        outcome,
    } = message;
    AuditEntry {
        at: ts(at_ms),
        who,
        action,
        target,
        outcome,
    }
}

pub fn registries(reply: pb::RegistryList) -> Vec<RegistryView> {
    let pb::RegistryList { registries } = reply;
    registries.into_iter().map(registry_view).collect()
}

pub fn registry(reply: pb::RegistryReply) -> Result<RegistryView, Failure> {
    let pb::RegistryReply { registry } = reply;
    Ok(registry_view(required(registry, "registry")?))
}

fn registry_view(message: pb::RegistryView) -> RegistryView {
    let pb::RegistryView {
        server,
        username,
        created_at_ms,
        created_by,
    } = message;
    RegistryView {
        server,
        username,
        created_at: ts(created_at_ms),
        created_by,
    }
}

pub fn purged(reply: pb::PurgeReply) -> Result<Purged, Failure> {
    let pb::PurgeReply {
        id,
        app,
        environment,
        purged,
        log_lines_removed,
    } = reply;
    Ok(Purged {
        id: parse(&id, "a deployment id")?,
        app,
        environment,
        purged,
        log_lines_removed,
    })
}

pub fn logged_out(reply: pb::RegistryLogoutReply) -> LoggedOut {
    let pb::RegistryLogoutReply { server, removed } = reply;
    LoggedOut { server, removed }
}
