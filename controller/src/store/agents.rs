//! Enrolled agents, their unique names, and the principals table that maps a
//! certificate serial to who holds it (an agent or a user) and whether it is
//! still allowed in. Roles live here, never in certificates.

use berth_shared::id::AgentId;
use berth_shared::labels::Labels;
use berth_shared::record::{Facts, Timestamp};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{Store, StoreError, decode, encode};

/// An enrolled agent as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    pub labels: Labels,
    /// `active` or `revoked`.
    pub status: String,
    pub enrolled_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub version: Option<String>,
    pub facts: Option<Facts>,
    pub last_seen_at: Option<Timestamp>,
    /// Serials of every certificate issued to this agent (hex).
    pub serials: Vec<String>,
    pub cert_not_after: Timestamp,
}

impl AgentRecord {
    pub fn is_revoked(&self) -> bool {
        self.status == "revoked"
    }
}

/// What a certificate holder may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Whether a principal is an agent or a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Agent,
    User,
}

/// The holder of one certificate serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Agent id or user name.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub revoked: bool,
}

impl Store {
    /// Records the holder of a certificate serial.
    pub fn put_principal(&self, serial: &str, principal: &Principal) -> Result<(), StoreError> {
        self.principals
            .insert(serial.as_bytes(), encode(principal))?;
        Ok(())
    }

    /// The holder of a certificate serial, if berth issued it.
    pub fn principal(&self, serial: &str) -> Result<Option<Principal>, StoreError> {
        self.principals
            .get(serial.as_bytes())?
            .map(|bytes| decode("principals", &bytes))
            .transpose()
    }

    /// One agent by id.
    pub fn get_agent(&self, id: AgentId) -> Result<AgentRecord, StoreError> {
        let bytes = self
            .agents
            .get(id.to_bytes())?
            .ok_or_else(|| StoreError::NotFound(format!("agent {id}")))?;
        decode("agents", &bytes)
    }

    /// One active agent by name.
    pub fn agent_by_name(&self, name: &str) -> Result<AgentRecord, StoreError> {
        let bytes = self
            .agent_names
            .get(name.as_bytes())?
            .ok_or_else(|| StoreError::NotFound(format!("agent `{name}`")))?;
        let id = <[u8; 16]>::try_from(bytes.as_ref())
            .map(AgentId::from_bytes)
            .map_err(|_| StoreError::Corrupt {
                tree: "agent_names",
                reason: "bad id".into(),
            })?;
        self.get_agent(id)
    }

    /// Every agent ever enrolled, oldest first. A record that fails its
    /// checksum is reported in the log and left out, so one damaged record
    /// cannot hide the whole fleet.
    pub fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let mut agents = Vec::new();
        for value in self.agents.iter().values() {
            match decode("agents", &value?) {
                Ok(agent) => agents.push(agent),
                Err(err) => tracing::error!(error = %err, "agent record skipped"),
            }
        }
        Ok(agents)
    }

    /// Replaces an agent record.
    pub fn put_agent(&self, record: &AgentRecord) -> Result<(), StoreError> {
        self.agents.insert(record.id.to_bytes(), encode(record))?;
        Ok(())
    }

    /// Adds a renewed certificate's serial to an agent.
    pub fn add_agent_serial(
        &self,
        id: AgentId,
        serial: &str,
        not_after_ms: i64,
        principal: &Principal,
    ) -> Result<(), StoreError> {
        (&self.agents, &self.principals).transaction(|(agents, principals)| {
            let bytes = agents.get(id.to_bytes())?.ok_or_else(|| {
                ConflictableTransactionError::Abort(StoreError::NotFound(format!("agent {id}")))
            })?;
            let mut record: AgentRecord =
                decode("agents", &bytes).map_err(ConflictableTransactionError::Abort)?;
            if record.is_revoked() {
                return Err(ConflictableTransactionError::Abort(StoreError::Refused(
                    format!("agent `{}` is revoked", record.name),
                )));
            }
            record.serials.push(serial.to_string());
            record.cert_not_after = Timestamp(not_after_ms);
            agents.insert(&id.to_bytes(), encode(&record))?;
            principals.insert(serial.as_bytes(), encode(principal))?;
            Ok(())
        })?;
        Ok(())
    }

    /// Revokes an agent: marks it and every certificate it holds revoked,
    /// and frees its name for a new enrollment.
    pub fn revoke_agent(&self, name: &str) -> Result<AgentRecord, StoreError> {
        let id = self.agent_by_name(name)?.id;
        let revoked = (&self.agents, &self.agent_names, &self.principals).transaction(
            |(agents, names, principals)| {
                // Read inside the transaction, so a serial added by a renewal at
                // the same moment is revoked too.
                let bytes = agents.get(id.to_bytes())?.ok_or_else(|| {
                    ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                        "agent `{name}`"
                    )))
                })?;
                let mut record: AgentRecord =
                    decode("agents", &bytes).map_err(ConflictableTransactionError::Abort)?;
                record.status = "revoked".into();
                record.revoked_at = Some(Timestamp::now());
                for serial in &record.serials {
                    if let Some(bytes) = principals.get(serial.as_bytes())? {
                        let mut principal: Principal = decode("principals", &bytes)
                            .map_err(ConflictableTransactionError::Abort)?;
                        principal.revoked = true;
                        principals.insert(serial.as_bytes(), encode(&principal))?;
                    }
                }
                agents.insert(&record.id.to_bytes(), encode(&record))?;
                names.remove(record.name.as_bytes())?;
                Ok(record)
            },
        )?;
        Ok(revoked)
    }
}
