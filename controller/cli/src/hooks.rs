//! `berth hook add|ls|rm`: git push hooks. `add` prints the path to give
//! the git host and the secret it signs with, this once.

use berth_proto::v1::{AddHookRequest, HookIdRequest, ListHooksRequest};
use berth_shared::exit;
use berth_shared::record::HookView;
use clap::Subcommand;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Deploy on a git push: `berth hook add --app web --env production
    /// --ref main --repo https://git.example.com/acme/web.git`. A build
    /// agent fetches the pushed commit with git; its tree (or --path) with
    /// its berth.toml is the bundle. Prints the URL path and the secret
    /// to give the git host, once.
    Add {
        #[arg(long)]
        app: String,
        #[arg(long = "env")]
        environment: String,
        /// A branch (main), or a ref pattern with * (refs/tags/v*).
        #[arg(long = "ref")]
        git_ref: String,
        /// The repository the build agent fetches from.
        #[arg(long)]
        repo: String,
        /// The subdirectory that holds berth.toml, if not the root.
        #[arg(long)]
        path: Option<String>,
        /// github, gitlab or gitea (also Forgejo): how deliveries are signed.
        #[arg(long, default_value = "github")]
        provider: String,
        /// A secret of APP/ENV (or the fleet) holding a token or a deploy
        /// key for the repository.
        #[arg(long)]
        credential: Option<String>,
        /// Labels the fetching build agent must have (role=build).
        #[arg(long, default_value = "")]
        build_labels: String,
    },
    /// List the hooks with their latest pushes.
    Ls,
    /// Remove a hook; deliveries to it are refused from then on.
    Rm { id: String },
}

pub async fn run(session: &mut Session, command: HookCommand) -> Outcome {
    match command {
        HookCommand::Add {
            app,
            environment,
            git_ref,
            repo,
            path,
            provider,
            credential,
            build_labels,
        } => {
            let request = AddHookRequest {
                app,
                environment,
                git_ref,
                repo,
                path,
                provider,
                credential,
                build_labels,
            };
            let reply = session.client.add_hook(request).await?;
            let created = wire::created_hook(reply.into_inner())?;
            emit(session.format, &created, || {
                format!(
                    "hook {} added: pushes to {} of {} deploy {} to {}.\ngive the git host this payload URL (after the controller's HTTP address, content type application/json, push events):\n  {}\nand this secret{} (shown only now):\n  {}",
                    created.hook.id,
                    created.hook.git_ref,
                    created.hook.repo,
                    created.hook.app,
                    created.hook.environment,
                    created.url,
                    if created.hook.provider.as_str() == "gitlab" {
                        " token"
                    } else {
                        ""
                    },
                    created.secret
                )
            });
        }
        HookCommand::Ls => {
            let reply = session.client.list_hooks(ListHooksRequest {}).await?;
            let hooks = wire::hooks(reply.into_inner())?;
            emit(session.format, &hooks, || table(session, &hooks));
        }
        HookCommand::Rm { id } => {
            let reply = session.client.remove_hook(HookIdRequest { id }).await?;
            let hook = wire::hook(reply.into_inner())?;
            emit(session.format, &hook, || {
                format!("hook {} removed", hook.id)
            });
        }
    }
    Ok(exit::OK)
}

fn table(session: &Session, hooks: &[HookView]) -> String {
    if hooks.is_empty() {
        return "no hooks: add one with `berth hook add --app A --env E --ref main --repo URL`"
            .into();
    }
    let mut rows = grid(
        session.format,
        &[
            Column::Text("ID"),
            Column::Text("APP/ENV"),
            Column::Text("REF"),
            Column::Text("REPO"),
            Column::Text("HOST"),
            Column::Text("PUSHES"),
            Column::Text("LAST PUSH"),
        ],
    );
    for hook in hooks {
        let last = hook.pushes.first().map_or("-".to_string(), |push| {
            let what = push
                .deployment
                .clone()
                .or_else(|| push.error.clone())
                .unwrap_or_default();
            format!(
                "{} {} {} {what}",
                ago(push.received_at),
                &push.commit[..push.commit.len().min(8)],
                push.state.as_str()
            )
        });
        rows.row(vec![
            hook.id.clone(),
            format!("{}/{}", hook.app, hook.environment),
            hook.git_ref.clone(),
            hook.repo.clone(),
            hook.provider.to_string(),
            format!("{} ok, {} refused", hook.accepted, hook.refused),
            last,
        ]);
    }
    rows.to_string()
}
