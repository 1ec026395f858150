//! `Cli` methods of the secret store (`berth secret set|ls|rm`). The value
//! of a set is moved out of the request into a `Zeroizing` string and
//! handed to the operation; nothing here logs or answers it.

use std::sync::Arc;

use berth_proto::v1::{
    ListSecretsRequest, RemoveSecretRequest, SecretList, SecretReply, SetSecretRequest,
};
use berth_shared::record::SecretScope;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::records::secrets as records;
use crate::grpc::auth::caller;
use crate::ops::{self, Code, Error};
use crate::server::Context;

/// The scope a request names (`APP/ENV` or `*`).
fn scope(text: &str) -> Result<SecretScope, Status> {
    text.parse()
        .map_err(|reason: String| Error::new(Code::SecretInvalid, reason).into())
}

pub async fn set_secret(
    context: &Arc<Context>,
    mut request: Request<SetSecretRequest>,
) -> Result<Response<SecretReply>, Status> {
    let caller = caller(&request)?;
    let SetSecretRequest {
        scope: scope_text,
        name,
        value,
    } = std::mem::take(request.get_mut());
    let value = Zeroizing::new(value);
    let scope = scope(&scope_text)?;
    let secret = ops::secrets::set(context, &caller, &scope, &name, value).await?;
    Ok(Response::new(records::secret_reply(secret)))
}

pub async fn list_secrets(
    context: &Arc<Context>,
    request: Request<ListSecretsRequest>,
) -> Result<Response<SecretList>, Status> {
    let text = &request.get_ref().scope;
    let scope = (!text.is_empty()).then(|| scope(text)).transpose()?;
    let secrets = ops::secrets::list(context, &caller(&request)?, scope.as_ref())?;
    Ok(Response::new(records::secret_list(secrets)))
}

pub async fn remove_secret(
    context: &Arc<Context>,
    request: Request<RemoveSecretRequest>,
) -> Result<Response<SecretReply>, Status> {
    let RemoveSecretRequest { scope: text, name } = request.get_ref();
    let removed = ops::secrets::remove(context, &caller(&request)?, &scope(text)?, name).await?;
    Ok(Response::new(records::secret_reply(removed)))
}
