//! Web sessions and one-time setup links. Both are bearer secrets shown to
//! one browser once (a cookie, a link): the store keeps only the SHA-256 of
//! each secret, so a copy of the store lets no one sign in.
//!
//! Sessions are kept on disk, so a controller restart signs no one out;
//! expired ones are pruned when someone signs in.

use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};

/// A signed-in browser: `bts_<id>_<secret>` is its cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub user: String,
    pub secret_sha256: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Where the sign-in came from (an IP address), for the audit.
    #[serde(default)]
    pub address: String,
}

/// A one-time link that lets a user set their web password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupLinkRecord {
    pub id: String,
    pub user: String,
    pub secret_sha256: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Store {
    pub fn get_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.t()?
            .sessions
            .get(id.as_bytes())?
            .map(|bytes| decode("sessions", &bytes))
            .transpose()
    }

    pub fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.t()?
            .sessions
            .insert(session.id.as_bytes(), encode(session))?;
        Ok(())
    }

    /// Ends one session; `false` when there was none.
    pub fn remove_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.t()?.sessions.remove(id.as_bytes())?.is_some())
    }

    /// Every session, oldest id first.
    pub fn list_sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        self.t()?
            .sessions
            .iter()
            .values()
            .map(|bytes| decode("sessions", &bytes?))
            .collect()
    }

    /// Ends every session of `user`; returns how many there were.
    pub fn remove_sessions_of(&self, user: &str) -> Result<usize, StoreError> {
        let tree = &self.t()?.sessions;
        let mut removed = 0;
        for session in self.list_sessions()? {
            if session.user == user {
                tree.remove(session.id.as_bytes())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Forgets sessions that expired before `now`; returns those left.
    pub fn prune_sessions(&self, now: Timestamp) -> Result<Vec<SessionRecord>, StoreError> {
        let tree = &self.t()?.sessions;
        let mut live = Vec::new();
        for session in self.list_sessions()? {
            if session.expires_at <= now {
                tree.remove(session.id.as_bytes())?;
            } else {
                live.push(session);
            }
        }
        Ok(live)
    }

    pub fn put_setup_link(&self, link: &SetupLinkRecord) -> Result<(), StoreError> {
        let trees = self.t()?;
        // One open link per user: a new one replaces the last.
        for old in self.list_setup_links()? {
            if old.user == link.user || old.expires_at <= link.created_at {
                trees.setup_links.remove(old.id.as_bytes())?;
            }
        }
        trees.setup_links.insert(link.id.as_bytes(), encode(link))?;
        Ok(())
    }

    pub fn get_setup_link(&self, id: &str) -> Result<Option<SetupLinkRecord>, StoreError> {
        self.t()?
            .setup_links
            .get(id.as_bytes())?
            .map(|bytes| decode("setup_links", &bytes))
            .transpose()
    }

    /// Removes a link and returns it, atomically: of two uses at once,
    /// exactly one gets it.
    pub fn take_setup_link(&self, id: &str) -> Result<Option<SetupLinkRecord>, StoreError> {
        self.t()?
            .setup_links
            .remove(id.as_bytes())?
            .map(|bytes| decode("setup_links", &bytes))
            .transpose()
    }

    pub fn list_setup_links(&self) -> Result<Vec<SetupLinkRecord>, StoreError> {
        self.t()?
            .setup_links
            .iter()
            .values()
            .map(|bytes| decode("setup_links", &bytes?))
            .collect()
    }
}
