//! Rating an app (`berth apps rate`, `PUT|DELETE /api/v1/apps/{app}/rating`):
//! 1 to 5 stars per user, to help others find the apps that serve them
//! best. A rating is an opinion, not a change to deployments, so any
//! signed-in person (viewer and up) may rate any app that has a
//! deployment. Ratings are the user's: an API token, a CLI certificate and
//! a web session of one user rate as that one user (the principal's name),
//! and rating again replaces the earlier rating. Both changes are audited.

use berth_shared::record::{RatingSummary, Timestamp};
use tracing::info;

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::{PrincipalKind, RatingRecord, Role, Store};

/// Gives `app` `stars` (1 to 5) from the caller's user, replacing its
/// earlier rating; returns the app's ratings after it.
pub async fn rate(
    context: &Context,
    caller: &Caller,
    app: &str,
    stars: u64,
) -> Result<RatingSummary> {
    caller.require(Role::Viewer)?;
    let user = user_of(caller)?;
    let stars = checked_stars(stars)?;
    super::apps::existing(&context.store, app)?;
    let rating = RatingRecord {
        app: app.to_string(),
        user: user.clone(),
        stars,
        rated_at: Timestamp::now(),
    };
    let earlier = context.store.put_rating(&rating)?;
    let outcome = match earlier {
        Some(earlier) => format!("{stars} stars (was {})", earlier.stars),
        None => format!("{stars} stars"),
    };
    audit(context, caller, "rating.set", app, &outcome).await?;
    info!(app, user, stars, "app rated");
    summary(&context.store, app, &user)
}

/// Takes the caller's rating of `app` back; returns the app's ratings
/// after it. Clearing when there is none is no error (the result is the
/// same), and works for an app whose deployments were all purged.
pub async fn clear(context: &Context, caller: &Caller, app: &str) -> Result<RatingSummary> {
    caller.require(Role::Viewer)?;
    let user = user_of(caller)?;
    super::apps::check_length(app)?;
    let removed = context.store.remove_rating(app, &user)?;
    let outcome = match removed {
        Some(removed) => format!("cleared (was {} stars)", removed.stars),
        None => "no rating to clear".to_string(),
    };
    audit(context, caller, "rating.clear", app, &outcome).await?;
    summary(&context.store, app, &user)
}

/// The user a caller rates as: its user's name, whatever credential it
/// came with. Only people rate.
pub(super) fn user_of(caller: &Caller) -> Result<String> {
    match caller.principal.kind {
        PrincipalKind::User => Ok(caller.principal.name.clone()),
        PrincipalKind::Agent => Err(Error::new(
            Code::AuthPermissionDenied,
            "only people rate apps and read their ratings; use a user's credential",
        )),
    }
}

/// `app`'s ratings, with `user`'s own stars.
pub(super) fn summary(store: &Store, app: &str, user: &str) -> Result<RatingSummary> {
    let (tally, mine) = store.rating_tally(app, user)?;
    Ok(RatingSummary::new(tally.histogram, mine))
}

/// Stars as stored, or `rating/invalid` naming the value.
fn checked_stars(stars: u64) -> Result<u8> {
    match u8::try_from(stars) {
        Ok(stars @ 1..=5) => Ok(stars),
        _ => Err(Error::new(
            Code::RatingInvalid,
            format!(
                "{stars} stars is not a rating: a rating is a whole number of stars from 1 to 5; send 1 to 5, or clear your rating instead"
            ),
        )),
    }
}

async fn audit(
    context: &Context,
    caller: &Caller,
    action: &str,
    app: &str,
    outcome: &str,
) -> Result<()> {
    context.store.audit(&caller.who(), action, app, outcome)?;
    context.store.flush().await?;
    Ok(())
}
