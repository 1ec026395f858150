//! `berth token create|revoke`.

use std::time::Duration;

use base64::Engine;
use berth_proto::v1::{CreateTokenRequest, CreateTokenResponse};
use berth_shared::credentials::JoinToken;
use berth_shared::labels::{Labels, check_label_part};
use berth_shared::pki::{first_cert_der, spki_pin};
use berth_shared::record::{Timestamp, TokenView};
use rand::Rng;
use tonic::Status;

use crate::grpc::auth::Caller;
use crate::server::Context;
use crate::store::tokens_hash as hash_secret;
use crate::store::{StoreError, TokenRecord};

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

pub async fn create(
    context: &Context,
    caller: &Caller,
    request: CreateTokenRequest,
) -> Result<CreateTokenResponse, Status> {
    let ttl = if request.ttl_secs == 0 {
        DEFAULT_TTL
    } else {
        Duration::from_secs(request.ttl_secs)
    };
    if ttl > MAX_TTL {
        return Err(Status::invalid_argument(
            "--ttl may be at most 30 days (720h)",
        ));
    }
    let uses = if request.uses == 0 { 1 } else { request.uses };
    if uses > 10_000 {
        return Err(Status::invalid_argument("--uses may be at most 10000"));
    }
    let mut labels = Labels::new();
    for (key, value) in request.labels {
        check_label_part(&key, true)
            .map_err(|err| Status::invalid_argument(format!("label key {err}")))?;
        check_label_part(&value, false)
            .map_err(|err| Status::invalid_argument(format!("label value {err}")))?;
        labels.insert(key, value);
    }
    let ca = first_cert_der(&context.ca_pem).map_err(|err| Status::internal(err.to_string()))?;
    let pin = spki_pin(&ca).map_err(|err| Status::internal(err.to_string()))?;
    let token = JoinToken {
        id: random_id(),
        secret: random_secret(),
        ca_pin: pin,
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
    Ok(CreateTokenResponse {
        token: token.encode(),
        token_id: record.id,
        expires_at: record.expires_at.to_string(),
    })
}

pub async fn revoke(context: &Context, caller: &Caller, id: &str) -> Result<TokenView, Status> {
    let mut record = context
        .store
        .get_token(id)?
        .ok_or_else(|| StoreError::NotFound(format!("token `{id}`")))?;
    record.revoked = true;
    context.store.put_token(&record)?;
    context
        .store
        .audit(&caller.who(), "token.revoke", id, "ok")?;
    context.store.flush().await?;
    Ok(record.view(Timestamp::now()))
}

/// Stores (or replaces) the credentials of a registry.
pub async fn registry_login(
    context: &Context,
    caller: &Caller,
    request: berth_proto::v1::RegistryLoginRequest,
) -> Result<crate::store::RegistryView, Status> {
    let server = request.server.trim().to_string();
    let valid_server = !server.is_empty()
        && server.len() <= 253
        && server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !valid_server {
        return Err(Status::invalid_argument(format!(
            "`{server}` is not a registry host; write it like registry.example.com or registry.example.com:5000"
        )));
    }
    if request.username.is_empty()
        || request.password.is_empty()
        || request.username.len() > 256
        || request.password.len() > 4096
    {
        return Err(Status::invalid_argument(
            "give a username and a password (at most 256 and 4096 characters)",
        ));
    }
    let record = crate::store::RegistryRecord {
        server: server.clone(),
        username: request.username,
        password: request.password,
        created_at: Timestamp::now(),
        created_by: caller.who(),
    };
    context.store.put_registry(&record)?;
    context
        .store
        .audit(&caller.who(), "registry.login", &server, "ok")?;
    context.store.flush().await?;
    Ok(record.view())
}
