//! The always-valid types: constructors, the stored form, and artifacts saved by earlier builds.

use super::tests::{fields, messages, pairs};
use super::*;

#[test]
fn constructors_cannot_build_an_invalid_definition() {
    let amount = FeatureDef::binned("amount", 5).unwrap();
    assert_eq!(
        (amount.kind(), amount.transform(), amount.bins()),
        (Kind::Numeric, Transform::Bins, 5)
    );
    let tier = FeatureDef::categorical("attr.tier", 3).unwrap();
    assert_eq!(
        (tier.kind(), tier.min_count(), tier.source()),
        (Kind::Categorical, 3, Source::Attribute("tier"))
    );
    let log = FeatureDef::numeric("cycle_days", Transform::Log).unwrap();
    assert_eq!((log.transform(), log.bins()), (Transform::Log, DEFAULT_BINS));

    assert_eq!(fields(FeatureDef::binned("amount", 1)), ["feature.bins"]);
    assert_eq!(
        fields(FeatureDef::numeric("sector", Transform::Linear)),
        ["feature.kind"]
    );
    assert_eq!(fields(FeatureDef::categorical("attr.", 5)), ["feature.name"]);
    assert_eq!(
        fields(FeatureDef::categorical("region", 0)),
        ["feature.min_count"]
    );
    assert_eq!(
        fields(Actionable::new(Direction::Increase, "  ")),
        ["actionable.label"]
    );
    assert_eq!(
        fields(
            Actionable::new(Direction::Increase, "more")
                .unwrap()
                .with_range(Some(3.0), Some(1.0))
        ),
        ["actionable.min"]
    );
    assert_eq!(
        fields(
            Actionable::new(Direction::Change, "x")
                .unwrap()
                .with_range(None, Some(f64::NAN))
        ),
        ["actionable.max"]
    );

    let more = Actionable::new(Direction::Increase, " Call more ")
        .unwrap()
        .with_range(Some(0.0), None)
        .unwrap();
    assert_eq!(
        (more.label(), more.min(), more.max()),
        ("Call more", Some(0.0), None)
    );
    let lever = FeatureDef::binned("interaction_count", 4)
        .unwrap()
        .with_actionable(more.clone())
        .unwrap();
    assert_eq!(lever.actionable(), Some(&more));
    assert_eq!(
        fields(
            FeatureDef::categorical("sector", 5)
                .unwrap()
                .with_actionable(more)
        ),
        ["feature.actionable.direction", "feature.actionable"]
    );
    let change = Actionable::new(Direction::Change, "Meet the boss")
        .unwrap()
        .with_target("ceo")
        .unwrap();
    assert_eq!(change.target(), Some("ceo"));
    assert_eq!(
        fields(
            FeatureDef::numeric("amount", Transform::Linear)
                .unwrap()
                .with_actionable(change)
        ),
        ["feature.actionable.direction", "feature.actionable.target"]
    );
}

#[test]
fn a_spec_needs_features_with_distinct_names() {
    let amount = FeatureDef::binned("amount", 4).unwrap();
    let sector = FeatureDef::categorical("sector", 5).unwrap();
    let spec = FeatureSpec::new(vec![amount.clone(), sector.clone()]).unwrap();
    assert_eq!(spec.features(), [amount.clone(), sector]);
    assert_eq!(fields(FeatureSpec::new(Vec::new())), ["feature"]);
    assert_eq!(
        messages(FeatureSpec::new(vec![amount.clone(), amount])),
        pairs(&[("feature[1].name", "duplicate feature `amount`")])
    );
}

#[test]
fn the_stored_form_keeps_only_the_options_of_the_kind() {
    let spec = FeatureSpec::from_toml(
        r#"
[[feature]]
name = "amount"
[[feature]]
name = "cycle_days"
transform = "log"
[[feature]]
name = "contact_role"
actionable = { direction = "change", target = " decision_maker ", label = "Engage" }
"#,
    )
    .unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        json,
        r#"{"feature":[{"name":"amount","kind":"numeric","transform":"bins","bins":8},{"name":"cycle_days","kind":"numeric","transform":"log"},{"name":"contact_role","kind":"categorical","min_count":20,"actionable":{"direction":"change","target":"decision_maker","label":"Engage"}}]}"#
    );
    // Each stored definition reads back as the same valid definition.
    let stored: Vec<FeatureDef> =
        serde_json::from_value(serde_json::from_str::<serde_json::Value>(&json).unwrap()["feature"].clone())
            .unwrap();
    assert_eq!(stored, spec.features());
}

#[test]
fn a_stored_definition_that_breaks_the_rules_is_refused() {
    for bad in [
        r#"{"name":"amount","kind":"numeric","transform":"bins","bins":1}"#,
        r#"{"name":"amount","kind":"categorical","min_count":20}"#,
        r#"{"name":"colour","kind":"numeric","transform":"linear"}"#,
        r#"{"name":"sector","kind":"categorical","min_count":20,"actionable":{"direction":"increase","label":"x"}}"#,
        r#"{"name":"amount","kind":"numeric","transform":"linear","actionable":{"direction":"increase","label":" "}}"#,
    ] {
        let err = serde_json::from_str::<FeatureDef>(bad).unwrap_err().to_string();
        assert!(err.starts_with("invalid feature spec: feature."), "{bad}: {err}");
    }
}

#[test]
fn the_fitted_features_of_an_artifact_saved_by_an_earlier_build_read_back_unchanged() {
    let artifact: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/data/model-artifact-v1.json")).unwrap();
    let fitted: crate::features::FittedFeatures =
        serde_json::from_value(artifact["features"].clone()).unwrap();
    let spec = fitted.spec().unwrap();
    // The same spec as the file it was trained with, and the same stored form.
    let written = FeatureSpec::from_toml(include_str!(
        "../../../tests/data/model-artifact-v1.features.toml"
    ))
    .unwrap();
    assert_eq!(spec, written);
    let stored: Vec<&serde_json::Value> = artifact["features"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["def"])
        .collect();
    assert_eq!(
        serde_json::to_value(&spec).unwrap()["feature"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        stored
    );
    assert_eq!(serde_json::to_value(&fitted).unwrap(), artifact["features"]);
}
