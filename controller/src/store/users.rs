//! People: a user record per name (role, e-mail, disabled, the argon2id
//! hash of a web password), and the API tokens each user holds (only a
//! SHA-256 of each secret is kept, with a prefix to recognise it).
//!
//! A user's role lives here and is read on every call, so a role change or
//! a disabled user applies to the next call whatever credential it uses
//! (a CLI bundle, an API token or, next, a web session).

use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};

use super::agents::{Principal, PrincipalKind, Role};
use super::{Store, StoreError, Thing, decode, encode};

/// A person who may use berth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: Timestamp,
    pub created_by: String,
    /// The argon2id hash (PHC string) of the web password, if one is set.
    /// Never leaves the controller.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub password_set_at: Option<Timestamp>,
}

/// An API token as stored: `bta_<id>_<secret>` is shown once; only the
/// SHA-256 of the secret is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: String,
    /// The user the token acts for.
    pub user: String,
    /// What the user calls it (`ci`).
    pub name: String,
    pub secret_sha256: String,
    /// The token never acts above this role, whatever the user's.
    #[serde(default)]
    pub role_cap: Option<Role>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
    #[serde(default)]
    pub revoked: bool,
}

impl Store {
    /// A user by name.
    pub fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.t()?
            .users
            .get(name.as_bytes())?
            .map(|bytes| decode("users", &bytes))
            .transpose()
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.t()?
            .users
            .iter()
            .values()
            .map(|bytes| decode("users", &bytes?))
            .collect()
    }

    /// Adds a user; refused when the name is taken.
    pub fn add_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let added = self.t()?.users.compare_and_swap(
            user.name.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(user)),
        )?;
        added.map_err(|_| {
            StoreError::Conflict(format!(
                "user `{}` exists already; `berth users ls` lists them",
                user.name
            ))
        })
    }

    /// Changes a user in place, atomically.
    pub fn update_user(
        &self,
        name: &str,
        change: impl Fn(&mut UserRecord),
    ) -> Result<UserRecord, StoreError> {
        let tree = &self.t()?.users;
        let updated = tree.update_and_fetch(name.as_bytes(), |old| {
            let old = old?;
            // A record that does not decode is left as it is; the read
            // below reports it as corrupt.
            let Ok(mut user) = decode::<UserRecord>("users", old) else {
                return Some(old.to_vec());
            };
            change(&mut user);
            Some(encode(&user))
        })?;
        let bytes = updated.ok_or_else(|| not_found(name))?;
        decode("users", &bytes)
    }

    /// Removes a user, its API tokens, sessions, setup links and app
    /// ratings; its certificates stop working because no user of that name
    /// exists any more.
    pub fn remove_user(&self, name: &str) -> Result<UserRecord, StoreError> {
        let trees = self.t()?;
        let bytes = trees
            .users
            .remove(name.as_bytes())?
            .ok_or_else(|| not_found(name))?;
        for token in self.list_api_tokens()? {
            if token.user == name {
                trees.api_tokens.remove(token.id.as_bytes())?;
            }
        }
        self.remove_sessions_of(name)?;
        self.remove_ratings_of(name)?;
        for link in self.list_setup_links()? {
            if link.user == name {
                trees.setup_links.remove(link.id.as_bytes())?;
            }
        }
        decode("users", &bytes)
    }

    /// Gives every user principal that predates user records (the `admin`
    /// of an installation made before them) its record, with the role its
    /// principal had. Run at start; changes nothing the second time.
    pub fn adopt_user_principals(&self) -> Result<usize, StoreError> {
        let trees = self.t()?;
        let mut adopted = 0;
        for entry in trees.principals.iter() {
            let (_, bytes) = entry?;
            let principal: Principal = decode("principals", &bytes)?;
            if principal.kind != PrincipalKind::User || self.get_user(&principal.name)?.is_some() {
                continue;
            }
            let user = UserRecord {
                name: principal.name.clone(),
                email: None,
                role: principal.role,
                disabled: principal.revoked,
                created_at: Timestamp::now(),
                created_by: "controller".into(),
                password_hash: None,
                password_set_at: None,
            };
            if self.add_user(&user).is_ok() {
                adopted += 1;
            }
        }
        Ok(adopted)
    }

    /// An API token by id.
    pub fn get_api_token(&self, id: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.t()?
            .api_tokens
            .get(id.as_bytes())?
            .map(|bytes| decode("api_tokens", &bytes))
            .transpose()
    }

    pub fn put_api_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
        self.t()?
            .api_tokens
            .insert(token.id.as_bytes(), encode(token))?;
        Ok(())
    }

    /// Every API token, oldest id first.
    pub fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.t()?
            .api_tokens
            .iter()
            .values()
            .map(|bytes| decode("api_tokens", &bytes?))
            .collect()
    }
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound(Thing::User, format!("user `{name}`"))
}
