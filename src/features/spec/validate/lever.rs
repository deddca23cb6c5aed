//! Validation of a lever (`actionable = { ... }`): its own rules, and those that depend on the
//! feature's kind when it is known.

use super::unknown_keys;
use crate::domain::FieldError;
use crate::features::spec::def::Actionable;
use crate::features::spec::raw::{Field, RawActionable};
use crate::features::spec::vocab::{Direction, Kind};
use crate::tr;

/// A non-empty string, trimmed, or `None` with an error when the key holds anything else.
fn non_empty(raw: &Field<String>, path: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match raw {
        Field::Absent => None,
        Field::Given(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Field::Given(_) | Field::Wrong => {
            errors.push(FieldError::localized(
                path,
                tr!("must be a non-empty string", "doit être une chaîne non vide"),
            ));
            None
        }
    }
}

/// A finite number, or `None` with an error when the key holds anything else.
fn finite(raw: &Field<f64>, path: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    match raw {
        Field::Absent => None,
        Field::Given(x) if x.is_finite() => Some(*x),
        Field::Given(_) | Field::Wrong => {
            errors.push(FieldError::localized(
                path,
                tr!("must be a finite number", "doit être un nombre fini"),
            ));
            None
        }
    }
}

/// Validates a lever; `kind` is the feature's kind when known (checks that depend on it are
/// skipped otherwise).
pub(super) fn actionable(
    raw: &RawActionable,
    kind: Option<Kind>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Actionable> {
    unknown_keys(&raw.unknown, path, errors);
    // A direction of the wrong type reads as a missing one (the message lists the choices).
    let direction = match &raw.direction {
        Field::Given(s) => match s.as_str() {
            "increase" => Some(Direction::Increase),
            "decrease" => Some(Direction::Decrease),
            "change" => Some(Direction::Change),
            other => {
                errors.push(FieldError::localized(
                    format!("{path}.direction"),
                    tr!(
                        "`{other}` is not one of increase, decrease, change",
                        "`{other}` n'est pas increase, decrease ni change"
                    ),
                ));
                None
            }
        },
        Field::Absent | Field::Wrong => {
            errors.push(FieldError::localized(
                format!("{path}.direction"),
                tr!(
                    "is required (increase, decrease or change)",
                    "est obligatoire (increase, decrease ou change)"
                ),
            ));
            None
        }
    };
    match (direction, kind) {
        (Some(Direction::Change), Some(Kind::Numeric)) => errors.push(FieldError::localized(
            format!("{path}.direction"),
            tr!(
                "numeric features take increase or decrease, not change",
                "les variables numériques prennent increase ou decrease, pas change"
            ),
        )),
        (Some(Direction::Increase | Direction::Decrease), Some(Kind::Categorical)) => {
            errors.push(FieldError::localized(
                format!("{path}.direction"),
                tr!(
                    "categorical features take change, not increase/decrease",
                    "les variables catégorielles prennent change, pas increase/decrease"
                ),
            ))
        }
        _ => {}
    }
    let min = finite(&raw.min, &format!("{path}.min"), errors);
    let max = finite(&raw.max, &format!("{path}.max"), errors);
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            errors.push(FieldError::localized(
                format!("{path}.min"),
                tr!(
                    "min ({lo}) is greater than max ({hi})",
                    "min ({lo}) est supérieur à max ({hi})"
                ),
            ));
        }
    }
    if kind == Some(Kind::Categorical) && (min.is_some() || max.is_some()) {
        errors.push(FieldError::localized(
            path,
            tr!(
                "min/max only apply to numeric features",
                "min/max ne s'appliquent qu'aux variables numériques"
            ),
        ));
    }
    let target = non_empty(&raw.target, &format!("{path}.target"), errors);
    if target.is_some() && kind == Some(Kind::Numeric) {
        errors.push(FieldError::localized(
            format!("{path}.target"),
            tr!(
                "target only applies to categorical features",
                "target ne s'applique qu'aux variables catégorielles"
            ),
        ));
    }
    let label = non_empty(&raw.label, &format!("{path}.label"), errors);
    if !raw.label.is_present() {
        errors.push(FieldError::localized(
            format!("{path}.label"),
            tr!("is required", "est obligatoire"),
        ));
    }
    Some(Actionable::from_checked(direction?, min, max, target, label?))
}
