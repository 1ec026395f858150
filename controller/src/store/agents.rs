//! Enrolled agents, their unique names, and the principals table that maps a
//! certificate serial to who holds it (an agent or a user) and whether it is
//! still allowed in. Roles live here, never in certificates.

use super::kv::Transactional;
use super::kv::TxError;
use berth_shared::id::AgentId;
use berth_shared::labels::Labels;
use berth_shared::record::{Facts, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, Thing, decode, encode};

/// An enrolled agent as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    /// The agent's own labels: given at join (the token's winning over the
    /// agent's `--labels`) and changed by `berth agents label`.
    pub labels: Labels,
    /// Labels derived from the host facts (`os`, `arch`, `hostname`; see
    /// `berth_shared::labels::automatic_labels`), kept apart from the own
    /// labels and stored, so targeting works after a controller restart
    /// before the agent reconnects. Refreshed whenever facts arrive; empty
    /// until the agent's first hello.
    #[serde(default)]
    pub auto_labels: Labels,
    /// `active` or `revoked`.
    pub status: String,
    pub enrolled_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub version: Option<String>,
    pub facts: Option<Facts>,
    pub last_seen_at: Option<Timestamp>,
    /// Since when it is offline, once an `agent.offline` event said so.
    #[serde(default)]
    pub offline_since: Option<Timestamp>,
    /// Serials of the agent's valid certificates (hex), oldest first: at
    /// most two (the one in use and a renewed one), fewer once the renewed
    /// one is used; retired serials lose their principal. Records from
    /// before the limit may hold more until the next renewal or connection.
    pub serials: Vec<String>,
    pub cert_not_after: Timestamp,
    /// When the agent's certificate was renewed within the last hour.
    #[serde(default)]
    pub renewed_at: Vec<Timestamp>,
}

impl AgentRecord {
    pub fn is_revoked(&self) -> bool {
        self.status == "revoked"
    }

    /// The labels every selector matches against (deploy targets,
    /// `--selector`): the automatic labels with the agent's own labels on
    /// top. An own label with an automatic key wins; only labels given at
    /// join can have one (`berth agents label` refuses automatic keys), so
    /// an operator can override what a host reports.
    pub fn effective_labels(&self) -> Labels {
        let mut labels = self.auto_labels.clone();
        labels.extend(self.labels.clone());
        labels
    }

    /// Keeps the facts an agent reported and the automatic labels they give.
    pub fn record_facts(&mut self, facts: Facts) {
        self.auto_labels = berth_shared::labels::automatic_labels(&facts);
        self.facts = Some(facts);
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

impl std::str::FromStr for Role {
    type Err = String;

    /// The inverse of [`Role::as_str`]; the error names the choices.
    fn from_str(text: &str) -> Result<Role, String> {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "role `{}` is not one of viewer, operator, admin",
                    berth_shared::text::clip(text, 40)
                )
            })
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
        self.t()?
            .principals
            .insert(serial.as_bytes(), encode(principal))?;
        Ok(())
    }

    /// The holder of a certificate serial, if berth issued it.
    pub fn principal(&self, serial: &str) -> Result<Option<Principal>, StoreError> {
        self.t()?
            .principals
            .get(serial.as_bytes())?
            .map(|bytes| decode("principals", &bytes))
            .transpose()
    }

    /// One agent by id.
    pub fn get_agent(&self, id: AgentId) -> Result<AgentRecord, StoreError> {
        let bytes = self
            .t()?
            .agents
            .get(id.to_bytes())?
            .ok_or_else(|| StoreError::NotFound(Thing::Agent, format!("agent {id}")))?;
        decode("agents", &bytes)
    }

    /// One active agent by name.
    pub fn agent_by_name(&self, name: &str) -> Result<AgentRecord, StoreError> {
        let bytes = self
            .t()?
            .agent_names
            .get(name.as_bytes())?
            .ok_or_else(|| StoreError::NotFound(Thing::Agent, format!("agent `{name}`")))?;
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
        for value in self.t()?.agents.iter().values() {
            match decode("agents", &value?) {
                Ok(agent) => agents.push(agent),
                Err(err) => tracing::error!(error = %err, "agent record skipped"),
            }
        }
        Ok(agents)
    }

    /// Changes one agent record inside a transaction, so concurrent changes
    /// (a hello's facts, a label change, a revocation) never undo each
    /// other. An error from `change` leaves the record as it was. `change`
    /// may run more than once.
    pub fn update_agent<T>(
        &self,
        id: AgentId,
        change: impl Fn(&mut AgentRecord) -> Result<T, StoreError>,
    ) -> Result<(AgentRecord, T), StoreError> {
        let changed = self.t()?.agents.transaction(|agents| {
            let bytes = agents.get(id.to_bytes())?.ok_or_else(|| {
                TxError::Abort(StoreError::NotFound(Thing::Agent, format!("agent {id}")))
            })?;
            let mut record: AgentRecord = decode("agents", &bytes).map_err(TxError::Abort)?;
            let outcome = change(&mut record).map_err(TxError::Abort)?;
            agents.insert(id.to_bytes(), encode(&record))?;
            Ok((record, outcome))
        })?;
        Ok(changed)
    }

    /// Replaces an agent record.
    pub fn put_agent(&self, record: &AgentRecord) -> Result<(), StoreError> {
        self.t()?
            .agents
            .insert(record.id.to_bytes(), encode(record))?;
        Ok(())
    }

    /// Renews an agent's certificate in one transaction: `change` checks
    /// the stored record (it runs inside the transaction, so two renewals at
    /// once cannot both pass a limit) and returns the serials it retired,
    /// whose principals are removed; `principal` is stored for `serial`.
    pub fn renew_agent<E>(
        &self,
        id: AgentId,
        serial: &str,
        principal: &Principal,
        change: impl Fn(&mut AgentRecord) -> Result<Vec<String>, E>,
    ) -> Result<Result<Vec<String>, E>, StoreError> {
        let t = self.t()?;
        let outcome = (&t.agents, &t.principals).transaction(|(agents, principals)| {
            let bytes = agents.get(id.to_bytes())?.ok_or_else(|| {
                TxError::Abort(StoreError::NotFound(Thing::Agent, format!("agent {id}")))
            })?;
            let mut record: AgentRecord = decode("agents", &bytes).map_err(TxError::Abort)?;
            if record.is_revoked() {
                return Err(TxError::Abort(StoreError::Refused(format!(
                    "agent `{}` is revoked",
                    record.name
                ))));
            }
            let retired = match change(&mut record) {
                Ok(retired) => retired,
                Err(refusal) => return Ok(Err(refusal)),
            };
            for old in &retired {
                principals.remove(old.as_bytes())?;
            }
            agents.insert(id.to_bytes(), encode(&record))?;
            principals.insert(serial.as_bytes(), encode(principal))?;
            Ok(Ok(retired))
        })?;
        Ok(outcome)
    }

    /// Retires every serial of an agent older than `serial` once a
    /// connection uses `serial` and it is the newest, so a renewed agent
    /// holds one valid certificate again. Returns the serials retired.
    pub fn retire_older_serials(
        &self,
        id: AgentId,
        serial: &str,
    ) -> Result<Vec<String>, StoreError> {
        let t = self.t()?;
        let retired = (&t.agents, &t.principals).transaction(|(agents, principals)| {
            let Some(bytes) = agents.get(id.to_bytes())? else {
                return Ok(Vec::new());
            };
            let mut record: AgentRecord = decode("agents", &bytes).map_err(TxError::Abort)?;
            if record.serials.len() < 2 || record.serials.last().map(String::as_str) != Some(serial)
            {
                return Ok(Vec::new());
            }
            let retired: Vec<String> = record.serials.drain(..record.serials.len() - 1).collect();
            for old in &retired {
                principals.remove(old.as_bytes())?;
            }
            agents.insert(id.to_bytes(), encode(&record))?;
            Ok(retired)
        })?;
        Ok(retired)
    }

    /// Revokes an agent: marks it and every certificate it holds revoked,
    /// and frees its name for a new enrollment.
    pub fn revoke_agent(&self, name: &str) -> Result<AgentRecord, StoreError> {
        let id = self.agent_by_name(name)?.id;
        let t = self.t()?;
        let revoked = (&t.agents, &t.agent_names, &t.principals).transaction(
            |(agents, names, principals)| {
                // Read inside the transaction, so a serial added by a renewal at
                // the same moment is revoked too.
                let bytes = agents.get(id.to_bytes())?.ok_or_else(|| {
                    TxError::Abort(StoreError::NotFound(
                        Thing::Agent,
                        format!("agent `{name}`"),
                    ))
                })?;
                let mut record: AgentRecord = decode("agents", &bytes).map_err(TxError::Abort)?;
                record.status = "revoked".into();
                record.revoked_at = Some(Timestamp::now());
                for serial in &record.serials {
                    if let Some(bytes) = principals.get(serial.as_bytes())? {
                        let mut principal: Principal =
                            decode("principals", &bytes).map_err(TxError::Abort)?;
                        principal.revoked = true;
                        principals.insert(serial.as_bytes(), encode(&principal))?;
                    }
                }
                agents.insert(record.id.to_bytes(), encode(&record))?;
                names.remove(record.name.as_bytes())?;
                Ok(record)
            },
        )?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shared::labels::{format_labels, parse_labels};

    fn agent(own: &str, facts: Option<Facts>) -> AgentRecord {
        let mut record = AgentRecord {
            id: AgentId::new(),
            name: "web-1".into(),
            labels: parse_labels(own).expect("valid labels"),
            auto_labels: Labels::new(),
            status: "active".into(),
            enrolled_at: Timestamp(0),
            revoked_at: None,
            version: None,
            facts: None,
            last_seen_at: None,
            offline_since: None,
            serials: Vec::new(),
            cert_not_after: Timestamp(0),
            renewed_at: Vec::new(),
        };
        if let Some(facts) = facts {
            record.record_facts(facts);
        }
        record
    }

    fn facts(hostname: &str, os_family: &str, arch: &str) -> Facts {
        Facts {
            hostname: hostname.into(),
            os_family: os_family.into(),
            arch: arch.into(),
            ..Facts::default()
        }
    }

    fn check(record: &AgentRecord, expected: &str) {
        assert_eq!(format_labels(&record.effective_labels()), expected);
    }

    #[test]
    fn effective_labels_are_own_labels_over_automatic_ones() {
        check(&agent("role=web", None), "role=web");
        check(
            &agent("role=web", Some(facts("Web-1", "linux", "x86_64"))),
            "arch=x86_64,hostname=web-1,os=linux,role=web",
        );
        // An own label given at join with an automatic key wins.
        check(
            &agent(
                "hostname=edge",
                Some(facts("ip-10-0-0-1", "linux", "x86_64")),
            ),
            "arch=x86_64,hostname=edge,os=linux",
        );
        check(&agent("", Some(facts("", "", ""))), "");
    }

    #[test]
    fn new_facts_replace_the_automatic_labels() {
        let mut record = agent("role=web", Some(facts("old", "linux", "x86_64")));
        record.record_facts(facts("new", "linux", "aarch64"));
        assert_eq!(
            format_labels(&record.auto_labels),
            "arch=aarch64,hostname=new,os=linux"
        );
        assert_eq!(format_labels(&record.labels), "role=web");
    }

    #[test]
    fn records_without_automatic_labels_still_decode() {
        let mut json = serde_json::to_value(agent("role=web", None)).expect("encode");
        json.as_object_mut()
            .expect("an object")
            .remove("auto_labels");
        let record: AgentRecord = serde_json::from_value(json).expect("decode");
        assert!(record.auto_labels.is_empty());
    }
}
