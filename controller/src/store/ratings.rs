//! App ratings: one record per app and user in the `ratings` tree, keyed
//! `app \0 user` so that an app's ratings are one contiguous prefix. A
//! user rating again replaces its record; an app's tally is one prefix
//! scan (a tree of users times apps, small beside the deployments).
//!
//! Ratings outlive the app's deployments: purging every deployment of an
//! app leaves its ratings, which count again if the app is deployed again.
//! Removing a user removes its ratings ([`Store::remove_ratings_of`]).

use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};

use super::keys::{name_prefix, rating_key};
use super::{Store, StoreError, decode, encode};

const TREE: &str = "ratings";

/// One user's rating of one app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingRecord {
    pub app: String,
    /// The user's name (a principal's name, whatever credential it used).
    pub user: String,
    /// 1 to 5.
    pub stars: u8,
    pub rated_at: Timestamp,
}

/// The ratings of one app, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RatingTally {
    pub count: u64,
    /// The stars of every rating added up.
    pub sum: u64,
    /// How many ratings gave 1, 2, 3, 4 and 5 stars.
    pub histogram: [u64; 5],
}

impl RatingTally {
    fn add(&mut self, stars: u8) {
        self.count += 1;
        self.sum += u64::from(stars);
        self.histogram[usize::from(stars - 1)] += 1;
    }
}

impl Store {
    /// Stores a rating, replacing the user's earlier one of the app;
    /// returns that earlier one.
    pub fn put_rating(&self, rating: &RatingRecord) -> Result<Option<RatingRecord>, StoreError> {
        let key = rating_key(&rating.app, &rating.user);
        decoded(self.t()?.ratings.insert(key, encode(rating))?)
    }

    /// Removes `user`'s rating of `app`; returns it, or `None` when there
    /// was none.
    pub fn remove_rating(&self, app: &str, user: &str) -> Result<Option<RatingRecord>, StoreError> {
        decoded(self.t()?.ratings.remove(rating_key(app, user))?)
    }

    /// `user`'s rating of `app`, if it rated it.
    pub fn rating(&self, app: &str, user: &str) -> Result<Option<RatingRecord>, StoreError> {
        decoded(self.t()?.ratings.get(rating_key(app, user))?)
    }

    /// Every rating of `app` counted, and `user`'s own stars among them.
    pub fn rating_tally(
        &self,
        app: &str,
        user: &str,
    ) -> Result<(RatingTally, Option<u8>), StoreError> {
        let mut tally = RatingTally::default();
        let mut own = None;
        for value in self.t()?.ratings.scan_prefix(name_prefix(app)).values() {
            let rating: RatingRecord = decode(TREE, &value?)?;
            if !(1..=5).contains(&rating.stars) {
                return Err(StoreError::Corrupt {
                    tree: TREE,
                    reason: format!(
                        "a rating of {} by {} has {} stars",
                        rating.app, rating.user, rating.stars
                    ),
                });
            }
            if rating.user == user {
                own = Some(rating.stars);
            }
            tally.add(rating.stars);
        }
        Ok((tally, own))
    }

    /// Removes every rating `user` gave (when the user is removed, so a
    /// later user of the same name starts without them); returns how many.
    pub fn remove_ratings_of(&self, user: &str) -> Result<usize, StoreError> {
        let tree = &self.t()?.ratings;
        let mut removed = 0;
        for entry in tree.iter() {
            let (key, value) = entry?;
            let rating: RatingRecord = decode(TREE, &value)?;
            if rating.user == user {
                tree.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A rating read from the tree, if there was one.
fn decoded(bytes: Option<super::kv::IVec>) -> Result<Option<RatingRecord>, StoreError> {
    bytes.map(|bytes| decode(TREE, &bytes)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(app: &str, user: &str, stars: u8) -> RatingRecord {
        RatingRecord {
            app: app.into(),
            user: user.into(),
            stars,
            rated_at: Timestamp(1),
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    #[track_caller]
    fn check(store: &Store, app: &str, user: &str, count: u64, sum: u64, own: Option<u8>) {
        let (tally, mine) = store.rating_tally(app, user).expect("tally");
        assert_eq!(
            (tally.count, tally.sum, mine),
            (count, sum, own),
            "{app} as {user}: {tally:?}"
        );
        assert_eq!(tally.histogram.iter().sum::<u64>(), count);
    }

    #[test]
    fn a_second_rating_replaces_the_first_and_apps_do_not_mix() {
        let (_dir, store) = store();
        assert_eq!(
            store.put_rating(&rating("web", "ana", 2)).expect("put"),
            None
        );
        let replaced = store.put_rating(&rating("web", "ana", 5)).expect("put");
        assert_eq!(replaced.map(|old| old.stars), Some(2));
        store.put_rating(&rating("web", "bo", 4)).expect("put");
        // `web-admin` shares the start of `web`'s name, not its prefix.
        store
            .put_rating(&rating("web-admin", "ana", 1))
            .expect("put");
        check(&store, "web", "ana", 2, 9, Some(5));
        check(&store, "web", "cy", 2, 9, None);
        check(&store, "web-admin", "ana", 1, 1, Some(1));
        check(&store, "we", "ana", 0, 0, None);
        let (tally, _) = store.rating_tally("web", "ana").expect("tally");
        assert_eq!(tally.histogram, [0, 0, 0, 1, 1]);
        assert_eq!(
            store.rating("web", "bo").expect("get").map(|r| r.stars),
            Some(4)
        );
    }

    #[test]
    fn removing_a_rating_or_its_user_takes_its_stars_out() {
        let (_dir, store) = store();
        store.put_rating(&rating("web", "ana", 3)).expect("put");
        store.put_rating(&rating("api", "ana", 4)).expect("put");
        store.put_rating(&rating("web", "bo", 5)).expect("put");
        let removed = store.remove_rating("web", "bo").expect("remove");
        assert_eq!(removed.map(|old| old.stars), Some(5));
        assert_eq!(store.remove_rating("web", "bo").expect("remove"), None);
        check(&store, "web", "bo", 1, 3, None);
        let ana = super::super::UserRecord {
            name: "ana".into(),
            email: None,
            role: super::super::Role::Viewer,
            disabled: false,
            created_at: Timestamp(1),
            created_by: "admin".into(),
            password_hash: None,
            password_set_at: None,
        };
        store.add_user(&ana).expect("add");
        store.remove_user("ana").expect("remove the user");
        check(&store, "web", "ana", 0, 0, None);
        check(&store, "api", "ana", 0, 0, None);
    }

    #[test]
    fn a_stored_rating_out_of_range_is_corrupt() {
        let (_dir, store) = store();
        store.put_rating(&rating("web", "ana", 9)).expect("put");
        assert!(matches!(
            store.rating_tally("web", "ana"),
            Err(StoreError::Corrupt {
                tree: "ratings",
                ..
            })
        ));
    }
}
