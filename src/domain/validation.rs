//! Field-level validation errors, collected rather than stopping at the first one.
//!
//! Every message is written in each supported language: the common ones are [`FieldMessage`]s,
//! one-off ones are built with [`crate::tr!`] where they are raised. An error keeps its message
//! in every language next to the English text, so an answer can be re-worded in the request's
//! language. Only text from a lower layer (a JSON or CSV parser's own words) is kept as written.

use serde::Serialize;
use serde_json::Value;

use crate::i18n::format::{self, NNBSP};
use crate::i18n::{Lang, Localized};

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Field name as the client spelled it (JSON/CSV name), e.g. `amount` or `attributes.tier`.
    pub field: String,
    /// Human-readable explanation.
    pub message: String,
    /// The message in every language, when it has a translation (never serialized: `message`
    /// is the text).
    #[serde(skip)]
    localized: Option<Box<Localized>>,
}

impl FieldError {
    /// Builds an error for `field` with a free-text message, answered as written in every
    /// language (text from a lower layer, such as a CSV parser's).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: printable(field.into()),
            message: message.into(),
            localized: None,
        }
    }

    /// Builds an error for `field` with a known message (English text, translatable).
    pub fn known(field: impl Into<String>, message: FieldMessage) -> Self {
        Self::localized(field, Localized::from_fn(|lang| message.text(lang)))
    }

    /// Builds an error for `field` with a message written in every language.
    pub fn localized(field: impl Into<String>, message: Localized) -> Self {
        Self {
            field: printable(field.into()),
            message: message.get(Lang::En).to_owned(),
            localized: Some(Box::new(message)),
        }
    }

    /// The message in `lang` (free-text messages as written).
    pub fn message_in(&self, lang: Lang) -> &str {
        match &self.localized {
            Some(localized) => localized.get(lang),
            None => &self.message,
        }
    }

    /// This error with its message in `lang`.
    pub fn in_lang(&self, lang: Lang) -> FieldError {
        FieldError {
            message: self.message_in(lang).to_owned(),
            ..self.clone()
        }
    }
}

/// `field` with its control characters escaped (`\u{0}`): a field name is the client's key as
/// sent, and an error naming it is answered, logged and recorded (webhook rejections), where a
/// NUL would be refused by PostgreSQL and a newline would forge log lines.
fn printable(field: String) -> String {
    if !field.chars().any(char::is_control) {
        return field;
    }
    field
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The kind of a JSON value, named in messages ("got a number").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true`/`false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonKind {
    /// The kind of `value`.
    pub fn of(value: &Value) -> JsonKind {
        match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Boolean,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }

    /// The kind with its article: "a number", "un nombre".
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (JsonKind::Null, _) => "null",
            (JsonKind::Boolean, Lang::En) => "a boolean",
            (JsonKind::Boolean, Lang::Fr) => "un booléen",
            (JsonKind::Number, Lang::En) => "a number",
            (JsonKind::Number, Lang::Fr) => "un nombre",
            (JsonKind::String, Lang::En) => "a string",
            (JsonKind::String, Lang::Fr) => "une chaîne",
            (JsonKind::Array, Lang::En) => "an array",
            (JsonKind::Array, Lang::Fr) => "un tableau",
            (JsonKind::Object, Lang::En) => "an object",
            (JsonKind::Object, Lang::Fr) => "un objet",
        }
    }
}

/// The common field messages, with their parameters. Values quoted from the input and field
/// names are never translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldMessage {
    /// A field the resource does not have.
    UnknownField,
    /// A required field is absent.
    Required,
    /// `status` is absent.
    StatusRequired,
    /// The body's `external_id` differs from the URL's.
    IdMismatch {
        /// Identifier in the body.
        body: String,
        /// Identifier in the URL.
        path: String,
    },
    /// An empty identifier.
    Empty,
    /// A text over its length limit.
    TooLong {
        /// Most characters accepted.
        max: usize,
    },
    /// An identifier with control characters.
    ControlCharacters,
    /// A text over its length limit or with control characters.
    TooLongOrControl {
        /// Most characters accepted.
        max: usize,
    },
    /// Not a string (`got` absent when the kind is not worth naming).
    ExpectedString {
        /// What was sent.
        got: Option<JsonKind>,
    },
    /// Not a number.
    ExpectedNumber {
        /// What was sent.
        got: JsonKind,
    },
    /// NaN or an infinity.
    ExpectedFiniteNumber,
    /// A count with decimals.
    ExpectedWholeNumber,
    /// A negative amount or duration.
    Negative,
    /// A timestamp field that is not a string.
    ExpectedTimestamp {
        /// What was sent.
        got: JsonKind,
    },
    /// A string that is not a timestamp.
    BadTimestamp {
        /// The text sent.
        text: String,
        /// The import's custom date format, if any.
        format: Option<String>,
    },
    /// Not an object.
    ExpectedObject {
        /// What was sent.
        got: JsonKind,
    },
    /// An attribute that is neither a string nor a number.
    ExpectedStringOrNumber {
        /// What was sent.
        got: JsonKind,
    },
    /// Too many attributes.
    TooManyAttributes {
        /// Most attributes accepted.
        max: usize,
    },
    /// An attribute name that is empty, too long or has control characters.
    BadAttributeName,
    /// A currency that is not three letters.
    BadCurrency {
        /// The text sent.
        code: String,
    },
    /// Three letters that are not an active ISO 4217 currency code.
    UnknownCurrency {
        /// The code sent, upper-cased.
        code: String,
    },
    /// A number above the field's bound.
    TooLarge {
        /// Largest value accepted.
        max: u64,
    },
    /// A number whose magnitude is above the field's bound (negative numbers allowed).
    OutOfRange {
        /// Largest magnitude accepted.
        max: u64,
    },
    /// A date outside the years dealscore accepts.
    YearOutOfRange {
        /// First year accepted.
        min: i32,
        /// Last year accepted.
        max: i32,
    },
    /// A status other than open, won, lost.
    BadStatus {
        /// The text sent.
        status: String,
    },
    /// `closed_at` on an open deal.
    ClosedWhileOpen,
    /// No `closed_at` on a closed deal.
    ClosedRequired {
        /// `won` or `lost`.
        status: &'static str,
    },
    /// `closed_at` before `created_at`.
    ClosedBeforeCreated,
    /// An activity kind that does not exist.
    BadActivityKind {
        /// The text sent.
        kind: String,
    },
    /// An activity direction that does not exist.
    BadDirection {
        /// The text sent.
        direction: String,
    },
    /// A scoring batch item that is not an object.
    ExpectedOpportunity,
    /// A scoring batch whose `opportunities` is not a list.
    ExpectedOpportunityList,
    /// A scoring batch over the limit.
    TooManyOpportunities {
        /// Most opportunities accepted.
        max: usize,
        /// Opportunities sent.
        got: usize,
    },
}

impl FieldMessage {
    /// The message in `lang`.
    pub fn text(&self, lang: Lang) -> String {
        use FieldMessage as M;
        // French numbers in messages are grouped (`10 000`); English ones are as they always were.
        let n = |x: usize| match lang {
            Lang::En => x.to_string(),
            Lang::Fr => format::number(x as f64, 0, lang),
        };
        let big = |x: u64| match lang {
            Lang::En => x.to_string(),
            Lang::Fr => format::number(x as f64, 0, lang),
        };
        match lang {
            Lang::En => match self {
                M::UnknownField => "unknown field".into(),
                M::Required => "is required".into(),
                M::StatusRequired => "is required (open, won or lost)".into(),
                M::IdMismatch { body, path } => format!("`{body}` does not match the URL's `{path}`"),
                M::Empty => "must not be empty".into(),
                M::TooLong { max } => format!("must be at most {} characters", n(*max)),
                M::ControlCharacters => "must not contain control characters".into(),
                M::TooLongOrControl { max } => {
                    format!(
                        "must be at most {} characters without control characters",
                        n(*max)
                    )
                }
                M::ExpectedString { got: None } => "expected a string".into(),
                M::ExpectedString { got: Some(got) } => format!("expected a string, got {}", got.name(lang)),
                M::ExpectedNumber { got } => format!("expected a number, got {}", got.name(lang)),
                M::ExpectedFiniteNumber => "expected a finite number".into(),
                M::ExpectedWholeNumber => "expected a whole number".into(),
                M::Negative => "must be zero or more".into(),
                M::ExpectedTimestamp { got } => format!(
                    "expected an RFC 3339 timestamp or YYYY-MM-DD date, got {}",
                    got.name(lang)
                ),
                M::BadTimestamp {
                    text,
                    format: Some(f),
                } => {
                    format!("`{text}` is not a timestamp (expected `{f}`, RFC 3339 or YYYY-MM-DD)")
                }
                M::BadTimestamp { text, format: None } => {
                    format!("`{text}` is not a timestamp (expected RFC 3339 or YYYY-MM-DD)")
                }
                M::ExpectedObject { got } => format!("expected an object, got {}", got.name(lang)),
                M::ExpectedStringOrNumber { got } => {
                    format!("expected a string or a number, got {}", got.name(lang))
                }
                M::TooManyAttributes { max } => format!("at most {} attributes are accepted", n(*max)),
                M::BadAttributeName => {
                    "attribute names must be 1–100 characters without control characters".into()
                }
                M::BadCurrency { code } => format!("`{code}` is not an ISO 4217 code (three letters)"),
                M::UnknownCurrency { code } => format!("`{code}` is not an active ISO 4217 currency code"),
                M::TooLarge { max } => format!("must be at most {}", big(*max)),
                M::OutOfRange { max } => format!("must be between -{} and {}", big(*max), big(*max)),
                M::YearOutOfRange { min, max } => format!("must be a date between the years {min} and {max}"),
                M::BadStatus { status } => format!("`{status}` is not one of open, won, lost"),
                M::ClosedWhileOpen => "must be absent while the deal is open".into(),
                M::ClosedRequired { status } => format!("is required when status is {status}"),
                M::ClosedBeforeCreated => "must not be before created_at".into(),
                M::BadActivityKind { kind } => {
                    format!("`{kind}` is not one of email, call, meeting, demo, other")
                }
                M::BadDirection { direction } => format!("`{direction}` is not one of inbound, outbound"),
                M::ExpectedOpportunity => "expected an opportunity object".into(),
                M::ExpectedOpportunityList => "expected a list of opportunities".into(),
                M::TooManyOpportunities { max, got } => {
                    format!("at most {} opportunities per request, got {}", n(*max), n(*got))
                }
            },
            Lang::Fr => match self {
                M::UnknownField => "champ inconnu".into(),
                M::Required => "est obligatoire".into(),
                M::StatusRequired => "est obligatoire (open, won ou lost)".into(),
                M::IdMismatch { body, path } => {
                    format!("`{body}` ne correspond pas à l'identifiant `{path}` de l'URL")
                }
                M::Empty => "ne doit pas être vide".into(),
                M::TooLong { max } => format!("doit compter au plus {} caractères", n(*max)),
                M::ControlCharacters => "ne doit pas contenir de caractères de contrôle".into(),
                M::TooLongOrControl { max } => format!(
                    "doit compter au plus {} caractères, sans caractère de contrôle",
                    n(*max)
                ),
                M::ExpectedString { got: None } => "une chaîne est attendue".into(),
                M::ExpectedString { got: Some(got) } => {
                    format!("une chaîne est attendue, reçu{NNBSP}: {}", got.name(lang))
                }
                M::ExpectedNumber { got } => {
                    format!("un nombre est attendu, reçu{NNBSP}: {}", got.name(lang))
                }
                M::ExpectedFiniteNumber => "un nombre fini est attendu".into(),
                M::ExpectedWholeNumber => "un nombre entier est attendu".into(),
                M::Negative => "doit être positif ou nul".into(),
                M::ExpectedTimestamp { got } => format!(
                    "un horodatage RFC 3339 ou une date AAAA-MM-JJ est attendu, reçu{NNBSP}: {}",
                    got.name(lang)
                ),
                M::BadTimestamp {
                    text,
                    format: Some(f),
                } => {
                    format!(
                        "`{text}` n'est pas un horodatage (attendu{NNBSP}: `{f}`, RFC 3339 ou AAAA-MM-JJ)"
                    )
                }
                M::BadTimestamp { text, format: None } => {
                    format!("`{text}` n'est pas un horodatage (attendu{NNBSP}: RFC 3339 ou AAAA-MM-JJ)")
                }
                M::ExpectedObject { got } => format!("un objet est attendu, reçu{NNBSP}: {}", got.name(lang)),
                M::ExpectedStringOrNumber { got } => format!(
                    "une chaîne ou un nombre est attendu, reçu{NNBSP}: {}",
                    got.name(lang)
                ),
                M::TooManyAttributes { max } => format!("{} attributs au plus sont acceptés", n(*max)),
                M::BadAttributeName => "les noms d'attribut doivent compter de 1 à 100 caractères, \
                                        sans caractère de contrôle"
                    .into(),
                M::BadCurrency { code } => format!("`{code}` n'est pas un code ISO 4217 (trois lettres)"),
                M::UnknownCurrency { code } => {
                    format!("`{code}` n'est pas un code de devise ISO 4217 en vigueur")
                }
                M::TooLarge { max } => format!("doit valoir au plus {}", big(*max)),
                M::OutOfRange { max } => {
                    format!("doit être compris entre -{} et {}", big(*max), big(*max))
                }
                M::YearOutOfRange { min, max } => {
                    format!("doit être une date comprise entre les années {min} et {max}")
                }
                M::BadStatus { status } => format!("`{status}` ne fait pas partie de open, won, lost"),
                M::ClosedWhileOpen => "doit être absent tant que l'affaire est ouverte".into(),
                M::ClosedRequired { status } => format!("est obligatoire quand le statut est {status}"),
                M::ClosedBeforeCreated => "ne doit pas être antérieur à created_at".into(),
                M::BadActivityKind { kind } => {
                    format!("`{kind}` ne fait pas partie de email, call, meeting, demo, other")
                }
                M::BadDirection { direction } => {
                    format!("`{direction}` ne fait pas partie de inbound, outbound")
                }
                M::ExpectedOpportunity => "un objet opportunité est attendu".into(),
                M::ExpectedOpportunityList => "une liste d'opportunités est attendue".into(),
                M::TooManyOpportunities { max, got } => format!(
                    "{} opportunités au plus par requête, reçu{NNBSP}: {}",
                    n(*max),
                    n(*got)
                ),
            },
        }
    }
}

/// Every problem found in one input; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(&self.0, Lang::En))]
pub struct ValidationErrors(pub Vec<FieldError>);

/// Every problem on one line, `field: message; …`, in `lang`.
fn summary(errors: &[FieldError], lang: Lang) -> String {
    let colon = match lang {
        Lang::En => ": ".to_owned(),
        Lang::Fr => format!("{NNBSP}: "),
    };
    errors
        .iter()
        .map(|e| format!("{}{colon}{}", e.field, e.message_in(lang)))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    /// Every problem on one line (`field: message; …`) in every language.
    pub fn localized_summary(&self) -> Localized {
        Localized::from_fn(|lang| summary(&self.0, lang))
    }

    /// Records a problem with a free-text message, answered as written in every language.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Records a problem with a known, translatable message.
    pub fn push_known(&mut self, field: impl Into<String>, message: FieldMessage) {
        self.0.push(FieldError::known(field, message));
    }

    /// Records a problem with a one-off message written in every language ([`crate::tr!`]).
    pub fn push_localized(&mut self, field: impl Into<String>, message: Localized) {
        self.0.push(FieldError::localized(field, message));
    }

    /// These errors with their messages in `lang`.
    pub fn in_lang(&self, lang: Lang) -> ValidationErrors {
        ValidationErrors(self.0.iter().map(|e| e.in_lang(lang)).collect())
    }

    /// How many problems were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, the collected errors otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_messages_answer_english_and_translate_to_french() {
        let mut errors = ValidationErrors::default();
        errors.push_known("amount", FieldMessage::Negative);
        errors.push_known("closed_at", FieldMessage::ClosedRequired { status: "won" });
        errors.push("mapping", "free text stays as written");
        assert_eq!(errors.0[0].message, "must be zero or more");
        let fr = errors.in_lang(Lang::Fr);
        assert_eq!(fr.0[0].message, "doit être positif ou nul");
        assert_eq!(fr.0[1].message, "est obligatoire quand le statut est won");
        assert_eq!(fr.0[1].field, "closed_at");
        assert_eq!(fr.0[2].message, "free text stays as written");
        let batch = FieldMessage::TooManyOpportunities {
            max: 10_000,
            got: 12_345,
        };
        assert_eq!(
            batch.text(Lang::En),
            "at most 10000 opportunities per request, got 12345"
        );
        assert_eq!(
            batch.text(Lang::Fr),
            "10\u{202F}000 opportunités au plus par requête, reçu\u{202F}: 12\u{202F}345"
        );
    }
}
