//! The audit log: who did what, when, with what result. Keyed by ULID so it
//! reads in time order.

pub use berth_shared::record::AuditEntry;
use berth_shared::record::Timestamp;
use ulid::Ulid;

use super::{Store, StoreError, decode, encode};

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
