//! `berth token create|ls|revoke`.

use berth_proto::v1::{CreateTokenRequest, ListTokensRequest, RevokeTokenRequest};
use berth_shared::exit;
use berth_shared::labels::{format_labels, parse_labels};
use berth_shared::record::TokenView;
use clap::Subcommand;

use super::output::{Column, emit, emit_sorted, grid};
use super::wire;
use super::{Failure, Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a join token; prints it alone on stdout.
    Create {
        /// Labels every agent joining with it gets, k=v,k2=v2.
        #[arg(long, default_value = "")]
        labels: String,
        /// How long it stays valid (e.g. 30m, 1h, 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// How many agents may join with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// List tokens (never their secrets).
    Ls,
    /// Revoke a token by id.
    Revoke { id: String },
}

pub async fn run(session: &mut Session, command: TokenCommand) -> Outcome {
    match command {
        TokenCommand::Create { labels, ttl, uses } => {
            let labels =
                parse_labels(&labels).map_err(|err| Failure::usage(format!("--labels: {err}")))?;
            let ttl = berth_shared::time::parse_duration(&ttl)
                .map_err(|err| Failure::usage(format!("--ttl: {err}")))?;
            if uses == 0 {
                return Err(Failure::usage("--uses must be at least 1"));
            }
            let request = CreateTokenRequest {
                labels: labels.into_iter().collect(),
                ttl_secs: ttl.as_secs().max(1),
                uses,
            };
            let mut token = session.client.create_token(request).await?.into_inner();
            // The token carries the controllers this CLI uses, so
            // `berth-agent join` needs no `--controller`.
            if let Ok(mut parsed) = berth_shared::credentials::JoinToken::parse(&token.token) {
                parsed.controllers =
                    berth_shared::credentials::controller_addresses(&session.controller)
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                token.token = parsed.encode();
            }
            match session.format {
                super::Format::Json => println!(
                    "{}",
                    serde_json::json!({"token": token.token, "id": token.token_id, "expires_at": token.expires_at})
                ),
                super::Format::Table | super::Format::Wide => println!("{}", token.token),
            }
            eprintln!(
                "token {} expires at {} ({} use{}). On the new host, as root, run:",
                token.token_id,
                token.expires_at,
                uses,
                if uses == 1 { "" } else { "s" }
            );
            // The token is printed once, on stdout; the hint refers to it.
            eprintln!("  {}", install_line(&session.controller));
            eprintln!("where <TOKEN> is the token printed above.");
            eprintln!(
                "with install-agent.sh (/usr/share/berth/ in the berth package) and the agent package copied there; --binary FILE installs a plain berth-agent, --name NAME names the agent (default: the host's name), --with-docker and --with-caddy install those"
            );
        }
        TokenCommand::Ls => {
            let reply = session
                .client
                .list_tokens(ListTokensRequest {})
                .await?
                .into_inner();
            let tokens: Vec<TokenView> = wire::tokens(reply);
            emit(session.format, &tokens, || {
                let mut rows = grid(
                    session.format,
                    &[
                        Column::Text("ID"),
                        Column::Text("STATE"),
                        Column::Text("USES"),
                        Column::Text("LABELS"),
                        Column::Text("EXPIRES"),
                        Column::Wide("CREATED BY"),
                    ],
                );
                for token in &tokens {
                    rows.row(vec![
                        token.id.clone(),
                        token.state.clone(),
                        format!("{}/{}", token.uses, token.uses_allowed),
                        format_labels(&token.labels),
                        token.expires_at.to_string(),
                        token.created_by.clone(),
                    ]);
                }
                if tokens.is_empty() {
                    "no tokens".to_string()
                } else {
                    rows.to_string()
                }
            });
        }
        TokenCommand::Revoke { id } => {
            let reply = session
                .client
                .revoke_token(RevokeTokenRequest { token_id: id })
                .await?
                .into_inner();
            let token: TokenView = wire::token(reply)?;
            emit(session.format, &token, || {
                format!("token {} revoked", token.id)
            });
        }
    }
    Ok(exit::OK)
}

/// The command line that installs, joins and starts an agent with
/// `packaging/install-agent.sh`; the token goes in the environment, so it
/// stays out of the process list (`<TOKEN>` stands for it: a secret is
/// printed once).
fn install_line(controller: &str) -> String {
    format!(
        "BERTH_JOIN_TOKEN=<TOKEN> sh install-agent.sh --controller {controller} --deb berth-agent_{}_$(dpkg --print-architecture).deb",
        env!("CARGO_PKG_VERSION")
    )
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Store credentials for a registry; agents get them only for images from it.
    Login {
        /// Registry host, e.g. registry.example.com or registry.example.com:5000 (docker.io for Docker Hub).
        server: String,
        #[arg(long)]
        username: String,
        /// Read the password from standard input (it never goes on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List the registries the controller holds credentials for.
    Ls,
    /// Forget a registry's credentials.
    Logout { server: String },
}

pub async fn registry(session: &mut Session, command: RegistryCommand) -> Outcome {
    use berth_proto::v1::{ListRegistriesRequest, RegistryLoginRequest, RegistryLogoutRequest};
    match command {
        RegistryCommand::Login {
            server,
            username,
            password_stdin: _,
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).map_err(|err| {
                Failure::usage(format!("read the password from standard input: {err}"))
            })?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                return Err(Failure::usage(
                    "no password on standard input; pipe it in, e.g. `cat token | berth registry login HOST --username U --password-stdin`",
                ));
            }
            let reply = session
                .client
                .registry_login(RegistryLoginRequest {
                    server,
                    username,
                    password,
                })
                .await?
                .into_inner();
            let view = wire::registry(reply)?;
            emit_sorted(session.format, &view, || {
                format!("credentials for {} stored", view.server)
            });
        }
        RegistryCommand::Ls => {
            let reply = session
                .client
                .list_registries(ListRegistriesRequest {})
                .await?
                .into_inner();
            let views = wire::registries(reply);
            emit_sorted(session.format, &views, || {
                let mut rows = grid(
                    session.format,
                    &[
                        Column::Text("SERVER"),
                        Column::Text("USERNAME"),
                        Column::Text("ADDED"),
                        Column::Wide("BY"),
                    ],
                );
                for view in &views {
                    rows.row(vec![
                        view.server.clone(),
                        view.username.clone(),
                        view.created_at.to_string(),
                        view.created_by.clone(),
                    ]);
                }
                if views.is_empty() {
                    "no registry credentials".to_string()
                } else {
                    rows.to_string()
                }
            });
        }
        RegistryCommand::Logout { server } => {
            let reply = session
                .client
                .registry_logout(RegistryLogoutRequest { server })
                .await?
                .into_inner();
            let view = wire::logged_out(reply);
            emit_sorted(session.format, &view, || {
                format!("credentials for {} removed", view.server)
            });
        }
    }
    Ok(exit::OK)
}
