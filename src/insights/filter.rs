//! Deal filters by category name (`region=`, `owner=`, `sector=`, `contact_role=`).

use super::snapshot::{Deal, NameId, Snapshot};

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

/// A filter resolved against one snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct DealFilter {
    region: Want,
    owner: Want,
    sector: Want,
    contact_role: Want,
}

impl DealFilter {
    /// Resolves names; an unknown name matches no deal (an empty answer, not an error).
    pub fn new(snapshot: &Snapshot, names: &FilterNames<'_>) -> Self {
        DealFilter {
            region: Want::resolve(snapshot, names.region),
            owner: Want::resolve(snapshot, names.owner),
            sector: Want::resolve(snapshot, names.sector),
            contact_role: Want::resolve(snapshot, names.contact_role),
        }
    }

    /// True when the deal passes every field's filter.
    pub fn matches(&self, d: &Deal) -> bool {
        self.region.accepts(d.region)
            && self.owner.accepts(d.owner)
            && self.sector.accepts(d.sector)
            && self.contact_role.accepts(d.contact_role)
    }
}
