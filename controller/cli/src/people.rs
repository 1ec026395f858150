//! `berth users ...` (admin) and `berth api-tokens ...`.

use std::io::Read;
use std::path::PathBuf;

use berth_proto::v1::{
    AddUserRequest, CreateApiTokenRequest, CreateSetupLinkRequest, IssueUserCredentialRequest,
    ListApiTokensRequest, ListUsersRequest, RemoveUserRequest, RevokeApiTokenRequest,
    SetUserDisabledRequest, SetUserPasswordRequest, SetUserRoleRequest,
};
use berth_shared::credentials::Bundle;
use berth_shared::exit;
use berth_shared::record::{ApiTokenView, UserView};
use clap::Subcommand;

use super::output::{Column, emit, grid};
use super::wire;
use super::{Failure, Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user with a role (viewer, operator or admin).
    Add {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// List users.
    Ls,
    /// Give a user another role; it applies to the user's next call.
    SetRole { name: String, role: String },
    /// Disable a user: every credential and token it holds stops working.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// Remove a user and its API tokens.
    Rm { name: String },
    /// Set a user's web password, read from standard input.
    SetPassword { name: String },
    /// Make a one-time link to the page where the user chooses a web
    /// password (and is signed in); send it to them. A newer link replaces
    /// an older one.
    SetupLink {
        name: String,
        /// How long the link works (e.g. 2h; at most 7d).
        #[arg(long, default_value = "24h")]
        expires: String,
    },
    /// Issue a CLI credential bundle for a user; its key is made here and
    /// never sent. Written to --out (mode 0600), or to standard output.
    Credential {
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiTokensCommand {
    /// Create an API token for yourself; prints it once, alone on stdout.
    Create {
        /// What it is for, e.g. ci.
        #[arg(long)]
        name: String,
        /// How long it stays valid (e.g. 90d); never expires without it.
        #[arg(long)]
        expires: Option<String>,
        /// It never acts above this role (viewer or operator).
        #[arg(long)]
        role_cap: Option<String>,
    },
    /// List your API tokens (an admin sees everyone's); never their secrets.
    Ls,
    /// Revoke an API token by id.
    Revoke { id: String },
}

fn user_line(user: &UserView) -> String {
    let state = if user.disabled { ", disabled" } else { "" };
    format!("user {} ({}{state})", user.name, user.role)
}

pub async fn users(session: &mut Session, command: UsersCommand) -> Outcome {
    let client = &mut session.client;
    let (user, done) = match command {
        UsersCommand::Add { name, role, email } => {
            let reply = client
                .add_user(AddUserRequest { name, role, email })
                .await?;
            (wire::user(reply.into_inner())?, "added")
        }
        UsersCommand::Ls => {
            let users = wire::users(client.list_users(ListUsersRequest {}).await?.into_inner());
            print_users(session, &users);
            return Ok(exit::OK);
        }
        UsersCommand::SetRole { name, role } => {
            let reply = client
                .set_user_role(SetUserRoleRequest { name, role })
                .await?;
            (wire::user(reply.into_inner())?, "changed")
        }
        UsersCommand::Disable { name } => {
            let request = SetUserDisabledRequest {
                name,
                disabled: true,
            };
            let reply = client.set_user_disabled(request).await?;
            (wire::user(reply.into_inner())?, "disabled")
        }
        UsersCommand::Enable { name } => {
            let request = SetUserDisabledRequest {
                name,
                disabled: false,
            };
            let reply = client.set_user_disabled(request).await?;
            (wire::user(reply.into_inner())?, "enabled")
        }
        UsersCommand::Rm { name } => {
            let reply = client.remove_user(RemoveUserRequest { name }).await?;
            (wire::user(reply.into_inner())?, "removed")
        }
        UsersCommand::SetPassword { name } => {
            let password = read_password()?;
            let request = SetUserPasswordRequest { name, password };
            let reply = client.set_user_password(request).await?;
            (wire::user(reply.into_inner())?, "password set")
        }
        UsersCommand::Credential { name, out } => return credential(session, name, out).await,
        UsersCommand::SetupLink { name, expires } => {
            return setup_link(session, name, &expires).await;
        }
    };
    emit(session.format, &user, || {
        format!("{}: {done}", user_line(&user))
    });
    Ok(exit::OK)
}

fn print_users(session: &Session, users: &[UserView]) {
    emit(session.format, &users, || {
        let mut rows = grid(
            session.format,
            &[
                Column::Text("NAME"),
                Column::Text("ROLE"),
                Column::Text("STATE"),
                Column::Text("PASSWORD"),
                Column::Text("API TOKENS"),
                Column::Wide("E-MAIL"),
                Column::Wide("CREATED"),
            ],
        );
        for user in users {
            rows.row(vec![
                user.name.clone(),
                user.role.clone(),
                if user.disabled { "disabled" } else { "enabled" }.into(),
                if user.password_set { "set" } else { "-" }.into(),
                user.api_tokens.to_string(),
                user.email.clone().unwrap_or_default(),
                user.created_at.to_string(),
            ]);
        }
        rows.to_string()
    });
}

/// A password from standard input: its first line, never an argument.
fn read_password() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|err| Failure::usage(format!("read the password from standard input: {err}")))?;
    let password = text.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        return Err(Failure::usage(
            "no password on standard input; pipe it in, e.g. `berth users set-password ana < password-file`",
        ));
    }
    Ok(password)
}

async fn setup_link(session: &mut Session, name: String, expires: &str) -> Outcome {
    let expires_in_secs = berth_shared::time::parse_duration(expires)
        .map_err(|err| Failure::usage(format!("--expires: {err}")))?
        .as_secs()
        .max(1);
    let request = CreateSetupLinkRequest {
        name,
        expires_in_secs,
    };
    let link = session
        .client
        .create_setup_link(request)
        .await?
        .into_inner();
    let expires_at = berth_shared::record::Timestamp(link.expires_at_ms);
    let json = serde_json::json!({
        "user": link.user,
        "url": link.url,
        "expires_at": expires_at,
    });
    match session.format {
        super::Format::Json => emit(session.format, &json, String::new),
        super::Format::Table | super::Format::Wide => println!("{}", link.url),
    }
    eprintln!(
        "setup link for {}; it works once, until {expires_at}. Send it to them over a private channel.",
        link.user
    );
    Ok(exit::OK)
}

async fn credential(session: &mut Session, name: String, out: Option<PathBuf>) -> Outcome {
    let (csr_pem, key_pem) = berth_shared::pki::new_csr(&format!("user:{name}"))
        .map_err(|err| Failure::new(exit::FAILED, format!("make a key: {err}")))?;
    let request = IssueUserCredentialRequest { name, csr_pem };
    let issued = session
        .client
        .issue_user_credential(request)
        .await?
        .into_inner();
    let bundle = Bundle {
        controller: session.controller.clone(),
        principal: issued.user.clone(),
        ca_pem: issued.ca_pem,
        cert_pem: issued.cert_pem,
        key_pem,
    };
    match out {
        Some(path) => {
            bundle
                .save(&path)
                .map_err(|err| Failure::new(exit::FAILED, err))?;
            eprintln!(
                "credential for {} written to {} (mode 0600); give it to them as ~/.config/berth/config",
                issued.user,
                path.display()
            );
        }
        None => {
            let text = bundle
                .to_text()
                .map_err(|err| Failure::new(exit::FAILED, err))?;
            print!("{text}");
        }
    }
    Ok(exit::OK)
}

pub async fn api_tokens(session: &mut Session, command: ApiTokensCommand) -> Outcome {
    match command {
        ApiTokensCommand::Create {
            name,
            expires,
            role_cap,
        } => {
            let expires_in_secs = match expires {
                None => 0,
                Some(text) => berth_shared::time::parse_duration(&text)
                    .map_err(|err| Failure::usage(format!("--expires: {err}")))?
                    .as_secs()
                    .max(1),
            };
            let request = CreateApiTokenRequest {
                name,
                expires_in_secs,
                role_cap: role_cap.unwrap_or_default(),
            };
            let reply = session.client.create_api_token(request).await?.into_inner();
            let created = wire::created_api_token(reply)?;
            match session.format {
                super::Format::Json => emit(session.format, &created, String::new),
                super::Format::Table | super::Format::Wide => println!("{}", created.token),
            }
            eprintln!(
                "API token {} ({}) for {}; it is shown once. Use it as `Authorization: Bearer <token>`.",
                created.view.id, created.view.name, created.view.user
            );
        }
        ApiTokensCommand::Ls => {
            let reply = session
                .client
                .list_api_tokens(ListApiTokensRequest {})
                .await?
                .into_inner();
            let tokens = wire::api_tokens(reply);
            print_tokens(session, &tokens);
        }
        ApiTokensCommand::Revoke { id } => {
            let reply = session
                .client
                .revoke_api_token(RevokeApiTokenRequest { id })
                .await?
                .into_inner();
            let token = wire::api_token(reply)?;
            emit(session.format, &token, || {
                format!("API token {} ({}) revoked", token.id, token.name)
            });
        }
    }
    Ok(exit::OK)
}

fn print_tokens(session: &Session, tokens: &[ApiTokenView]) {
    emit(session.format, &tokens, || {
        if tokens.is_empty() {
            return "no API tokens; create one with `berth api-tokens create --name NAME`".into();
        }
        let mut rows = grid(
            session.format,
            &[
                Column::Text("ID"),
                Column::Text("NAME"),
                Column::Text("USER"),
                Column::Text("STATE"),
                Column::Text("ROLE CAP"),
                Column::Text("LAST USED"),
                Column::Wide("PREFIX"),
                Column::Wide("EXPIRES"),
            ],
        );
        for token in tokens {
            rows.row(vec![
                token.id.clone(),
                token.name.clone(),
                token.user.clone(),
                token.state.clone(),
                token.role_cap.clone().unwrap_or_else(|| "-".into()),
                token
                    .last_used_at
                    .map_or_else(|| "never".into(), |at| at.to_string()),
                token.prefix.clone(),
                token
                    .expires_at
                    .map_or_else(|| "never".into(), |at| at.to_string()),
            ]);
        }
        rows.to_string()
    });
}
