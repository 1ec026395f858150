//! How a listing of deployments is ordered: the [`Sort`] a caller names,
//! on the command line and on the wire. The store applies it.

use std::fmt;
use std::str::FromStr;

/// How a listing orders deployments. The default direction is descending;
/// the store's `ListQuery::ascending` flips it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// By creation time (deployment ids are time-ordered).
    #[default]
    Created,
    /// By status in lifecycle order ([`crate::state::DEPLOYMENT_STATUSES`]), newest first
    /// within one status.
    Status,
    /// By app, then environment, newest first within one app+environment.
    App,
}

impl Sort {
    /// Every sort, as accepted on the command line and on the wire.
    pub const ALL: [Sort; 3] = [Sort::Created, Sort::Status, Sort::App];

    /// The lowercase name used on the command line and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Created => "created",
            Sort::Status => "status",
            Sort::App => "app",
        }
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sort {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Sort::ALL
            .into_iter()
            .find(|sort| sort.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Sort::ALL.iter().map(|sort| sort.as_str()).collect();
                format!(
                    "`{text}` is not a sort order; use one of: {}",
                    names.join(", ")
                )
            })
    }
}
