//! The `Dealscore-Signature` scheme shared by incoming webhooks and outgoing write-backs:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, several `v1=` allowed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::i18n::format::{NBSP, NNBSP};
use crate::i18n::{Lang, Localized};
use crate::tr;

/// Name of the header carrying the signature.
pub const HEADER: &str = "Dealscore-Signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. The messages are safe to show to the sender; `Display` is the
/// English of [`SignatureError::localized`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header.
    #[error("{}", self.localized())]
    Missing,
    /// The header does not read as `t=…,v1=…`.
    #[error("{}", self.localized())]
    Malformed(HeaderDefect),
    /// The timestamp is too far in the past.
    #[error("{}", self.localized())]
    Stale(u64),
    /// The timestamp is too far in the future.
    #[error("{}", self.localized())]
    Future(u64),
    /// No `v1` matches any secret of the source.
    #[error("{}", self.localized())]
    Mismatch,
}

/// What is wrong with a header that does not read as `t=…,v1=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderDefect {
    /// Not `key=value` pairs separated by commas.
    NotPairs,
    /// `t` is not a whole number of seconds.
    TimestampNotSeconds,
    /// `t` appears twice.
    TimestampTwice,
    /// A `v1` value is not hexadecimal.
    SignatureNotHex,
    /// No `t=`.
    NoTimestamp,
    /// No `v1=`.
    NoSignature,
}

impl HeaderDefect {
    /// The defect in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        use HeaderDefect as D;
        match (self, lang) {
            (D::NotPairs, Lang::En) => "expected comma-separated key=value pairs",
            (D::NotPairs, Lang::Fr) => "des paires clé=valeur séparées par des virgules sont attendues",
            (D::TimestampNotSeconds, Lang::En) => "t must be unix seconds",
            (D::TimestampNotSeconds, Lang::Fr) => "t doit être un nombre de secondes Unix",
            (D::TimestampTwice, Lang::En) => "t given twice",
            (D::TimestampTwice, Lang::Fr) => "t est donné deux fois",
            (D::SignatureNotHex, Lang::En) => "v1 must be hex",
            (D::SignatureNotHex, Lang::Fr) => "v1 doit être en hexadécimal",
            (D::NoTimestamp, Lang::En) => "no t= timestamp",
            (D::NoTimestamp, Lang::Fr) => "aucun horodatage t=",
            (D::NoSignature, Lang::En) => "no v1= signature",
            (D::NoSignature, Lang::Fr) => "aucune signature v1=",
        }
    }
}

impl SignatureError {
    /// The refusal in every language, for the sender.
    pub fn localized(&self) -> Localized {
        match self {
            SignatureError::Missing => tr!(
                "missing Dealscore-Signature header",
                "l'en-tête Dealscore-Signature est absent"
            ),
            SignatureError::Malformed(defect) => Localized::from_fn(|lang| match lang {
                Lang::En => format!("malformed Dealscore-Signature header: {}", defect.text(lang)),
                Lang::Fr => format!(
                    "en-tête Dealscore-Signature mal formé{NNBSP}: {}",
                    defect.text(lang)
                ),
            }),
            SignatureError::Stale(secs) => tr!(
                "signature timestamp is older than the {secs}-second tolerance",
                "l'horodatage de la signature dépasse la tolérance de {secs}{NBSP}secondes"
            ),
            SignatureError::Future(secs) => tr!(
                "signature timestamp is more than {secs} seconds in the future",
                "l'horodatage de la signature est plus de {secs}{NBSP}secondes dans le futur"
            ),
            SignatureError::Mismatch => tr!("signature does not match", "la signature ne correspond pas"),
        }
    }
}

/// `None` never happens in practice: HMAC takes keys of any length.
fn mac_for(secret: &str, timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    mac_for(secret, timestamp, body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// A complete header value `t=…,v1=…` signed with `secret`.
pub fn header_value(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Checks a header against the raw body: the timestamp must lie within `tolerance_secs` of `now`
/// (either side) and one `v1` must be the HMAC of the body under one of `secrets`. Comparison is
/// constant time (`verify_slice`).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed(HeaderDefect::NotPairs))?;
        match key.trim() {
            "t" => {
                let t = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed(HeaderDefect::TimestampNotSeconds))?;
                if timestamp.replace(t).is_some() {
                    return Err(SignatureError::Malformed(HeaderDefect::TimestampTwice));
                }
            }
            "v1" => signatures.push(
                hex::decode(value.trim())
                    .map_err(|_| SignatureError::Malformed(HeaderDefect::SignatureNotHex))?,
            ),
            // Other schemes (v0, future versions) are skipped, as senders may add them.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed(HeaderDefect::NoTimestamp))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed(HeaderDefect::NoSignature));
    }
    let tolerance = i64::try_from(tolerance_secs).unwrap_or(i64::MAX);
    if timestamp < now.saturating_sub(tolerance) {
        return Err(SignatureError::Stale(tolerance_secs));
    }
    if timestamp > now.saturating_add(tolerance) {
        return Err(SignatureError::Future(tolerance_secs));
    }
    for secret in secrets {
        let Some(mac) = mac_for(secret, timestamp, body) else {
            continue;
        };
        if signatures.iter().any(|sig| mac.clone().verify_slice(sig).is_ok()) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_a_good_signature_and_any_rotated_secret() {
        let body = br#"{"id":"e1"}"#;
        let header = header_value("new", NOW, body);
        assert_eq!(
            verify(Some(&header), body, &secrets(&["old", "new"]), NOW, 300),
            Ok(())
        );
        let two = format!(
            "t={NOW},v1={},v1={}",
            sign("x", NOW, body),
            sign("old", NOW, body)
        );
        assert_eq!(verify(Some(&two), body, &secrets(&["old"]), NOW, 300), Ok(()));
    }

    #[test]
    fn refuses_every_bad_case() {
        let body = br#"{"id":"e1"}"#;
        let s = secrets(&["k"]);
        let good = header_value("k", NOW, body);
        let cases: Vec<(Option<String>, &[u8], SignatureError)> = vec![
            (None, body, SignatureError::Missing),
            (
                Some("garbage".into()),
                body,
                SignatureError::Malformed(HeaderDefect::NotPairs),
            ),
            (
                Some(format!("t={NOW}")),
                body,
                SignatureError::Malformed(HeaderDefect::NoSignature),
            ),
            (
                Some("v1=00".into()),
                body,
                SignatureError::Malformed(HeaderDefect::NoTimestamp),
            ),
            (
                Some(format!("t={NOW},v1=zz")),
                body,
                SignatureError::Malformed(HeaderDefect::SignatureNotHex),
            ),
            (
                Some(header_value("other", NOW, body)),
                body,
                SignatureError::Mismatch,
            ),
            (
                Some(header_value("k", NOW - 301, body)),
                body,
                SignatureError::Stale(300),
            ),
            (
                Some(header_value("k", NOW + 301, body)),
                body,
                SignatureError::Future(300),
            ),
            (Some(good), br#"{"id":"e2"}"#, SignatureError::Mismatch),
        ];
        for (header, body, expected) in cases {
            assert_eq!(
                verify(header.as_deref(), body, &s, NOW, 300),
                Err(expected),
                "{header:?}"
            );
        }
    }
}
