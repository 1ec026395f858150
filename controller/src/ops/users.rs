//! People and their credentials: `berth users add|ls|set-role|disable|
//! enable|rm|set-password|credential` (admin only, audited; a user may set
//! their own password). Roles are read on every call, so a change applies
//! to the next one.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use berth_shared::labels::check_label_part;
use berth_shared::pki::ClientKind;
use berth_shared::record::{Timestamp, UserView};
use tracing::info;

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::{Principal, PrincipalKind, Role, UserRecord};

/// Shortest web password accepted.
const MIN_PASSWORD_CHARS: usize = 12;
/// Longest web password accepted (argon2 hashes any length; this bounds
/// the work one request can ask for).
const MAX_PASSWORD_BYTES: usize = 1024;

/// `berth users add`.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub email: Option<String>,
}

/// A certificate issued for a user: the CLI that asked made the key and
/// keeps it (the key never reaches the controller).
#[derive(Clone, Debug)]
pub struct UserCredential {
    pub user: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

pub fn view(user: &UserRecord, api_tokens: usize) -> UserView {
    UserView {
        name: user.name.clone(),
        email: user.email.clone(),
        role: user.role.as_str().into(),
        disabled: user.disabled,
        created_at: user.created_at,
        created_by: user.created_by.clone(),
        password_set: user.password_hash.is_some(),
        api_tokens,
    }
}

fn view_of(context: &Context, user: &UserRecord) -> Result<UserView> {
    let tokens = context
        .store
        .list_api_tokens()?
        .iter()
        .filter(|token| token.user == user.name && !token.revoked)
        .count();
    Ok(view(user, tokens))
}

fn check_name(name: &str) -> Result<()> {
    check_label_part(name, false).map_err(|err| Error::invalid(format!("user name {err}")))?;
    if name == "me" || name == "controller" {
        return Err(Error::invalid(format!(
            "user name `{name}` is reserved (`me` means the caller in filters); choose another"
        )));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<()> {
    let shaped = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if shaped {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "e-mail `{}` is not an address like ana@example.com",
            berth_shared::text::clip(email, 80)
        )))
    }
}

async fn audit(context: &Context, caller: &Caller, action: &str, target: &str) -> Result<()> {
    context.store.audit(&caller.who(), action, target, "ok")?;
    context.store.flush().await?;
    Ok(())
}

/// Adds a user with a role; it has no credential until one is issued.
pub async fn add(context: &Context, caller: &Caller, request: NewUser) -> Result<UserView> {
    caller.require(Role::Admin)?;
    check_name(&request.name)?;
    if let Some(email) = &request.email {
        check_email(email)?;
    }
    let user = UserRecord {
        name: request.name.clone(),
        email: request.email,
        role: request.role,
        disabled: false,
        created_at: Timestamp::now(),
        created_by: caller.who(),
        password_hash: None,
        password_set_at: None,
    };
    context.store.add_user(&user).map_err(|err| match err {
        crate::store::StoreError::Conflict(message) => Error::new(Code::UserExists, message),
        other => other.into(),
    })?;
    let target = format!("{} {}", user.name, user.role.as_str());
    audit(context, caller, "user.add", &target).await?;
    info!(user = %user.name, role = user.role.as_str(), "user added");
    view_of(context, &user)
}

/// Every user.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<UserView>> {
    caller.require(Role::Admin)?;
    let tokens = context.store.list_api_tokens()?;
    Ok(context
        .store
        .list_users()?
        .iter()
        .map(|user| {
            let held = tokens
                .iter()
                .filter(|token| token.user == user.name && !token.revoked)
                .count();
            view(user, held)
        })
        .collect())
}

/// Refuses a change to `name` that would leave no enabled admin: one that
/// demotes, disables or removes the last enabled admin.
fn keep_an_admin(context: &Context, name: &str) -> Result<()> {
    let users = context.store.list_users()?;
    let enabled_admin = |user: &&UserRecord| user.role == Role::Admin && !user.disabled;
    let is_admin = users
        .iter()
        .filter(enabled_admin)
        .any(|user| user.name == name);
    let others = users
        .iter()
        .filter(enabled_admin)
        .filter(|user| user.name != name)
        .count();
    if is_admin && others == 0 {
        return Err(Error::new(
            Code::UserLastAdmin,
            format!("`{name}` is the last enabled admin; make another user admin first"),
        ));
    }
    Ok(())
}

fn existing(context: &Context, name: &str) -> Result<UserRecord> {
    context.store.get_user(name)?.ok_or_else(|| {
        Error::new(
            Code::UserNotFound,
            format!("user `{name}` does not exist; `berth users ls` lists them"),
        )
    })
}

/// Gives a user another role, from the next call on.
pub async fn set_role(
    context: &Context,
    caller: &Caller,
    name: &str,
    role: Role,
) -> Result<UserView> {
    caller.require(Role::Admin)?;
    existing(context, name)?;
    if role != Role::Admin {
        keep_an_admin(context, name)?;
    }
    let user = context.store.update_user(name, |user| user.role = role)?;
    audit(
        context,
        caller,
        "user.set-role",
        &format!("{name} {}", role.as_str()),
    )
    .await?;
    view_of(context, &user)
}

/// Disables (or enables again) a user: every credential it holds stops
/// (or starts) working on the next call.
pub async fn set_disabled(
    context: &Context,
    caller: &Caller,
    name: &str,
    disabled: bool,
) -> Result<UserView> {
    caller.require(Role::Admin)?;
    existing(context, name)?;
    if disabled {
        keep_an_admin(context, name)?;
    }
    let user = context
        .store
        .update_user(name, |user| user.disabled = disabled)?;
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    audit(context, caller, action, name).await?;
    view_of(context, &user)
}

/// Removes a user, its API tokens and its app ratings (a later user of
/// the same name starts with none); its certificates stop working.
pub async fn remove(context: &Context, caller: &Caller, name: &str) -> Result<UserView> {
    caller.require(Role::Admin)?;
    existing(context, name)?;
    keep_an_admin(context, name)?;
    let user = context.store.remove_user(name)?;
    audit(context, caller, "user.rm", name).await?;
    Ok(view(&user, 0))
}

/// Sets a user's web password (an admin for anyone, a user for itself).
pub async fn set_password(
    context: &Context,
    caller: &Caller,
    name: &str,
    password: &str,
) -> Result<UserView> {
    if caller.principal.name != name || caller.via_token.is_some() {
        caller.require(Role::Admin)?;
    }
    existing(context, name)?;
    check_password(password)?;
    let hash = hash_off_thread(password).await?;
    let now = Timestamp::now();
    let user = context.store.update_user(name, |user| {
        user.password_hash = Some(hash.clone());
        user.password_set_at = Some(now);
    })?;
    // A new password signs the user out of every browser.
    context.store.remove_sessions_of(name)?;
    audit(context, caller, "user.set-password", name).await?;
    view_of(context, &user)
}

/// Refuses a web password that is too short or too long.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)"
        )));
    }
    Ok(())
}

/// [`hash_password`] off the async threads (argon2 takes tens of ms).
pub async fn hash_off_thread(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| Error::new(Code::Internal, "hashing the password failed"))?
}

/// An argon2id hash (PHC string) of a password, with a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::new(Code::Internal, format!("hash the password: {err}")))
}

/// Whether `password` is the one `hash` was made from.
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Issues a CLI certificate for a user from a CSR its admin's CLI made.
pub async fn credential(
    context: &Context,
    caller: &Caller,
    name: &str,
    csr_pem: &str,
) -> Result<UserCredential> {
    caller.require(Role::Admin)?;
    let user = existing(context, name)?;
    let issued = context
        .authority
        .issue_client_from_csr(csr_pem, ClientKind::User, name)
        .map_err(|err| match err {
            berth_shared::pki::PkiError::BadCsr(reason) => Error::invalid(format!(
                "the certificate signing request is invalid: {reason}"
            )),
            other => Error::new(Code::Internal, other.to_string()),
        })?;
    let principal = Principal {
        kind: PrincipalKind::User,
        id: user.name.clone(),
        name: user.name.clone(),
        role: user.role,
        revoked: false,
    };
    context.store.put_principal(&issued.serial, &principal)?;
    audit(
        context,
        caller,
        "user.credential",
        &format!("{name} serial {}", issued.serial),
    )
    .await?;
    Ok(UserCredential {
        user: user.name,
        cert_pem: issued.cert_pem,
        ca_pem: context.ca_pem.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches(&hash, "correct horse battery"));
        assert!(!password_matches(&hash, "correct horse battery!"));
        assert!(!password_matches("not a hash", "x"));
        let again = hash_password("correct horse battery").expect("hash");
        assert_ne!(hash, again, "a fresh salt each time");
    }

    #[test]
    fn e_mail_addresses_are_checked() {
        assert!(check_email("ana@example.com").is_ok());
        for bad in [
            "ana",
            "@example.com",
            "ana@localhost",
            "a na@example.com",
            "ana@ex\nample.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}
