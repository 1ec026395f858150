//! Join tokens. Only a SHA-256 of each secret is stored; a join consumes a
//! use and creates the agent, its unique name and its principal in one
//! transaction, so two racing joins with a one-use token give one agent.

use super::kv::Transactional;
use super::kv::TxError;
use berth_shared::labels::Labels;
use berth_shared::record::{Timestamp, TokenView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::agents::{AgentRecord, Principal};
use super::{Store, StoreError, decode, encode};

/// A join token as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub secret_sha256: String,
    pub labels: Labels,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub uses_allowed: u32,
    pub uses: u32,
    pub revoked: bool,
    pub created_by: String,
    pub joined: Vec<String>,
}

/// Whether a token can still be used, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    Valid,
    Expired,
    UsedUp,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Valid => "valid",
            TokenState::Expired => "expired",
            TokenState::UsedUp => "used_up",
            TokenState::Revoked => "revoked",
        }
    }
}

/// Hex SHA-256 of a token secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl TokenRecord {
    pub fn state(&self, now: Timestamp) -> TokenState {
        if self.revoked {
            TokenState::Revoked
        } else if self.uses >= self.uses_allowed {
            TokenState::UsedUp
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Valid
        }
    }

    pub fn view(&self, now: Timestamp) -> TokenView {
        TokenView {
            id: self.id.clone(),
            labels: self.labels.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            uses_allowed: self.uses_allowed,
            uses: self.uses,
            revoked: self.revoked,
            created_by: self.created_by.clone(),
            state: self.state(now).as_str().to_string(),
        }
    }

    /// Checks a presented secret and the token's state, naming the problem.
    pub fn check(&self, secret: &str, now: Timestamp) -> Result<(), StoreError> {
        if hash_secret(secret) != self.secret_sha256 {
            return Err(StoreError::Refused("the join token is not known to this controller; create one with `berth token create`".into()));
        }
        let problem = match self.state(now) {
            TokenState::Valid => return Ok(()),
            TokenState::Expired => {
                format!("the join token {} expired at {}", self.id, self.expires_at)
            }
            TokenState::UsedUp => format!(
                "the join token {} has been used up ({} of {} uses)",
                self.id, self.uses, self.uses_allowed
            ),
            TokenState::Revoked => format!("the join token {} was revoked", self.id),
        };
        Err(StoreError::Refused(format!(
            "{problem}; create a new one with `berth token create`"
        )))
    }
}

impl Store {
    pub fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.t()?
            .tokens
            .insert(token.id.as_bytes(), encode(token))?;
        Ok(())
    }

    pub fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.t()?
            .tokens
            .get(id.as_bytes())?
            .map(|bytes| decode("tokens", &bytes))
            .transpose()
    }

    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.t()?
            .tokens
            .iter()
            .values()
            .map(|value| decode("tokens", &value?))
            .collect()
    }

    /// Consumes one use of the token and stores the new agent with its
    /// name and principal, all or nothing.
    pub fn join_agent(
        &self,
        token_id: &str,
        secret: &str,
        agent: &AgentRecord,
        principal: &Principal,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let t = self.t()?;
        (&t.tokens, &t.agents, &t.agent_names, &t.principals).transaction(
            |(tokens, agents, names, principals)| {
                let abort = TxError::Abort;
                let unknown = || abort(StoreError::Refused("the join token is not known to this controller; create one with `berth token create`".into()));
                let bytes = tokens.get(token_id.as_bytes())?.ok_or_else(unknown)?;
                let mut token: TokenRecord = decode("tokens", &bytes).map_err(abort)?;
                token.check(secret, now).map_err(abort)?;
                if names.get(agent.name.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict(format!(
                        "an agent named `{}` is already enrolled; join with another --name, or revoke the old one with `berth agents revoke {}`",
                        agent.name, agent.name
                    ))));
                }
                token.uses += 1;
                token.joined.push(agent.name.clone());
                tokens.insert(token_id.as_bytes(), encode(&token))?;
                names.insert(agent.name.as_bytes(), &agent.id.to_bytes())?;
                agents.insert(agent.id.to_bytes(), encode(agent))?;
                for serial in &agent.serials {
                    principals.insert(serial.as_bytes(), encode(principal))?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(uses: u32, uses_allowed: u32, revoked: bool) -> TokenRecord {
        TokenRecord {
            id: "abc".into(),
            secret_sha256: hash_secret("s3cret"),
            labels: Labels::new(),
            created_at: Timestamp(0),
            expires_at: Timestamp(1_000),
            uses_allowed,
            uses,
            revoked,
            created_by: "admin".into(),
            joined: Vec::new(),
        }
    }

    fn refusal(token: &TokenRecord, secret: &str, now: i64) -> String {
        match token.check(secret, Timestamp(now)) {
            Err(StoreError::Refused(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn says_why_a_token_is_refused() {
        assert!(token(0, 1, false).check("s3cret", Timestamp(999)).is_ok());
        assert!(refusal(&token(0, 1, false), "s3cret", 1_000).contains("expired"));
        assert!(refusal(&token(1, 1, false), "s3cret", 10).contains("used up"));
        assert!(refusal(&token(0, 1, true), "s3cret", 10).contains("revoked"));
        // A wrong secret learns nothing about the token's state.
        let wrong = refusal(&token(1, 1, true), "guess", 5_000);
        assert!(
            wrong.contains("not known") && !wrong.contains("revoked") && !wrong.contains("expired")
        );
    }
}
