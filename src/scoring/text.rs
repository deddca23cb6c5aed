//! The words of a score, in every supported language: one function per sentence, each a
//! `match lang`, so a sentence's English and French sit side by side and the scoring logic in
//! `messages.rs` and `recommend.rs` never spells text itself.
//!
//! Numbers, counts and percentages come from `i18n::format`, so a sentence writes them as the
//! pages do (`42%`, `1,310`, `9.4 h`). French follows French typography: decimal comma, narrow
//! no-break space before `%` `:` `;` `!` `?`, « guillemets ».
//!
//! The sentences written for every score (numeric factors, levers) are slices joined with
//! `concat()`: one allocation, no template to scan, cheaper than `format!` (BENCHMARKS.md,
//! "Scoring throughput"). The ones written once per model (category sentences, see
//! `phrases.rs`) keep `format!`, which reads better.

use crate::features::raw::display_numeric_in;
use crate::features::spec::{CoreField, Source};
use crate::i18n::format::{self, NNBSP};
use crate::i18n::Lang;

/// A feature's name for a rep ("Deal age", "Âge de l'affaire"); custom attributes keep their
/// name, with spaces for underscores.
pub(super) fn feature_label(source: Source<'_>, lang: Lang) -> String {
    let core = |en: &str, fr: &str| match lang {
        Lang::En => en.to_owned(),
        Lang::Fr => fr.to_owned(),
    };
    match source {
        Source::Core(CoreField::CycleDays) => core("Deal age", "Âge de l'affaire"),
        Source::Core(CoreField::InteractionCount) => core("Interactions", "Interactions"),
        Source::Core(CoreField::ResponseHours) => core("Response time", "Délai de réponse"),
        Source::Core(CoreField::Amount) => core("Amount", "Montant"),
        Source::Core(CoreField::Sector) => core("Sector", "Secteur"),
        Source::Core(CoreField::ContactRole) => core("Contact role", "Rôle du contact"),
        Source::Core(CoreField::Region) => core("Region", "Région"),
        Source::Core(CoreField::Owner) => core("Owner", "Commercial"),
        Source::Core(CoreField::InteractionsPerWeek) => {
            core("Interactions per week", "Interactions par semaine")
        }
        Source::Core(CoreField::DaysSinceLastActivity) => {
            core("Days without activity", "Jours sans activité")
        }
        Source::Attribute(name) => name.replace('_', " "),
    }
}

/// A 0–1 fraction as a whole percentage, as the pages write it: `42%`, or `42 %` with a narrow
/// no-break space (French).
pub(super) fn percent(fraction: f64, lang: Lang) -> String {
    format::percent(fraction, 0, lang)
}

/// A count of deals (`1,234` / `1 234`).
fn count(n: usize, lang: Lang) -> String {
    format::count(n as u64, lang)
}

/// A feature value with its unit (`6 h`, `30 days` / `30 jours`).
pub(super) fn quantity(source: Source<'_>, x: f64, lang: Lang) -> String {
    display_numeric_in(&source, x, lang)
}

/// A category level as shown in a sentence. Contact roles dealscore knows get their French
/// name; other levels are data (sector names, regions) and are shown as recorded, with spaces
/// for underscores.
pub(super) fn level(source: Source<'_>, level: &str, lang: Lang) -> String {
    match (source, lang) {
        (Source::Core(CoreField::ContactRole), Lang::Fr) => match french_role(level) {
            Some((name, _)) => name.to_owned(),
            None => level.replace('_', " "),
        },
        _ => level.replace('_', " "),
    }
}

/// French name of a known contact role, bare and with its article.
fn french_role(level: &str) -> Option<(&'static str, &'static str)> {
    Some(match level {
        "decision_maker" => ("décideur", "le décideur"),
        "economic_buyer" => ("décideur économique", "le décideur économique"),
        "champion" => ("champion", "le champion"),
        "influencer" => ("prescripteur", "le prescripteur"),
        "technical" => ("interlocuteur technique", "l'interlocuteur technique"),
        "end_user" => ("utilisateur final", "l'utilisateur final"),
        "procurement" => ("service achats", "le service achats"),
        "other" => ("autre", "un autre contact"),
        _ => return None,
    })
}

/// Where a deal's value stands against the won deals of its group.
pub(super) enum Standing {
    /// Above the won median; the fraction of won deals at or below the value.
    Above(f64),
    /// Below the won median; the fraction of won deals above the value.
    Below(f64),
    /// At the median (or no percentiles to compare with).
    InLine,
}

/// "Interactions of 3 is lower than 70% of won deals (median 8)". `is_time` picks
/// slower/faster over higher/lower.
pub(super) fn numeric_factor(
    name: &str,
    value: &str,
    standing: Standing,
    is_time: bool,
    median: &str,
    lang: Lang,
) -> String {
    // (share of won deals, English word, French word); "plus/moins que pour N % des affaires
    // gagnées" avoids agreeing an adjective with each label's gender; a response time is
    // "plus long/plus court".
    let comparison = match standing {
        Standing::Above(f) if is_time => Some((f, "slower", "plus long")),
        Standing::Above(f) => Some((f, "higher", "plus")),
        Standing::Below(f) if is_time => Some((f, "faster", "plus court")),
        Standing::Below(f) => Some((f, "lower", "moins")),
        Standing::InLine => None,
    };
    match (lang, comparison) {
        (Lang::En, Some((f, word, _))) => [
            name,
            " of ",
            value,
            " is ",
            word,
            " than ",
            &percent(f, lang),
            " of won deals (median ",
            median,
            ")",
        ]
        .concat(),
        (Lang::En, None) => [
            name,
            " of ",
            value,
            " is in line with won deals (median ",
            median,
            ")",
        ]
        .concat(),
        (Lang::Fr, Some((f, _, word))) => [
            name,
            "\u{202F}: ",
            value,
            ", ",
            word,
            " que pour ",
            &percent(f, lang),
            " des affaires gagnées (médiane ",
            median,
            ")",
        ]
        .concat(),
        (Lang::Fr, None) => [
            name,
            "\u{202F}: ",
            value,
            ", dans la norme des affaires gagnées (médiane ",
            median,
            ")",
        ]
        .concat(),
    }
}

/// "Amount: 12000" — a numeric factor without a won-deal reference.
pub(super) fn bare_factor(name: &str, value: &str, lang: Lang) -> String {
    match lang {
        Lang::En => [name, ": ", value].concat(),
        Lang::Fr => [name, "\u{202F}: ", value].concat(),
    }
}

/// "won median 6 h".
pub(super) fn won_median(median: &str, lang: Lang) -> String {
    match lang {
        Lang::En => ["won median ", median].concat(),
        Lang::Fr => ["médiane des affaires gagnées\u{202F}: ", median].concat(),
    }
}

/// "Contact role end user: 21% of 310 closed deals with it were won (all deals: 43%)".
pub(super) fn category_factor(
    name: &str,
    level: &str,
    win_rate: f64,
    closed: usize,
    overall: f64,
    lang: Lang,
) -> String {
    let (rate, overall, closed) = (
        percent(win_rate, lang),
        percent(overall, lang),
        count(closed, lang),
    );
    match lang {
        Lang::En => {
            format!("{name} {level}: {rate} of {closed} closed deals with it were won (all deals: {overall})")
        }
        Lang::Fr => format!(
            "{name} «{NNBSP}{level}{NNBSP}»{NNBSP}: {rate} des {closed} affaires clôturées avec cette valeur \
             ont été gagnées (toutes affaires{NNBSP}: {overall})"
        ),
    }
}

/// "win rate 21% (overall 43%)".
pub(super) fn category_reference(win_rate: f64, overall: f64, lang: Lang) -> String {
    let (rate, overall) = (percent(win_rate, lang), percent(overall, lang));
    match lang {
        Lang::En => format!("win rate {rate} (overall {overall})"),
        Lang::Fr => format!("taux de gain {rate} (toutes affaires{NNBSP}: {overall})"),
    }
}

/// "Sector mining: too rare in past deals to compare".
pub(super) fn rare_category(name: &str, level: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{name} {level}: too rare in past deals to compare"),
        Lang::Fr => {
            format!(
                "{name} «{NNBSP}{level}{NNBSP}»{NNBSP}: trop rare dans les affaires passées pour comparer"
            )
        }
    }
}

/// Placeholder for a value the deal does not have.
pub(super) fn unknown(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "unknown",
        Lang::Fr => "inconnu",
    }
}

/// What a lever asks a rep to do, before the probability part.
pub(super) enum Lever<'a> {
    /// Answer within the target response time.
    Respond { target: &'a str, now: &'a str },
    /// Reach the target interaction count.
    Interact { target: &'a str, now: &'a str },
    /// Engage a contact of the target role (levels as recorded, e.g. `decision_maker`).
    Engage { target: &'a str, now: &'a str },
    /// Reach the target pace of interactions (values written with their unit, `2 a week`).
    Pace { target: &'a str, now: &'a str },
    /// Re-engage a silent deal: at most the target time without activity (`3 days`).
    Reengage { target: &'a str, now: &'a str },
    /// Any other actionable feature: the spec's label (not translated: the spec owns it).
    Other {
        label: &'a str,
        feature: &'a str,
        target: &'a str,
        now: &'a str,
    },
}

/// "Answer the prospect within 4 h (now 12 h) — lifts the win probability from 31% to 38%".
pub(super) fn intervention(lever: Lever<'_>, before: f64, after: f64, lang: Lang) -> String {
    let (before, after) = (percent(before, lang), percent(after, lang));
    let role = Source::Core(CoreField::ContactRole);
    match lang {
        Lang::En => {
            let what = match lever {
                Lever::Respond { target, now } => {
                    ["Answer the prospect within ", target, " (now ", now, ")"].concat()
                }
                Lever::Interact { target, now } => {
                    ["Bring the interactions to ", target, " (now ", now, ")"].concat()
                }
                Lever::Pace { target, now } => ["Touch the prospect ", target, " (now ", now, ")"].concat(),
                Lever::Reengage { target, now } => [
                    "Re-engage the prospect: no more than ",
                    target,
                    " without activity (now ",
                    now,
                    ")",
                ]
                .concat(),
                Lever::Engage { target, now } => [
                    "Engage the ",
                    &level(role, target, lang),
                    " (now: ",
                    &level(role, now, lang),
                    ")",
                ]
                .concat(),
                Lever::Other {
                    label,
                    feature,
                    target,
                    now,
                } => [label, ": ", feature, " → ", target, " (now ", now, ")"].concat(),
            };
            [
                &what,
                " — lifts the win probability from ",
                &before,
                " to ",
                &after,
            ]
            .concat()
        }
        Lang::Fr => {
            let what = match lever {
                Lever::Respond { target, now } => {
                    format!("Répondre au prospect sous {target} (actuellement {now})")
                }
                Lever::Interact { target, now } => {
                    format!("Porter les interactions à {target} (actuellement {now})")
                }
                Lever::Pace { target, now } => {
                    format!("Contacter le prospect {target} (actuellement {now})")
                }
                Lever::Reengage { target, now } => format!(
                    "Relancer le prospect{NNBSP}: pas plus de {target} sans activité (actuellement {now})"
                ),
                Lever::Engage { target, now } => {
                    let whom = match french_role(target) {
                        Some((_, with_article)) => with_article.to_owned(),
                        None => format!("le contact «{NNBSP}{}{NNBSP}»", level(role, target, lang)),
                    };
                    format!(
                        "Impliquer {whom} (actuellement{NNBSP}: {})",
                        level(role, now, lang)
                    )
                }
                Lever::Other {
                    label,
                    feature,
                    target,
                    now,
                } => format!("{label}{NNBSP}: {feature} → {target} (actuellement {now})"),
            };
            [
                &what,
                " — fait passer la probabilité de gain de ",
                &before,
                " à ",
                &after,
            ]
            .concat()
        }
    }
}

/// "attr.tier: `gold` was not seen in training; scored as (other)".
pub(super) fn unseen_category(feature: &str, level: &str, other: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{feature}: `{level}` was not seen in training; scored as {other}"),
        Lang::Fr => format!(
            "{feature}{NNBSP}: `{level}` n'apparaît pas dans l'entraînement{NNBSP}; évalué comme {other}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_factor_sentences_use_french_numbers_and_typography() {
        let text = numeric_factor("Interactions", "3", Standing::Below(0.7), false, "8", Lang::Fr);
        assert_eq!(
            text,
            "Interactions\u{202F}: 3, moins que pour 70\u{202F}% des affaires gagnées (médiane 8)"
        );
        let english = numeric_factor("Interactions", "3", Standing::Below(0.7), false, "8", Lang::En);
        assert_eq!(
            english,
            "Interactions of 3 is lower than 70% of won deals (median 8)"
        );
        let role = category_factor(
            "Rôle du contact",
            "utilisateur final",
            0.2149,
            1310,
            0.43,
            Lang::Fr,
        );
        assert!(role.starts_with("Rôle du contact «\u{202F}utilisateur final\u{202F}»\u{202F}: 21\u{202F}%"));
        assert!(role.contains("des 1\u{202F}310 affaires clôturées"), "{role}");
    }

    #[test]
    fn french_interventions_name_the_role_with_its_article() {
        let text = intervention(
            Lever::Engage {
                target: "decision_maker",
                now: "end_user",
            },
            0.32,
            0.384,
            Lang::Fr,
        );
        assert_eq!(
            text,
            "Impliquer le décideur (actuellement\u{202F}: utilisateur final) — fait passer la probabilité \
             de gain de 32\u{202F}% à 38\u{202F}%"
        );
        let english = intervention(
            Lever::Engage {
                target: "decision_maker",
                now: "end_user",
            },
            0.32,
            0.384,
            Lang::En,
        );
        assert_eq!(
            english,
            "Engage the decision maker (now: end user) — lifts the win probability from 32% to 38%"
        );
        let respond = intervention(
            Lever::Respond {
                target: "4 h",
                now: "12,5 h",
            },
            0.2,
            0.25,
            Lang::Fr,
        );
        assert!(respond.starts_with("Répondre au prospect sous 4 h (actuellement 12,5 h) — "));
        assert_eq!(
            feature_label(Source::Core(CoreField::CycleDays), Lang::Fr),
            "Âge de l'affaire"
        );
    }
}
