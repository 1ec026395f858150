//! Join tokens: `berth token create|ls|revoke` (admin only). The secret
//! is shown once; only its hash is kept.

use std::time::Duration;

use base64::Engine;
use berth_shared::credentials::JoinToken;
use berth_shared::labels::{Labels, check_label_part};
use berth_shared::pki::{first_cert_der, spki_pin};
use berth_shared::record::{Timestamp, TokenView};
use rand::Rng;

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::tokens_hash as hash_secret;
use crate::store::{Role, StoreError, Thing, TokenRecord};

/// A request for a join token; zeros take the defaults (1 h, one use).
#[derive(Clone, Debug, Default)]
pub struct NewToken {
    /// Labels every agent that joins with it gets.
    pub labels: Vec<(String, String)>,
    pub ttl: Duration,
    pub uses: u32,
}

/// A token just made: the only time its secret is shown.
#[derive(Clone, Debug)]
pub struct CreatedToken {
    /// The encoded token to give `berth-agent join`.
    pub token: String,
    pub id: String,
    pub expires_at: Timestamp,
}

/// Default lifetime of a join token.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime a join token may have.
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

fn random_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub async fn create(context: &Context, caller: &Caller, request: NewToken) -> Result<CreatedToken> {
    caller.require(Role::Admin)?;
    let ttl = if request.ttl.is_zero() {
        DEFAULT_TTL
    } else {
        request.ttl
    };
    if ttl > MAX_TTL {
        return Err(Error::invalid("a join token lives at most 30 days (720h)"));
    }
    let uses = if request.uses == 0 { 1 } else { request.uses };
    if uses > 10_000 {
        return Err(Error::invalid("a join token allows at most 10000 uses"));
    }
    let mut labels = Labels::new();
    for (key, value) in request.labels {
        check_label_part(&key, true).map_err(|err| Error::invalid(format!("label key {err}")))?;
        check_label_part(&value, false)
            .map_err(|err| Error::invalid(format!("label value {err}")))?;
        labels.insert(key, value);
    }
    let ca = first_cert_der(&context.ca_pem)
        .map_err(|err| Error::new(Code::Internal, err.to_string()))?;
    let pin = spki_pin(&ca).map_err(|err| Error::new(Code::Internal, err.to_string()))?;
    let token = JoinToken {
        id: random_id(),
        secret: random_secret(),
        ca_pin: pin,
        controllers: Vec::new(),
    };
    let now = Timestamp::now();
    let record = TokenRecord {
        id: token.id.clone(),
        secret_sha256: hash_secret(&token.secret),
        labels,
        created_at: now,
        expires_at: Timestamp(now.0 + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        uses_allowed: uses,
        uses: 0,
        revoked: false,
        created_by: caller.who(),
        joined: Vec::new(),
    };
    context.store.put_token(&record)?;
    context
        .store
        .audit(&caller.who(), "token.create", &record.id, "ok")?;
    context.store.flush().await?;
    Ok(CreatedToken {
        token: token.encode(),
        id: record.id,
        expires_at: record.expires_at,
    })
}

/// Every join token, without secrets.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<TokenView>> {
    caller.require(Role::Admin)?;
    let now = Timestamp::now();
    Ok(context
        .store
        .list_tokens()?
        .iter()
        .map(|token| token.view(now))
        .collect())
}

/// Revokes a join token: no agent joins with it any more.
pub async fn revoke(context: &Context, caller: &Caller, id: &str) -> Result<TokenView> {
    caller.require(Role::Admin)?;
    let mut record = context
        .store
        .get_token(id)?
        .ok_or_else(|| StoreError::NotFound(Thing::Token, format!("token `{id}`")))?;
    record.revoked = true;
    context.store.put_token(&record)?;
    context
        .store
        .audit(&caller.who(), "token.revoke", id, "ok")?;
    context.store.flush().await?;
    Ok(record.view(Timestamp::now()))
}
