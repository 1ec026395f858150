//! Users and API tokens as messages.

use berth_proto::v1 as pb;
use berth_shared::record::{ApiTokenView, CreatedApiToken, UserView};

pub fn user(record: UserView) -> pb::UserReply {
    pb::UserReply {
        user: Some(user_view(record)),
    }
}

pub fn users(records: Vec<UserView>) -> pb::UserList {
    pb::UserList {
        users: records.into_iter().map(user_view).collect(),
    }
}

fn user_view(record: UserView) -> pb::UserView {
    let UserView {
        name,
        email,
        role,
        disabled,
        created_at,
        created_by,
        password_set,
        api_tokens,
    } = record;
    pb::UserView {
        name,
        email,
        role,
        disabled,
        created_at_ms: created_at.0,
        created_by,
        password_set,
        api_tokens: api_tokens as u64,
    }
}

pub fn api_token(record: ApiTokenView) -> pb::ApiTokenReply {
    pb::ApiTokenReply {
        token: Some(api_token_view(record)),
    }
}

pub fn api_tokens(records: Vec<ApiTokenView>) -> pb::ApiTokenList {
    pb::ApiTokenList {
        tokens: records.into_iter().map(api_token_view).collect(),
    }
}

pub fn created_api_token(record: CreatedApiToken) -> pb::CreatedApiTokenReply {
    let CreatedApiToken { token, view } = record;
    pb::CreatedApiTokenReply {
        token,
        view: Some(api_token_view(view)),
    }
}

fn api_token_view(record: ApiTokenView) -> pb::ApiTokenView {
    let ApiTokenView {
        id,
        prefix,
        user,
        name,
        role_cap,
        created_at,
        expires_at,
        last_used_at,
        state,
    } = record;
    pb::ApiTokenView {
        id,
        prefix,
        user,
        name,
        role_cap,
        created_at_ms: created_at.0,
        expires_at_ms: expires_at.map(|at| at.0),
        last_used_at_ms: last_used_at.map(|at| at.0),
        state,
    }
}
