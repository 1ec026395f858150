//! When the controller renews an agent's certificate. The controller
//! decides, by its own clock: the certificate the agent connected with must
//! be past two thirds of its lifetime, must be one of the agent's two newest
//! serials, the agent's clock must be within [`MAX_CLOCK_SKEW_MS`] of the
//! controller's, and the agent may renew at most [`MAX_RENEWALS_PER_HOUR`]
//! times an hour. A refusal names the reason and when to ask again.

use berth_proto::MAX_CLOCK_SKEW_MS;
use berth_proto::v1::{RenewRequest, RenewResponse};
use berth_shared::id::AgentId;
use berth_shared::pki::{CertInfo, ClientKind};
use berth_shared::record::Timestamp;
use berth_shared::time::{format_duration, now_ms, rfc3339};
use tracing::{info, warn};

use crate::server::Context;
use crate::store::{AgentRecord, Principal, PrincipalKind, Role};

/// Renewals one agent may get within [`HOUR_MS`].
pub const MAX_RENEWALS_PER_HOUR: usize = 4;
const HOUR_MS: i64 = 60 * 60 * 1000;

/// A renewal request as the controller sees it.
#[derive(Clone, Debug)]
pub struct Ask {
    /// Serial of the certificate the agent connected with.
    pub serial: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// The controller's clock.
    pub now_ms: i64,
    /// The agent's clock as it reported it (0: not reported).
    pub agent_now_ms: i64,
}

/// Why a renewal was refused, and when the agent may ask again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub retry_after_secs: u32,
}

fn refuse(reason: String, retry_after_ms: i64) -> Refusal {
    let secs = (retry_after_ms.max(1000) + 999) / 1000;
    Refusal {
        reason,
        retry_after_secs: u32::try_from(secs).unwrap_or(u32::MAX),
    }
}

fn span(ms: i64) -> String {
    format_duration(std::time::Duration::from_millis(ms.unsigned_abs()))
}

/// Whether `record` may renew now, by the rules in the module comment.
pub fn check(record: &AgentRecord, ask: &Ask) -> Result<(), Refusal> {
    let skew = ask.agent_now_ms - ask.now_ms;
    if ask.agent_now_ms != 0 && skew.abs() > MAX_CLOCK_SKEW_MS {
        let side = if skew > 0 { "ahead of" } else { "behind" };
        return Err(refuse(
            format!(
                "certificate renewal refused: the clock of agent `{}` is {} {side} the controller's (at most {} allowed); set the host's time (NTP) and it renews on its own",
                record.name,
                span(skew),
                span(MAX_CLOCK_SKEW_MS)
            ),
            MAX_CLOCK_SKEW_MS,
        ));
    }
    let newest: Vec<&String> = record.serials.iter().rev().take(2).collect();
    if !newest.contains(&&ask.serial) {
        return Err(refuse(
            format!(
                "certificate renewal refused: certificate {} of agent `{}` was already replaced by a newer one; connect with the newest certificate",
                ask.serial, record.name
            ),
            HOUR_MS,
        ));
    }
    let lifetime = ask.not_after_ms - ask.not_before_ms;
    let due_at = ask.not_before_ms + lifetime * 2 / 3;
    if ask.now_ms < due_at {
        return Err(refuse(
            format!(
                "certificate renewal refused: certificate {} is not due until {} (two thirds of its lifetime, by the controller's clock); ask again then",
                ask.serial,
                rfc3339(due_at)
            ),
            due_at - ask.now_ms,
        ));
    }
    let recent = recent_renewals(record, ask.now_ms);
    if recent.len() >= MAX_RENEWALS_PER_HOUR {
        let oldest = recent.iter().map(|at| at.0).min().unwrap_or(ask.now_ms);
        return Err(refuse(
            format!(
                "certificate renewal refused: agent `{}` renewed {} times in the last hour (at most {MAX_RENEWALS_PER_HOUR}); ask again after {}",
                record.name,
                recent.len(),
                rfc3339(oldest + HOUR_MS)
            ),
            oldest + HOUR_MS - ask.now_ms,
        ));
    }
    Ok(())
}

fn recent_renewals(record: &AgentRecord, now_ms: i64) -> Vec<Timestamp> {
    record
        .renewed_at
        .iter()
        .copied()
        .filter(|at| now_ms - at.0 < HOUR_MS)
        .collect()
}

/// Records a renewal that [`check`] allowed: the new serial becomes the
/// newest; a newer serial than the caller's, never used for a connection,
/// is dropped, and only the two newest stay. Returns the serials retired.
pub fn apply(record: &mut AgentRecord, ask: &Ask, serial: &str, not_after_ms: i64) -> Vec<String> {
    let mut retired = Vec::new();
    if record.serials.last() != Some(&ask.serial) {
        retired.extend(record.serials.pop());
    }
    record.serials.push(serial.to_string());
    let excess = record.serials.len().saturating_sub(2);
    retired.extend(record.serials.drain(..excess));
    record.renewed_at = recent_renewals(record, ask.now_ms);
    record.renewed_at.push(Timestamp(ask.now_ms));
    record.cert_not_after = Timestamp(not_after_ms);
    retired
}

/// Answers an agent's `RenewRequest` made on a connection that uses the
/// certificate `current`: a new certificate, or a refusal saying why and
/// when to ask again.
pub async fn renew(
    context: &Context,
    agent_id: AgentId,
    name: &str,
    current: &CertInfo,
    request: RenewRequest,
) -> RenewResponse {
    let ask = Ask {
        serial: current.serial.clone(),
        not_before_ms: current.not_before_ms,
        not_after_ms: current.not_after_ms,
        now_ms: now_ms(),
        agent_now_ms: request.agent_now_ms,
    };
    let refused = |reason: String, retry_after_secs: u32| {
        warn!(%reason, retry_after_secs, "certificate renewal refused");
        RenewResponse {
            cert_pem: String::new(),
            refused: reason,
            retry_after_secs,
        }
    };
    // Checked before signing, so a flood of requests costs no signatures.
    match context.store.get_agent(agent_id) {
        Ok(record) => {
            if let Err(refusal) = check(&record, &ask) {
                return refused(refusal.reason, refusal.retry_after_secs);
            }
        }
        Err(err) => return refused(format!("certificate renewal failed: {err}"), 60),
    }
    let issued = context.authority.issue_client_from_csr(
        &request.csr_pem,
        ClientKind::Agent,
        &agent_id.to_string(),
    );
    let issued = match issued {
        Ok(issued) => issued,
        Err(err) => return refused(format!("certificate renewal refused: {err}"), 60),
    };
    let principal = Principal {
        kind: PrincipalKind::Agent,
        id: agent_id.to_string(),
        name: name.to_string(),
        role: Role::Viewer,
        revoked: false,
    };
    let stored = context
        .store
        .renew_agent(agent_id, &issued.serial, &principal, |record| {
            check(record, &ask)?;
            Ok::<_, Refusal>(apply(record, &ask, &issued.serial, issued.not_after_ms))
        });
    let retired = match stored {
        Ok(Ok(retired)) => retired,
        Ok(Err(refusal)) => return refused(refusal.reason, refusal.retry_after_secs),
        Err(err) => return refused(format!("certificate renewal not stored: {err}"), 60),
    };
    if let Err(err) = context.store.flush().await {
        return refused(format!("certificate renewal not stored: {err}"), 60);
    }
    info!(serial = %issued.serial, retired = retired.len(), "agent certificate renewed");
    RenewResponse {
        cert_pem: issued.cert_pem,
        refused: String::new(),
        retry_after_secs: 0,
    }
}

#[cfg(test)]
#[path = "renew/tests.rs"]
mod tests;
