//! `berth env create|ls|show|set|rm`: an app's environments as records,
//! each with its type, whether it is the app's default, its protection
//! and the variables it sets for the app's next deploy there. An
//! environment is named `APP/ENV`.

use std::collections::BTreeMap;

use berth_proto::v1::{
    CreateEnvironmentRequest, GetEnvironmentRequest, ListEnvironmentsRequest,
    RemoveEnvironmentRequest, SetEnvironmentRequest,
};
use berth_shared::exit;
use berth_shared::record::{EnvironmentKind, EnvironmentView};
use clap::{Args, Subcommand};

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Failure, Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Create an environment of an app (operators and admins).
    Create {
        /// The app and the environment: APP/ENV.
        target: String,
        /// What the environment is for.
        #[arg(long = "type", value_name = "TYPE", value_parser = EnvironmentKind::NAMES)]
        kind: String,
        /// Deploys of the app that name no environment go here (the app's
        /// earlier default stops being it).
        #[arg(long)]
        default: bool,
        /// Deploys, rollbacks and stops here need an approval.
        #[arg(long)]
        protected: bool,
        /// Approvals a protected environment needs: 1 (an admin's) or 2
        /// (two operators', or an admin's); default 1.
        #[arg(long)]
        approvals: Option<u64>,
        /// When deploys are taken, e.g. "Mon-Fri 09:00-17:00 Europe/Berlin"
        /// (DAYS HH:MM-HH:MM [ZONE], several joined by `;`); outside it a
        /// deploy is refused unless an admin forces it.
        #[arg(long)]
        window: Option<String>,
        /// A variable for the app's deploys here, KEY=VALUE; repeat for more.
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// List environments: one app's, or every app's.
    Ls {
        /// Only this app's.
        app: Option<String>,
    },
    /// Show one environment with its variables.
    Show {
        /// APP/ENV.
        target: String,
    },
    /// Change an environment (operators and admins; unprotecting a
    /// protected one or changing its approvals is an admin's).
    Set(SetArgs),
    /// Remove an environment's record (a protected one: admins only); its
    /// deployments stay.
    Rm {
        /// APP/ENV.
        target: String,
    },
}

/// `berth env set`: what is not given stays as it is.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// APP/ENV.
    target: String,
    #[arg(long = "type", value_name = "TYPE", value_parser = EnvironmentKind::NAMES)]
    kind: Option<String>,
    /// Make it the app's default environment.
    #[arg(long, conflicts_with = "no_default")]
    default: bool,
    /// Make it no longer the app's default.
    #[arg(long)]
    no_default: bool,
    /// Deploys, rollbacks and stops here need an approval.
    #[arg(long, conflicts_with = "unprotected")]
    protected: bool,
    /// No approval needed any more (admins only).
    #[arg(long)]
    unprotected: bool,
    /// 1 or 2 (see `env create`).
    #[arg(long)]
    approvals: Option<u64>,
    /// A new deploy window (see `env create`); on a protected environment
    /// an admin's change.
    #[arg(long, conflicts_with = "no_window")]
    window: Option<String>,
    /// Take deploys at any time again.
    #[arg(long)]
    no_window: bool,
    /// Set a variable, KEY=VALUE; repeat for more.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// Remove a variable; repeat for more.
    #[arg(long = "unset", value_name = "KEY")]
    unset: Vec<String>,
}

pub async fn run(session: &mut Session, command: EnvCommand) -> Outcome {
    let client = &mut session.client;
    let (environment, done) = match command {
        EnvCommand::Create {
            target,
            kind,
            default,
            protected,
            approvals,
            window,
            vars,
        } => {
            let (app, name) = split_target(&target)?;
            let request = CreateEnvironmentRequest {
                app,
                name,
                kind,
                is_default: default,
                protected,
                approvals,
                vars: parse_vars(&vars)?.into_iter().collect(),
                window,
            };
            let reply = client.create_environment(request).await?;
            (wire::environment(reply.into_inner())?, "created")
        }
        EnvCommand::Ls { app } => {
            let request = ListEnvironmentsRequest { app: app.clone() };
            let reply = client.list_environments(request).await?;
            let environments = wire::environments(reply.into_inner())?;
            emit(session.format, &environments, || {
                environments_table(session, app.as_deref(), &environments)
            });
            return Ok(exit::OK);
        }
        EnvCommand::Show { target } => {
            let (app, name) = split_target(&target)?;
            let reply = client
                .get_environment(GetEnvironmentRequest { app, name })
                .await?;
            let environment = wire::environment(reply.into_inner())?;
            emit(session.format, &environment, || {
                environment_text(&environment)
            });
            return Ok(exit::OK);
        }
        EnvCommand::Set(args) => {
            let request = set_request(args)?;
            let reply = client.set_environment(request).await?;
            (wire::environment(reply.into_inner())?, "changed")
        }
        EnvCommand::Rm { target } => {
            let (app, name) = split_target(&target)?;
            let reply = client
                .remove_environment(RemoveEnvironmentRequest { app, name })
                .await?;
            (wire::environment(reply.into_inner())?, "removed")
        }
    };
    emit(session.format, &environment, || {
        format!(
            "environment {}/{} {done}: {}",
            environment.app,
            environment.name,
            rules_text(&environment)
        )
    });
    Ok(exit::OK)
}

fn set_request(args: SetArgs) -> Result<SetEnvironmentRequest, Failure> {
    let SetArgs {
        target,
        kind,
        default,
        no_default,
        protected,
        unprotected,
        approvals,
        window,
        no_window,
        vars,
        unset,
    } = args;
    let (app, name) = split_target(&target)?;
    Ok(SetEnvironmentRequest {
        app,
        name,
        kind,
        is_default: choice(default, no_default),
        protected: choice(protected, unprotected),
        approvals,
        set_vars: parse_vars(&vars)?.into_iter().collect(),
        unset_vars: unset,
        window: if no_window {
            Some(String::new())
        } else {
            window
        },
    })
}

/// `Some(true)` for the flag, `Some(false)` for its opposite, `None` for
/// neither (clap refuses both).
fn choice(yes: bool, no: bool) -> Option<bool> {
    (yes || no).then_some(yes)
}

/// `APP/ENV` as its two names.
fn split_target(target: &str) -> Result<(String, String), Failure> {
    match target.split_once('/') {
        Some((app, name)) if !app.is_empty() && !name.is_empty() => {
            Ok((app.to_string(), name.to_string()))
        }
        _ => Err(Failure::usage(format!(
            "`{}` does not name an environment; write APP/ENV, e.g. web/production",
            berth_shared::text::clip(target, 80)
        ))),
    }
}

/// `--var KEY=VALUE` arguments as a map; a later one for a key wins.
fn parse_vars(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            // The key only: a value may be sensitive, so none is echoed.
            _ => Err(Failure::usage(format!(
                "--var `{}` is not KEY=VALUE; write e.g. --var LOG=info",
                berth_shared::text::clip(pair.split('=').next().unwrap_or_default(), 60)
            ))),
        })
        .collect()
}

/// `production, default, protected (2 approvals), 3 variables`.
fn rules_text(environment: &EnvironmentView) -> String {
    let mut parts = vec![environment.kind.clone()];
    if environment.is_default {
        parts.push("default".into());
    }
    if environment.protected {
        parts.push(approvals_text(environment));
    }
    if let Some(window) = &environment.window {
        parts.push(format!("deploys {window}"));
    }
    let count = environment.vars.len();
    parts.push(format!(
        "{count} variable{}",
        if count == 1 { "" } else { "s" }
    ));
    parts.join(", ")
}

fn approvals_text(environment: &EnvironmentView) -> String {
    match environment.approvals {
        1 => "protected (1 approval: an admin's)".into(),
        n => format!("protected ({n} approvals: two operators' or an admin's)"),
    }
}

fn environment_text(environment: &EnvironmentView) -> String {
    let mut text = format!(
        "{}/{}: {}\ncreated {} by {}; changed {} by {}",
        environment.app,
        environment.name,
        rules_text(environment),
        ago(environment.created_at),
        environment.created_by,
        ago(environment.updated_at),
        environment.updated_by,
    );
    for (name, value) in &environment.vars {
        text.push_str(&format!("\n  {name}={value}"));
    }
    text
}

fn environments_table(
    session: &Session,
    app: Option<&str>,
    environments: &[EnvironmentView],
) -> String {
    if environments.is_empty() {
        let (whose, target) = match app {
            Some(app) => (format!("{app} has"), format!("{app}/ENV")),
            None => ("no app has".into(), "APP/ENV".into()),
        };
        return format!(
            "{whose} no environment records yet: `berth env create {target} --type TYPE` makes one"
        );
    }
    let mut rows = grid(
        session.format,
        &[
            Column::Text("APP"),
            Column::Text("ENV"),
            Column::Text("TYPE"),
            Column::Text("DEFAULT"),
            Column::Text("PROTECTED"),
            Column::Text("VARS"),
            Column::Wide("CHANGED"),
            Column::Wide("BY"),
        ],
    );
    for environment in environments {
        let protected = if environment.protected {
            format!("yes ({})", environment.approvals)
        } else {
            "no".into()
        };
        rows.row(vec![
            environment.app.clone(),
            environment.name.clone(),
            environment.kind.clone(),
            if environment.is_default { "yes" } else { "" }.into(),
            protected,
            environment.vars.len().to_string(),
            ago(environment.updated_at),
            environment.updated_by.clone(),
        ]);
    }
    rows.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_variables_are_read_or_refused_by_name() {
        assert_eq!(
            split_target("web/prod").ok(),
            Some(("web".into(), "prod".into()))
        );
        for bad in ["web", "/prod", "web/", ""] {
            let refused = split_target(bad).expect_err(bad);
            assert_eq!(refused.code, exit::USAGE);
            assert!(
                refused.message.contains("write APP/ENV"),
                "{}",
                refused.message
            );
        }
        let vars = parse_vars(&["A=1".into(), "B=x=y".into(), "C=".into(), "A=2".into()]);
        let expected: BTreeMap<String, String> = [("A", "2"), ("B", "x=y"), ("C", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(vars.ok(), Some(expected));
        for bad in ["NOEQUALS", "=value"] {
            let refused = parse_vars(&[bad.into()]).expect_err(bad);
            assert!(refused.message.contains("KEY=VALUE"), "{}", refused.message);
        }
        assert_eq!(choice(false, false), None);
        assert_eq!(choice(true, false), Some(true));
        assert_eq!(choice(false, true), Some(false));
    }
}
