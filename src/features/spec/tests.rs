//! Parsing and validation of specs: every problem listed with its path and message.

use super::*;

pub(super) fn fields(result: Result<impl std::fmt::Debug, SpecErrors>) -> Vec<String> {
    result.unwrap_err().0.into_iter().map(|e| e.field).collect()
}

#[test]
fn default_spec_parses_and_marks_three_actionable_features() {
    let spec = FeatureSpec::from_toml(DEFAULT_SPEC_TOML).unwrap();
    let names: Vec<_> = spec.features().iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        [
            "cycle_days",
            "interaction_count",
            "response_hours",
            "amount",
            "sector",
            "contact_role",
            "region"
        ]
    );
    let actionable: Vec<_> = spec
        .features()
        .iter()
        .filter(|f| f.actionable().is_some())
        .map(|f| f.name())
        .collect();
    assert_eq!(
        actionable,
        ["interaction_count", "response_hours", "contact_role"]
    );
    assert_eq!(FeatureSpec::default_spec(), spec);
}

#[test]
fn a_snapshot_job_adds_the_as_of_measures_to_the_default_spec_only() {
    let extra = FeatureSpec::from_toml(SNAPSHOT_SPEC_TOML).unwrap();
    let extra_names: Vec<_> = extra.features().iter().map(|f| f.name()).collect();
    assert_eq!(extra_names, ["interactions_per_week", "days_since_last_activity"]);
    let levers: Vec<_> = extra
        .features()
        .iter()
        .filter(|f| f.actionable().is_some())
        .map(|f| f.name())
        .collect();
    assert_eq!(levers, ["days_since_last_activity"]);

    let snapshots = FeatureSpec::default_spec().for_snapshots();
    let names: Vec<_> = snapshots.features().iter().map(|f| f.name()).collect();
    assert_eq!(names.len(), FeatureSpec::default_spec().features().len() + 2);
    assert_eq!(&names[names.len() - 2..], extra_names.as_slice());
    let own = FeatureSpec::from_toml("[[feature]]\nname = \"amount\"\n").unwrap();
    assert_eq!(own.clone().for_snapshots(), own);
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let text = r#"
[[feature]]
name = "colour"
kind = "numeric"
[[feature]]
name = "amount"
kind = "categorical"
[[feature]]
name = "attr.tier"
[[feature]]
name = "response_hours"
transform = "sqrt"
[[feature]]
name = "cycle_days"
bins = 1
[[feature]]
name = "sector"
actionable = { direction = "increase", label = "x" }
[[feature]]
name = "interaction_count"
actionable = { direction = "increase", min = 10.0, max = 2.0, label = "more" }
[[feature]]
name = "region"
colour = "blue"
[[feature]]
name = "owner"
[[feature]]
name = "owner"
"#;
    assert_eq!(
        fields(FeatureSpec::from_toml(text)),
        [
            "feature[0].name",
            "feature[1].kind",
            "feature[2].kind",
            "feature[3].transform",
            "feature[4].bins",
            "feature[5].actionable.direction",
            "feature[6].actionable.min",
            "feature[7].colour",
            "feature[9].name",
        ]
    );
}

#[test]
fn empty_spec_is_rejected() {
    assert_eq!(fields(FeatureSpec::from_toml("")), ["feature"]);
    assert_eq!(fields(FeatureSpec::from_json(r#"{"feature": []}"#)), ["feature"]);
}

#[test]
fn json_and_toml_give_the_same_spec() {
    let json = r#"{"features": [
        {"name": "response_hours", "kind": "numeric", "transform": "bins", "bins": 8,
         "actionable": {"direction": "decrease", "min": 1.0, "max": 168.0, "label": "Answer faster"}},
        {"name": "attr.tier", "kind": "categorical", "min_count": 5}
    ]}"#;
    let toml_text = r#"
[[feature]]
name = "response_hours"
kind = "numeric"
transform = "bins"
bins = 8
actionable = { direction = "decrease", min = 1.0, max = 168.0, label = "Answer faster" }
[[feature]]
name = "attr.tier"
kind = "categorical"
min_count = 5
"#;
    let a = FeatureSpec::from_json(json).unwrap();
    let b = FeatureSpec::from_toml(toml_text).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.features()[1].source(), Source::Attribute("tier"));
    // Round trip through the TOML writer.
    assert_eq!(FeatureSpec::from_toml(&a.to_toml().unwrap()).unwrap(), a);
}

#[test]
fn categorical_options_on_numeric_features_and_vice_versa_are_rejected() {
    let text = r#"
[[feature]]
name = "amount"
min_count = 3
actionable = { direction = "change", target = "x", label = "y" }
[[feature]]
name = "sector"
bins = 4
transform = "log"
actionable = { direction = "change", min = 1.0, label = "y" }
"#;
    assert_eq!(
        fields(FeatureSpec::from_toml(text)),
        [
            "feature[0].min_count",
            "feature[0].actionable.direction",
            "feature[0].actionable.target",
            "feature[1].transform",
            "feature[1].bins",
            "feature[1].actionable",
        ]
    );
}

pub(super) fn messages(result: Result<impl std::fmt::Debug, SpecErrors>) -> Vec<(String, String)> {
    result
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

pub(super) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
        .collect()
}

#[test]
fn values_of_the_wrong_type_are_reported_not_fatal() {
    let json = r#"{"colour": 1, "feature": [
        3,
        {"name": null, "kind": 1, "transform": [], "bins": 2.5, "size": 1},
        {"name": "amount", "bins": -1},
        {"name": "sector", "min_count": "many", "actionable": "yes"},
        {"name": "region", "actionable": {"direction": 7, "min": "low", "target": "", "label": 3, "why": 1}}
    ]}"#;
    assert_eq!(
        messages(FeatureSpec::from_json(json)),
        pairs(&[
            ("colour", "unknown key (expected `feature`)"),
            ("feature[0]", "must be a table"),
            ("feature[1].size", "unknown key"),
            ("feature[1].name", "must be a string"),
            ("feature[1].kind", "must be a string"),
            ("feature[1].transform", "must be a string"),
            ("feature[1].bins", "must be a whole number ≥ 0"),
            ("feature[2].bins", "must be a whole number ≥ 0"),
            ("feature[3].min_count", "must be a whole number ≥ 0"),
            ("feature[3].actionable", "must be a table"),
            ("feature[4].actionable.why", "unknown key"),
            (
                "feature[4].actionable.direction",
                "is required (increase, decrease or change)"
            ),
            ("feature[4].actionable.min", "must be a finite number"),
            ("feature[4].actionable.target", "must be a non-empty string"),
            ("feature[4].actionable.label", "must be a non-empty string"),
        ])
    );
}

#[test]
fn the_root_and_the_list_must_have_the_right_shape() {
    assert_eq!(
        messages(FeatureSpec::from_json("[1]")),
        pairs(&[("spec", "must be an object/table")])
    );
    assert_eq!(
        messages(FeatureSpec::from_json(r#"{"feature": {"name": "amount"}}"#)),
        pairs(&[
            ("feature", "must be an array of tables"),
            ("feature", "the spec has no features"),
        ])
    );
    assert_eq!(
        messages(FeatureSpec::from_json(r#"{"feature": [], "features": null}"#)),
        pairs(&[
            ("feature", "give either `feature` or `features`, not both"),
            ("feature", "the spec has no features"),
        ])
    );
    assert_eq!(fields(FeatureSpec::from_json("{")), ["spec"]);
    assert_eq!(fields(FeatureSpec::from_toml("feature = [")), ["spec"]);
}

#[test]
fn messages_name_the_offending_values() {
    let text = r#"
[[feature]]
name = "amount"
kind = "categorical"
[[feature]]
name = "attr.tier"
kind = "ordinal"
[[feature]]
name = "cycle_days"
transform = "linear"
bins = 200
[[feature]]
name = "response_hours"
actionable = { direction = "sideways", min = 5, max = 1 }
"#;
    assert_eq!(
        messages(FeatureSpec::from_toml(text)),
        pairs(&[
            ("feature[0].kind", "`amount` is numeric, not categorical"),
            ("feature[1].kind", "`ordinal` is not one of numeric, categorical"),
            ("feature[2].bins", "bins only apply to transform = \"bins\""),
            ("feature[2].bins", "must be between 2 and 100"),
            (
                "feature[3].actionable.direction",
                "`sideways` is not one of increase, decrease, change"
            ),
            ("feature[3].actionable.min", "min (5) is greater than max (1)"),
            ("feature[3].actionable.label", "is required"),
        ])
    );
}
