//! Score answers written as JSON with a vectorised string escape.
//!
//! A score is 2–4 KB of JSON, most of it sentences. serde_json escapes a string one byte at a
//! time, and callgrind put that at two thirds of writing a score answer, about a sixth of a whole
//! `POST /v1/score` request (docs/performance.md, "Single score over HTTP"). sonic-rs serializes the
//! same `Serialize` impls into the same bytes with a SIMD escape; the tests below check the bytes
//! against serde_json's on real answers, including text a client sent (quotes, control
//! characters, non-ASCII). Only score answers go through here: every other answer stays on
//! serde_json.

use serde::Serialize;

/// Appends `value` as JSON to `out`, byte for byte what `serde_json::to_writer` writes.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), serde_json::Error> {
    sonic_rs::to_writer(out, value).map_err(<serde_json::Error as serde::ser::Error>::custom)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::scores::BatchItem;
    use crate::domain::{AttributeValue, FieldError, Status};
    use crate::i18n::Lang;
    use crate::scoring::{score, RankBy, ScoringConfig};
    use crate::training::fixtures::trained_on_generated;

    fn both(value: &(impl Serialize + ?Sized)) -> (String, String) {
        let mut ours = Vec::new();
        write(&mut ours, value).unwrap();
        let reference = serde_json::to_vec(value).unwrap();
        (
            String::from_utf8(ours).unwrap(),
            String::from_utf8(reference).unwrap(),
        )
    }

    #[test]
    fn score_answers_are_the_bytes_serde_json_writes() {
        let (artifact, deals, now) = trained_on_generated(4_000, 5);
        let config = ScoringConfig::default();
        // Text a client controls ends up in answers: sector and role levels, attribute values.
        let awkward = [
            "quo\"te",
            "back\\slash",
            "tab\tnew\nline\u{1}",
            "é 漢字 😀",
            "</script>",
            "\u{7f}\u{2028}",
        ];
        let mut compared = 0;
        for (i, opp) in deals
            .iter()
            .filter(|o| o.status == Status::Open)
            .take(300)
            .enumerate()
        {
            let mut opp = opp.clone();
            let text = awkward[i % awkward.len()];
            if i % 2 == 0 {
                opp.sector = Some(text.to_owned());
            }
            let mut attributes = BTreeMap::new();
            attributes.insert(text.to_owned(), AttributeValue::Text(text.to_owned()));
            opp.attributes = attributes;
            for lang in Lang::ALL {
                let result = score(&artifact, &config, &opp, now, Some(40), RankBy::Probability, lang);
                let (ours, reference) = both(&result);
                assert_eq!(ours, reference);
                let item = BatchItem {
                    index: i,
                    result: Some(result),
                    errors: vec![FieldError::new(format!("opportunities[{i}].{text}"), text)],
                };
                let (ours, reference) = both(&item);
                assert_eq!(ours, reference);
                compared += 1;
            }
        }
        assert_eq!(compared, 600);
        // Numbers at the edges of what an answer can hold.
        for x in [
            0.0,
            -0.0,
            1e-300,
            5e-324,
            0.1 + 0.2,
            1e21,
            123_456_789.123,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
        ] {
            let (ours, reference) = both(&[Some(x), None]);
            assert_eq!(ours, reference, "{x:e}");
        }
        let (ours, reference) = both("a model version");
        assert_eq!(ours, reference);
    }
}
