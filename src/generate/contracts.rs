//! Deal types and contracts of the synthetic history: every deal but an upsell carries a
//! contract length, and each odd-numbered deal may be the renewal or an upsell of the deal just
//! before it, when that one was won and the timing fits in the history.
//!
//! These draws come from a stream of their own per deal, so the standard fields of a deal that
//! stays new business are the same as without them, and deal *i* still depends only on the
//! configuration and *i* (a renewal regenerates its parent, deal *i − 1*, which is never a
//! renewal itself).

use chrono::Months;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::world::{pick, unit};

/// Contract lengths in months and their shares.
pub(crate) const CONTRACT_MONTHS: [(u32, f64); 3] = [(12, 0.60), (24, 0.25), (36, 0.15)];
/// Share of odd-numbered deals that follow up their parent as a renewal…
pub(crate) const RENEWAL_SHARE: f64 = 0.70;
/// …and as an upsell (the rest are new business).
pub(crate) const UPSELL_SHARE: f64 = 0.20;
/// A renewal is opened between these many days before its parent's contract ends.
pub(crate) const RENEWAL_LEAD_DAYS: (f64, f64) = (30.0, 90.0);
/// A renewal closes at the latest this many days after the parent's contract ends.
pub(crate) const RENEWAL_LATEST_DAYS: i64 = 85;

/// The type of a generated deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DealType {
    /// New business.
    New,
    /// Renewal of the parent's contract.
    Renewal,
    /// Upsell during the parent's contract.
    Upsell,
}

impl DealType {
    /// The `deal_type` attribute value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DealType::New => "new",
            DealType::Renewal => "renewal",
            DealType::Upsell => "upsell",
        }
    }
}

/// The draws of one deal from its own stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContractDraws {
    /// Contract length if the deal is won (not used by upsells).
    pub months: u32,
    /// What an odd-numbered deal tries to be.
    pub wish: DealType,
    /// Days before the parent's end a renewal opens.
    pub lead_days: f64,
    /// Where in the parent's contract an upsell opens (0–1).
    pub upsell_at: f64,
}

/// The draws of deal `index`, from stream `2^63 + index` of `seed` (the standard fields use
/// streams `index`, the population `2^64 − 1`).
pub(crate) fn draws(seed: u64, index: usize) -> ContractDraws {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((1 << 63) | index as u64);
    let months = CONTRACT_MONTHS[pick(&mut rng, CONTRACT_MONTHS.iter().map(|c| c.1))].0;
    let roll = unit(&mut rng);
    let wish = if index % 2 == 0 {
        DealType::New
    } else if roll < RENEWAL_SHARE {
        DealType::Renewal
    } else if roll < RENEWAL_SHARE + UPSELL_SHARE {
        DealType::Upsell
    } else {
        DealType::New
    };
    let lead_days = RENEWAL_LEAD_DAYS.0 + unit(&mut rng) * (RENEWAL_LEAD_DAYS.1 - RENEWAL_LEAD_DAYS.0);
    let upsell_at = unit(&mut rng);
    ContractDraws {
        months,
        wish,
        lead_days,
        upsell_at,
    }
}

/// A follow-up deal's account and dates, set by its parent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowUp {
    /// Renewal or upsell.
    pub kind: DealType,
    /// The parent's account (index in the world's accounts).
    pub account: usize,
    /// Creation (epoch seconds).
    pub created_s: i64,
    /// Latest close (epoch seconds).
    pub latest_close_s: i64,
}

/// The follow-up a deal with `draws` makes of its won parent (closed at `parent_close_s` with a
/// `parent_months` contract), if its timing fits: it must open after the parent closed and, if
/// `open`, within the open window before `end_s`; closed, a day before `end_s` at the latest.
pub(crate) fn follow_up(
    draws: &ContractDraws,
    parent_account: usize,
    parent_close_s: i64,
    parent_months: u32,
    open: (bool, i64),
    end_s: i64,
) -> Option<FollowUp> {
    const DAY: i64 = 86_400;
    let close = chrono::DateTime::from_timestamp(parent_close_s, 0)?;
    let contract_end = close.checked_add_months(Months::new(parent_months))?.timestamp();
    let (created_s, latest_close_s) = match draws.wish {
        DealType::New => return None,
        DealType::Renewal => (
            contract_end - (draws.lead_days * DAY as f64) as i64,
            contract_end + RENEWAL_LATEST_DAYS * DAY,
        ),
        DealType::Upsell => (
            parent_close_s + DAY + (draws.upsell_at * (contract_end - parent_close_s - DAY) as f64) as i64,
            contract_end,
        ),
    };
    let (is_open, open_window_s) = open;
    let fits = if is_open {
        created_s >= end_s - open_window_s && created_s <= end_s - 3600
    } else {
        created_s <= end_s - DAY
    };
    (fits && created_s > parent_close_s).then_some(FollowUp {
        kind: draws.wish,
        account: parent_account,
        created_s,
        latest_close_s,
    })
}
