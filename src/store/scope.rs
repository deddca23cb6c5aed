//! Which deals a caller may see: every deal, the deals of some owners, or those of one region.
//!
//! A scope is applied where deals are read — as a `WHERE` condition in SQL, so that pages stay
//! full and cursors stay right, or by [`Scope::admits`] on lists already held in memory whole
//! (the priority list, the insights snapshot) before they are sorted and cut to a page.

/// The deals a key may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every deal (analyst and admin keys).
    #[default]
    All,
    /// Deals whose owner is one of these names (a rep: their own name; a manager: their team).
    Owners(Vec<String>),
    /// Deals of this region (a manager by region).
    Region(String),
}

impl Scope {
    /// The scope stored with a key: owners win over a region; neither is [`Scope::All`].
    pub fn of_key(owners: Option<Vec<String>>, region: Option<String>) -> Scope {
        match (owners, region) {
            (Some(owners), _) => Scope::Owners(owners),
            (None, Some(region)) => Scope::Region(region),
            (None, None) => Scope::All,
        }
    }

    /// True when the scope limits what is seen.
    pub fn is_limited(&self) -> bool {
        !matches!(self, Scope::All)
    }

    /// True when a deal with this owner and region is in the scope. A deal with no owner (or
    /// no region) is outside every limited scope of that kind.
    pub fn admits(&self, owner: Option<&str>, region: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Owners(names) => owner.is_some_and(|o| names.iter().any(|n| n == o)),
            Scope::Region(name) => region == Some(name.as_str()),
        }
    }

    /// The SQL condition on the `owner`/`region` columns with its bound values, numbered from
    /// `$first`; `None` for [`Scope::All`]. An empty owner list matches nothing.
    pub fn sql_condition(&self, first: usize) -> Option<(String, Vec<String>)> {
        match self {
            Scope::All => None,
            Scope::Owners(names) if names.is_empty() => Some(("1 = 0".into(), Vec::new())),
            Scope::Owners(names) => {
                let list: Vec<String> = (0..names.len()).map(|i| format!("${}", first + i)).collect();
                Some((format!("owner IN ({})", list.join(", ")), names.clone()))
            }
            Scope::Region(name) => Some((format!("region = ${first}"), vec![name.clone()])),
        }
    }

    /// A short human description (`owners a, b`, `region EMEA`, `all deals`).
    pub fn describe(&self) -> String {
        match self {
            Scope::All => "all deals".into(),
            Scope::Owners(names) => format!("owners {}", names.join(", ")),
            Scope::Region(name) => format!("region {name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_regions_admit_only_their_deals() {
        let rep = Scope::Owners(vec!["ana".into()]);
        assert!(rep.admits(Some("ana"), Some("EMEA")));
        assert!(!rep.admits(Some("bob"), Some("EMEA")));
        assert!(!rep.admits(None, Some("EMEA")));
        let region = Scope::Region("EMEA".into());
        assert!(region.admits(Some("bob"), Some("EMEA")));
        assert!(!region.admits(Some("bob"), Some("APAC")));
        assert!(Scope::All.admits(None, None));
    }

    #[test]
    fn conditions_number_their_placeholders_from_first() {
        let team = Scope::Owners(vec!["a".into(), "b".into()]);
        assert_eq!(
            team.sql_condition(3),
            Some(("owner IN ($3, $4)".into(), vec!["a".to_string(), "b".to_string()]))
        );
        assert_eq!(Scope::All.sql_condition(1), None);
        assert_eq!(
            Scope::Owners(Vec::new()).sql_condition(1),
            Some(("1 = 0".into(), Vec::new()))
        );
        assert_eq!(
            Scope::of_key(None, Some("EMEA".into())),
            Scope::Region("EMEA".into())
        );
    }
}
