//! The words a spec is written with: core fields, kinds, transforms and directions.

use serde::{Deserialize, Serialize};

/// A deal field the model can read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreField {
    /// Days from creation to close (closed deals) or to now (open deals).
    CycleDays,
    /// Number of interactions.
    InteractionCount,
    /// Mean hours to answer the prospect.
    ResponseHours,
    /// Deal value.
    Amount,
    /// Account sector.
    Sector,
    /// Main contact's role.
    ContactRole,
    /// Sales region.
    Region,
    /// Owning rep.
    Owner,
    /// Interactions per week of the deal's life so far (per week of its whole cycle once
    /// closed): [`crate::domain::Deal::interactions_per_week`].
    InteractionsPerWeek,
    /// Days without activity up to the instant the deal is seen at:
    /// [`crate::domain::Deal::days_since_last_activity`].
    DaysSinceLastActivity,
}

impl CoreField {
    /// Every core field, in documentation order.
    pub const ALL: [CoreField; 10] = [
        CoreField::CycleDays,
        CoreField::InteractionCount,
        CoreField::ResponseHours,
        CoreField::Amount,
        CoreField::Sector,
        CoreField::ContactRole,
        CoreField::Region,
        CoreField::Owner,
        CoreField::InteractionsPerWeek,
        CoreField::DaysSinceLastActivity,
    ];

    /// The field's name in specs.
    pub fn name(self) -> &'static str {
        match self {
            CoreField::CycleDays => "cycle_days",
            CoreField::InteractionCount => "interaction_count",
            CoreField::ResponseHours => "response_hours",
            CoreField::Amount => "amount",
            CoreField::Sector => "sector",
            CoreField::ContactRole => "contact_role",
            CoreField::Region => "region",
            CoreField::Owner => "owner",
            CoreField::InteractionsPerWeek => "interactions_per_week",
            CoreField::DaysSinceLastActivity => "days_since_last_activity",
        }
    }

    /// The kind every core field naturally has.
    pub fn natural_kind(self) -> Kind {
        match self {
            CoreField::CycleDays
            | CoreField::InteractionCount
            | CoreField::ResponseHours
            | CoreField::Amount
            | CoreField::InteractionsPerWeek
            | CoreField::DaysSinceLastActivity => Kind::Numeric,
            CoreField::Sector | CoreField::ContactRole | CoreField::Region | CoreField::Owner => {
                Kind::Categorical
            }
        }
    }

    fn parse(name: &str) -> Option<CoreField> {
        CoreField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Where a feature's raw value comes from (borrowed from the spec name, so reading values on
/// the scoring path allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source<'a> {
    /// A core opportunity field.
    Core(CoreField),
    /// A custom attribute (`attr.<name>` in specs).
    Attribute(&'a str),
}

impl<'a> Source<'a> {
    /// The source a feature named `name` reads: [`Source::parse`], and a name that parses as
    /// neither (never one of a validated spec) read as the attribute of that name.
    pub fn of(name: &'a str) -> Source<'a> {
        Source::parse(name).unwrap_or(Source::Attribute(name))
    }

    /// Parses a spec name (`amount`, `attr.tier`).
    pub fn parse(name: &'a str) -> Option<Source<'a>> {
        match name.strip_prefix("attr.") {
            Some(attr) if !attr.is_empty() => Some(Source::Attribute(attr)),
            Some(_) => None,
            None => CoreField::parse(name).map(Source::Core),
        }
    }
}

/// Numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A number; encoded by [`Transform`].
    Numeric,
    /// A category; one-hot encoded.
    Categorical,
}

impl Kind {
    /// The kind's name in specs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
        }
    }
}

/// How a numeric feature becomes design-matrix columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// One column, standardised with the training mean and standard deviation.
    Linear,
    /// One column: sign(x)·ln(1+|x|), then standardised like `linear`.
    Log,
    /// Quantile bins learned on training data, one-hot encoded (the default).
    #[default]
    Bins,
}

impl Transform {
    /// The transform's name in specs.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Linear => "linear",
            Transform::Log => "log",
            Transform::Bins => "bins",
        }
    }
}

/// Which way a rep can move an actionable feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Numeric: more is the intervention (e.g. more interactions).
    Increase,
    /// Numeric: less is the intervention (e.g. faster answers).
    Decrease,
    /// Categorical: switching to another level (optionally a given `target`).
    Change,
}

impl Direction {
    /// The direction's name in specs.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::Change => "change",
        }
    }
}
