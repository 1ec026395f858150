//! The secret store's messages as the berth-shared records: names, scopes
//! and versions (a reply never carries a value).

use berth_proto::v1 as pb;
use berth_shared::record::SecretView;

use super::{all, parse, required, ts};
use crate::Failure;

pub fn secrets(reply: pb::SecretList) -> Result<Vec<SecretView>, Failure> {
    let pb::SecretList { secrets } = reply;
    all(secrets, secret_view)
}

pub fn secret(reply: pb::SecretReply) -> Result<SecretView, Failure> {
    let pb::SecretReply { secret } = reply;
    secret_view(required(secret, "secret")?)
}

fn secret_view(message: pb::SecretView) -> Result<SecretView, Failure> {
    let pb::SecretView {
        name,
        scope,
        version,
        updated_at_ms,
        updated_by,
        created_at_ms,
        created_by,
    } = message;
    Ok(SecretView {
        name,
        scope: parse(&scope, "the secret scope")?,
        version,
        updated_at: ts(updated_at_ms),
        updated_by,
        created_at: ts(created_at_ms),
        created_by,
    })
}
