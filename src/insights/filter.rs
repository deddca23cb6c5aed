//! Deal filters by category name (`region=`, `owner=`, `sector=`, `contact_role=`).

use super::snapshot::{Deal, NameId, Snapshot};
use crate::store::scope::Scope;

/// One field's filter, resolved against the snapshot's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Want {
    /// No filter.
    #[default]
    Any,
    /// Only this name.
    Is(NameId),
    /// A name no deal has: nothing matches.
    Nothing,
}

impl Want {
    fn resolve(snapshot: &Snapshot, name: Option<&str>) -> Want {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            None => Want::Any,
            Some(n) => snapshot.names.find(n).map_or(Want::Nothing, Want::Is),
        }
    }

    fn accepts(self, value: Option<NameId>) -> bool {
        match self {
            Want::Any => true,
            Want::Is(id) => value == Some(id),
            Want::Nothing => false,
        }
    }
}

/// Names to filter on (absent: any).
#[derive(Debug, Clone, Default)]
pub struct FilterNames<'a> {
    /// Region.
    pub region: Option<&'a str>,
    /// Owner.
    pub owner: Option<&'a str>,
    /// Sector.
    pub sector: Option<&'a str>,
    /// Contact role.
    pub contact_role: Option<&'a str>,
}

/// A caller's [`Scope`] resolved against one snapshot.
#[derive(Debug, Clone, Default)]
enum InScope {
    /// Every deal.
    #[default]
    Any,
    /// Deals of these owners (names no deal has are left out).
    Owners(Vec<NameId>),
    /// Deals of this region.
    Region(Want),
}

/// A filter resolved against one snapshot.
#[derive(Debug, Clone, Default)]
pub struct DealFilter {
    region: Want,
    owner: Want,
    sector: Want,
    contact_role: Want,
    scope: InScope,
}

impl DealFilter {
    /// Resolves names; an unknown name matches no deal (an empty answer, not an error).
    pub fn new(snapshot: &Snapshot, names: &FilterNames<'_>) -> Self {
        DealFilter {
            region: Want::resolve(snapshot, names.region),
            owner: Want::resolve(snapshot, names.owner),
            sector: Want::resolve(snapshot, names.sector),
            contact_role: Want::resolve(snapshot, names.contact_role),
            scope: InScope::Any,
        }
    }

    /// The same filter, limited to the deals of `scope` (a rep's or a manager's).
    pub fn within(mut self, snapshot: &Snapshot, scope: &Scope) -> Self {
        self.scope = match scope {
            Scope::All => InScope::Any,
            Scope::Owners(names) => {
                InScope::Owners(names.iter().filter_map(|n| snapshot.names.find(n)).collect())
            }
            Scope::Region(name) => InScope::Region(Want::resolve(snapshot, Some(name))),
        };
        self
    }

    /// True when the deal passes every field's filter.
    pub fn matches(&self, d: &Deal) -> bool {
        self.region.accepts(d.region)
            && self.owner.accepts(d.owner)
            && self.sector.accepts(d.sector)
            && self.contact_role.accepts(d.contact_role)
            && match &self.scope {
                InScope::Any => true,
                InScope::Owners(ids) => d.owner.is_some_and(|o| ids.contains(&o)),
                InScope::Region(want) => want.accepts(d.region),
            }
    }
}
