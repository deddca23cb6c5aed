//! The body of `POST /v1/score`, read in one pass: one opportunity becomes a JSON object, a
//! batch's items stay unparsed JSON text.
//!
//! A 10,000-item batch is about 1.6 MB of JSON. Parsed into `serde_json::Value`s on the request
//! thread, it held every batch up by tens of milliseconds before the scoring threads could start;
//! kept as raw text (checked for syntax, not built into values), each item is parsed by the
//! scoring thread that handles it (BENCHMARKS.md, "`POST /v1/score` in batches of 10,000").

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Key of a batch: `{"opportunities": [...]}`.
const BATCH_KEY: &str = "opportunities";

/// What a `POST /v1/score` body holds.
#[derive(Debug)]
pub enum ScoreBody {
    /// One opportunity: its fields as an object, or `null` when the body is not a JSON object
    /// (an array, a string, a number…), which scoring refuses like any other non-object.
    One(Value),
    /// The JSON text of the `opportunities` member, whatever its type (checked by the handler).
    Batch(Box<RawValue>),
}

impl<'de> Deserialize<'de> for ScoreBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl BodyVisitor {
    fn not_an_object<E>(self) -> Result<ScoreBody, E> {
        Ok(ScoreBody::One(Value::Null))
    }
}

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = ScoreBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an opportunity or {\"opportunities\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScoreBody, A::Error> {
        let mut fields = Map::new();
        let mut batch = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == BATCH_KEY {
                // A repeated key keeps the last value, as `serde_json::Value` does.
                batch = Some(map.next_value::<Box<RawValue>>()?);
            } else if batch.is_some() {
                // A batch ignores the other members: skip them without building values.
                map.next_value::<IgnoredAny>()?;
            } else {
                let value = map.next_value::<Value>()?;
                fields.insert(key, value);
            }
        }
        Ok(match batch {
            Some(batch) => ScoreBody::Batch(batch),
            None => ScoreBody::One(Value::Object(fields)),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScoreBody, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object()
    }

    fn visit_bool<E>(self, _: bool) -> Result<ScoreBody, E> {
        self.not_an_object()
    }

    fn visit_i64<E>(self, _: i64) -> Result<ScoreBody, E> {
        self.not_an_object()
    }

    fn visit_u64<E>(self, _: u64) -> Result<ScoreBody, E> {
        self.not_an_object()
    }

    fn visit_f64<E>(self, _: f64) -> Result<ScoreBody, E> {
        self.not_an_object()
    }

    fn visit_str<E>(self, _: &str) -> Result<ScoreBody, E> {
        self.not_an_object()
    }

    fn visit_unit<E>(self) -> Result<ScoreBody, E> {
        self.not_an_object()
    }
}

/// The items of a batch's `opportunities` member, each still JSON text, or `None` when the
/// member is not an array.
pub fn batch_items(batch: &RawValue) -> Option<Vec<Box<RawValue>>> {
    serde_json::from_str(batch.get()).ok()
}

/// One batch item as a JSON value (it was checked for syntax when the body was read).
pub fn item_value(item: &RawValue) -> Value {
    serde_json::from_str(item.get()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> ScoreBody {
        serde_json::from_str(body).expect("valid JSON")
    }

    #[test]
    fn an_object_without_opportunities_is_one_opportunity() {
        let ScoreBody::One(fields) =
            read(r#"{"sector": "retail", "amount": 12.5, "attributes": {"a": [1]}}"#)
        else {
            panic!("not read as one opportunity");
        };
        assert_eq!(fields["sector"], "retail");
        assert_eq!(fields["amount"], 12.5);
        assert_eq!(fields["attributes"]["a"][0], 1);
    }

    #[test]
    fn a_batch_keeps_its_items_as_text_and_ignores_other_members() {
        let body =
            r#"{"sector": "x", "opportunities": [{"amount": 1}, "oops", {"amount": -1}], "z": {"k": 1}}"#;
        let ScoreBody::Batch(batch) = read(body) else {
            panic!("not read as a batch");
        };
        let items = batch_items(&batch).expect("an array");
        let texts: Vec<&str> = items.iter().map(|i| i.get()).collect();
        assert_eq!(texts, [r#"{"amount": 1}"#, r#""oops""#, r#"{"amount": -1}"#]);
        assert_eq!(item_value(&items[2])["amount"], -1);
        assert_eq!(item_value(&items[1]), "oops");
    }

    #[test]
    fn opportunities_that_are_not_an_array_are_told_apart() {
        for body in [
            r#"{"opportunities": null}"#,
            r#"{"opportunities": {"a": 1}}"#,
            r#"{"opportunities": 3}"#,
        ] {
            let ScoreBody::Batch(batch) = read(body) else {
                panic!("{body}: not read as a batch");
            };
            assert!(batch_items(&batch).is_none(), "{body}");
        }
    }

    #[test]
    fn bodies_that_are_not_objects_are_recognised() {
        for body in ["[1, {\"a\": 2}]", "\"text\"", "3", "-3", "2.5", "true", "null"] {
            assert!(matches!(read(body), ScoreBody::One(Value::Null)), "{body}");
        }
    }

    #[test]
    fn malformed_json_is_still_an_error() {
        for body in [
            r#"{"opportunities": [{"amount": 1},]}"#,
            r#"{"amount": }"#,
            "[1, 2",
        ] {
            assert!(serde_json::from_str::<ScoreBody>(body).is_err(), "{body}");
        }
    }
}
