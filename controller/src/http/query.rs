//! The query string of a request, taken parameter by parameter so that a
//! refusal names the parameter; a parameter may repeat only where a route
//! asks for all of its values (`status`), and unknown ones are refused.
//! A parameter given empty (`?app=&sort=`, as an HTML form sends an empty
//! field) is the same as one left out, except a flag, where it means true
//! (`?follow`); the OpenAPI document says so with `allowEmptyValue`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_shared::text::clip;

use super::error::ApiError;
use crate::ops::Error;

/// Most parameters one query may have.
const MAX_PARAMS: usize = 64;

/// The parameters of a query string, in order.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(query: &str) -> Result<Params, Error> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .take(MAX_PARAMS + 1)
            .collect();
        if pairs.len() > MAX_PARAMS {
            return Err(Error::invalid(format!(
                "the query has more than {MAX_PARAMS} parameters"
            )));
        }
        Ok(Params { pairs })
    }

    /// Every value of `name` as given, empty ones too, in order.
    fn take(&mut self, name: &str) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(key, _)| key == name);
        self.pairs = kept;
        taken.into_iter().map(|(_, value)| value).collect()
    }

    /// Every value of `name` that is not empty, in order.
    pub fn all(&mut self, name: &str) -> Vec<String> {
        let mut values = self.take(name);
        values.retain(|value| !value.is_empty());
        values
    }

    /// The value of `name` as given (perhaps empty), at most once.
    fn given(&mut self, name: &str) -> Result<Option<String>, Error> {
        let mut values = self.take(name);
        match values.len() {
            0 | 1 => Ok(values.pop()),
            _ => Err(Error::invalid(format!(
                "parameter `{name}` is given more than once"
            ))),
        }
    }

    /// The value of `name`, which may be given at most once; empty is the
    /// same as left out.
    pub fn one(&mut self, name: &str) -> Result<Option<String>, Error> {
        Ok(self.given(name)?.filter(|value| !value.is_empty()))
    }

    /// `name` as a number from 0 to `max`.
    pub fn number(&mut self, name: &str, max: u64) -> Result<Option<u64>, Error> {
        let Some(text) = self.one(name)? else {
            return Ok(None);
        };
        match text.trim().parse::<u64>() {
            Ok(value) if value <= max => Ok(Some(value)),
            _ => Err(Error::invalid(format!(
                "parameter `{name}`: expected a whole number from 0 to {max}, got `{}`",
                clip(&text, 40)
            ))),
        }
    }

    /// `name` as `true` or `false` (also `1`, `0`, or empty for true).
    pub fn flag(&mut self, name: &str) -> Result<bool, Error> {
        match self.given(name)?.as_deref() {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1" | "") => Ok(true),
            Some(other) => Err(Error::invalid(format!(
                "parameter `{name}`: expected true or false, got `{}`",
                clip(other, 40)
            ))),
        }
    }

    /// Refuses parameters no one took.
    pub fn finish(self) -> Result<(), Error> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::invalid(format!(
                "unknown parameter `{}`; docs/http-api.md lists each route's parameters",
                clip(name, 60)
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Params, ApiError> {
        Ok(Params::parse(parts.uri.query().unwrap_or_default())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Code;

    #[test]
    fn parameters_are_taken_by_name_and_refusals_name_them() {
        let mut params =
            Params::parse("status=failed&app=web&status=canceled&limit=20&follow").expect("parsed");
        assert_eq!(params.all("status"), ["failed", "canceled"]);
        assert_eq!(params.one("app"), Ok(Some("web".into())));
        assert_eq!(params.number("limit", 1000), Ok(Some(20)));
        assert_eq!(params.flag("follow"), Ok(true));
        assert_eq!(params.one("search"), Ok(None));
        assert!(params.finish().is_ok());

        let refused = |query: &str, take: fn(&mut Params) -> Result<(), Error>, says: &str| {
            let mut params = Params::parse(query).expect("parsed");
            let err = take(&mut params).expect_err(query);
            assert_eq!(err.code, Code::RequestInvalid);
            assert!(err.message.contains(says), "{query}: {}", err.message);
        };
        let limit = |p: &mut Params| p.number("limit", 1000).map(|_| ());
        refused("limit=1001", limit, "parameter `limit`");
        refused("limit=99999999999999999999999", limit, "parameter `limit`");
        refused("limit=-1", limit, "parameter `limit`");
        refused(
            "app=a&app=b",
            |p| p.one("app").map(|_| ()),
            "more than once",
        );
        refused("follow=maybe", |p| p.flag("follow").map(|_| ()), "`follow`");
        refused(
            "colour=red",
            |p| std::mem::take(p).finish(),
            "unknown parameter `colour`",
        );
        // Found by the fuzzer (tests/tests/http_fuzz.rs): `sort=` meant the
        // default while `order=`, `since=` and `limit=` were refused, and an
        // empty `environment=` in the query contradicted the body's.
        let mut empty = Params::parse("order=&limit=&status=&app=&follow=").expect("parsed");
        assert_eq!(empty.one("order"), Ok(None));
        assert_eq!(empty.number("limit", 1000), Ok(None));
        assert_eq!(empty.all("status"), Vec::<String>::new());
        assert_eq!(empty.one("app"), Ok(None));
        assert_eq!(empty.flag("follow"), Ok(true), "`?follow=` is `?follow`");
        assert!(empty.finish().is_ok());
        refused("app=&app=", |p| p.one("app").map(|_| ()), "more than once");
        let many = vec!["a=1"; 65].join("&");
        assert!(Params::parse(&many).is_err());
        assert!(
            Params::parse("%ff%fe=%00").is_ok(),
            "bad bytes decode lossily"
        );
    }
}
