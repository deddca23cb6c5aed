//! The `acquisition_costs` table: acquisition spend per period, optionally per region or channel.
//! A write replaces every row of the periods it names, in one transaction.

use std::collections::BTreeSet;

use chrono::Utc;
use sqlx::FromRow;

use super::sql::{values_placeholders, Style};
use super::Db;
use crate::domain::to_epoch_ms;

/// One amount of acquisition spend.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AcquisitionCost {
    /// `2026`, `2026-Q1` or `2026-03` (canonical label).
    pub period: String,
    /// Start of the period (epoch ms, inclusive).
    #[serde(skip)]
    pub period_start: i64,
    /// End of the period (epoch ms, exclusive).
    #[serde(skip)]
    pub period_end: i64,
    /// The region the spend went to, if it is split by region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The channel the spend went to, if it is split by channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// ISO 4217 code, upper case.
    pub currency: String,
    /// The amount spent, 0 or more.
    pub amount: f64,
}

const COLUMNS: usize = 8;

/// Replaces the rows of every period that `costs` names by `costs`, in one transaction: periods
/// not named keep their rows, and writing the same list twice leaves the same table. Returns
/// the rows removed.
pub async fn replace_periods(db: &Db, costs: &[AcquisitionCost]) -> Result<u64, sqlx::Error> {
    let periods: BTreeSet<&str> = costs.iter().map(|c| c.period.as_str()).collect();
    let mut tx = db.begin_write().await?;
    let mut removed = 0;
    for period in periods {
        removed += sqlx::query("DELETE FROM acquisition_costs WHERE period = $1")
            .bind(period.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    let now = to_epoch_ms(Utc::now());
    for chunk in costs.chunks(500) {
        let sql = format!(
            "INSERT INTO acquisition_costs (period, period_start, period_end, dimension, dimension_value, \
             currency, amount, updated_at) VALUES {}",
            values_placeholders(Style::of(&tx), chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for c in chunk {
            let (dimension, value) = match (&c.region, &c.channel) {
                (Some(r), _) => ("region", r.clone()),
                (None, Some(ch)) => ("channel", ch.clone()),
                (None, None) => ("", String::new()),
            };
            query = query
                .bind(c.period.clone())
                .bind(c.period_start)
                .bind(c.period_end)
                .bind(dimension)
                .bind(value)
                .bind(c.currency.clone())
                .bind(c.amount)
                .bind(now);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Every row whose period overlaps `[start, end)`, in (period start, dimension, value,
/// currency) order.
pub async fn overlapping(db: &Db, start: i64, end: i64) -> Result<Vec<AcquisitionCost>, sqlx::Error> {
    let rows: Vec<CostRow> = sqlx::query_as(
        "SELECT period, period_start, period_end, dimension, dimension_value, currency, amount \
         FROM acquisition_costs WHERE period_start < $1 AND period_end > $2 \
         ORDER BY period_start, period, dimension, dimension_value, currency",
    )
    .bind(end)
    .bind(start)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(AcquisitionCost::from).collect())
}

#[derive(FromRow)]
struct CostRow {
    period: String,
    period_start: i64,
    period_end: i64,
    dimension: String,
    dimension_value: String,
    currency: String,
    amount: f64,
}

impl From<CostRow> for AcquisitionCost {
    fn from(row: CostRow) -> Self {
        let named = |d: &str| (row.dimension == d).then(|| row.dimension_value.clone());
        AcquisitionCost {
            region: named("region"),
            channel: named("channel"),
            period: row.period,
            period_start: row.period_start,
            period_end: row.period_end,
            currency: row.currency,
            amount: row.amount,
        }
    }
}
