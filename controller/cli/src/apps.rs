//! `berth apps ls|show|rate`: the app catalogue (each app's environments
//! with their newest deployment, how people rate it, your own rating) and
//! rating an app 1 to 5 stars.

use berth_proto::v1::{ClearAppRatingRequest, GetAppRequest, ListAppsRequest, RateAppRequest};
use berth_shared::exit;
use berth_shared::record::{AppDetail, AppSummary, RatingSummary};
use clap::Subcommand;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum AppsCommand {
    /// List every app: the newest deployment in each environment, the
    /// average rating and yours.
    Ls,
    /// Show one app: its ratings and its recent deployments per environment.
    Show { app: String },
    /// Rate an app 1 to 5 stars, replacing your earlier rating; --clear
    /// takes your rating back.
    Rate {
        app: String,
        /// 1 to 5.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        stars: Option<u64>,
        /// Take your rating back instead.
        #[arg(long)]
        clear: bool,
    },
}

pub async fn run(session: &mut Session, command: AppsCommand) -> Outcome {
    match command {
        AppsCommand::Ls => {
            let reply = session.client.list_apps(ListAppsRequest {}).await?;
            let apps = wire::app_list(reply.into_inner())?;
            emit(session.format, &apps, || apps_table(session, &apps));
        }
        AppsCommand::Show { app } => {
            let reply = session.client.get_app(GetAppRequest { app }).await?;
            let app = wire::app(reply.into_inner())?;
            emit(session.format, &app, || app_text(session, &app));
        }
        AppsCommand::Rate { app, stars, clear } => {
            let reply = match (stars, clear) {
                (Some(stars), false) => {
                    let request = RateAppRequest {
                        app: app.clone(),
                        stars,
                    };
                    session.client.rate_app(request).await?
                }
                _ => {
                    let request = ClearAppRatingRequest { app: app.clone() };
                    session.client.clear_app_rating(request).await?
                }
            };
            let rating = wire::rating(reply.into_inner())?;
            emit(session.format, &rating, || {
                let done = match rating.my_stars {
                    Some(stars) => format!("you rated {app} {}", stars_text(stars)),
                    None => format!("you have no rating of {app}"),
                };
                format!("{done}; {}", rating_text(&rating))
            });
        }
    }
    Ok(exit::OK)
}

/// `★★★★☆` for 4 stars.
fn stars_text(stars: u8) -> String {
    let full = usize::from(stars.min(5));
    format!("{}{}", "★".repeat(full), "☆".repeat(5 - full))
}

/// `average 4.5 from 2 ratings`, or that no one rated it.
fn rating_text(rating: &RatingSummary) -> String {
    match rating.average {
        None => "no ratings yet".into(),
        Some(average) => {
            let plural = if rating.count == 1 { "" } else { "s" };
            format!("average {average:.1} from {} rating{plural}", rating.count)
        }
    }
}

fn apps_table(session: &Session, apps: &[AppSummary]) -> String {
    if apps.is_empty() {
        return "no apps yet: an app appears here with its first deployment".into();
    }
    let mut rows = grid(
        session.format,
        &[
            Column::Text("APP"),
            Column::Full("ENVIRONMENTS"),
            Column::Text("RATING"),
            Column::Text("RATINGS"),
            Column::Text("YOURS"),
        ],
    );
    for app in apps {
        let environments = app
            .environments
            .iter()
            .map(|env| {
                let latest = &env.latest;
                format!("{} {} {}", env.environment, latest.version, latest.status)
            })
            .collect::<Vec<_>>()
            .join("\n");
        rows.row(vec![
            app.app.clone(),
            environments,
            app.rating
                .average
                .map_or_else(|| "-".into(), |average| format!("★ {average:.1}")),
            app.rating.count.to_string(),
            app.rating.my_stars.map_or_else(|| "-".into(), stars_text),
        ]);
    }
    rows.to_string()
}

fn app_text(session: &Session, app: &AppDetail) -> String {
    let rating = &app.rating;
    let mut text = format!("{}: {}", app.app, rating_text(rating));
    if rating.count > 0 {
        let spread: Vec<String> = (1..=5u8)
            .zip(rating.histogram)
            .rev()
            .map(|(stars, count)| format!("{}: {count}", stars_text(stars)))
            .collect();
        text.push_str(&format!("\n  {}", spread.join("\n  ")));
    }
    let yours = rating.my_stars.map_or_else(|| "none".into(), stars_text);
    text.push_str(&format!("\nyour rating: {yours}\n\n"));
    let mut rows = grid(
        session.format,
        &[
            Column::Text("ENV"),
            Column::Id("DEPLOYMENT"),
            Column::Text("VERSION"),
            Column::Text("STATUS"),
            Column::Text("CREATED"),
            Column::Text("BY"),
        ],
    );
    for environment in &app.environments {
        for deployment in &environment.deployments {
            rows.row(vec![
                environment.environment.clone(),
                deployment.id.to_string(),
                deployment.version.clone(),
                deployment.status.to_string(),
                ago(deployment.created_at),
                deployment.triggered_by.clone(),
            ]);
        }
    }
    text.push_str(&rows.to_string());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_averages_read_well() {
        assert_eq!(stars_text(4), "★★★★☆");
        assert_eq!(stars_text(1), "★☆☆☆☆");
        assert_eq!(rating_text(&RatingSummary::default()), "no ratings yet");
        let one = RatingSummary::new([0, 0, 0, 0, 1], None);
        assert_eq!(rating_text(&one), "average 5.0 from 1 rating");
        let two = RatingSummary::new([0, 0, 0, 1, 1], Some(4));
        assert_eq!(rating_text(&two), "average 4.5 from 2 ratings");
    }
}
