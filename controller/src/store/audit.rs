//! The audit log: who did what, when, with what result. Keyed by ULID so it
//! reads in time order.

use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::{Store, StoreError, decode, encode};

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub who: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

impl Store {
    /// Records an action (made durable by the caller's next flush).
    pub fn audit(
        &self,
        who: &str,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let entry = AuditEntry {
            at: Timestamp::now(),
            who: who.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
        };
        self.t()?
            .audit
            .insert(Ulid::new().to_bytes(), encode(&entry))?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.t()?
            .audit
            .iter()
            .values()
            .rev()
            .take(limit)
            .map(|value| decode("audit", &value?))
            .collect()
    }
}
