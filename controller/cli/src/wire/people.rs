//! Users and API tokens from their messages.

use berth_proto::v1 as pb;
use berth_shared::record::{ApiTokenView, CreatedApiToken, UserView};

use super::{required, ts, ts_opt};
use crate::Failure;

pub fn user(reply: pb::UserReply) -> Result<UserView, Failure> {
    let pb::UserReply { user } = reply;
    Ok(user_view(required(user, "user")?))
}

pub fn users(reply: pb::UserList) -> Vec<UserView> {
    let pb::UserList { users } = reply;
    users.into_iter().map(user_view).collect()
}

fn user_view(message: pb::UserView) -> UserView {
    let pb::UserView {
        name,
        email,
        role,
        disabled,
        created_at_ms,
        created_by,
        password_set,
        api_tokens,
    } = message;
    UserView {
        name,
        email,
        role,
        disabled,
        created_at: ts(created_at_ms),
        created_by,
        password_set,
        api_tokens: usize::try_from(api_tokens).unwrap_or(usize::MAX),
    }
}

pub fn api_token(reply: pb::ApiTokenReply) -> Result<ApiTokenView, Failure> {
    let pb::ApiTokenReply { token } = reply;
    Ok(api_token_view(required(token, "API token")?))
}

pub fn api_tokens(reply: pb::ApiTokenList) -> Vec<ApiTokenView> {
    let pb::ApiTokenList { tokens } = reply;
    tokens.into_iter().map(api_token_view).collect()
}

pub fn created_api_token(reply: pb::CreatedApiTokenReply) -> Result<CreatedApiToken, Failure> {
    let pb::CreatedApiTokenReply { token, view } = reply;
    Ok(CreatedApiToken {
        token,
        view: api_token_view(required(view, "API token")?),
    })
}

fn api_token_view(message: pb::ApiTokenView) -> ApiTokenView {
    let pb::ApiTokenView {
        id,
        prefix,
        user,
        name,
        role_cap,
        created_at_ms,
        expires_at_ms,
        last_used_at_ms,
        state,
    } = message;
    ApiTokenView {
        id,
        prefix,
        user,
        name,
        role_cap,
        created_at: ts(created_at_ms),
        expires_at: ts_opt(expires_at_ms),
        last_used_at: ts_opt(last_used_at_ms),
        state,
    }
}
