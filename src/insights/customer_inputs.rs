//! What the customers insight reads besides the snapshot: the attribute columns of the
//! configured fields (kept with the snapshot) and the acquisition spend of the window.

use std::sync::Arc;

use super::breakdown::AttributeColumn;
use super::customers::{Basis, Columns};
use super::period::Window;
use super::{CachedSnapshot, InsightsCache};
use crate::config::InsightsConfig;
use crate::store::acquisition_costs::{self as store, AcquisitionCost};
use crate::store::Db;

/// The attribute columns of the configured fields, read once per snapshot.
pub struct CustomerColumns {
    deal_type: Option<Arc<AttributeColumn>>,
    contract_start: Option<Arc<AttributeColumn>>,
    contract_end: Option<Arc<AttributeColumn>>,
    contract_months: Option<Arc<AttributeColumn>>,
}

impl CustomerColumns {
    /// Reads the columns `config` names (`attr.<name>`; anything else counts as unset).
    pub async fn read(
        db: &Db,
        cache: &InsightsCache,
        snapshot: &CachedSnapshot,
        config: &InsightsConfig,
    ) -> Result<Self, sqlx::Error> {
        let read = |field: &Option<String>| {
            let name = field
                .as_deref()
                .and_then(|f| f.strip_prefix("attr."))
                .map(str::to_owned);
            async move {
                match name {
                    Some(name) => cache.attribute(db, snapshot, &name).await.map(Some),
                    None => Ok(None),
                }
            }
        };
        Ok(CustomerColumns {
            deal_type: read(&config.deal_type_field).await?,
            contract_start: read(&config.contract_start_field).await?,
            contract_end: read(&config.contract_end_field).await?,
            contract_months: read(&config.contract_months_field).await?,
        })
    }

    /// The columns, borrowed.
    pub fn columns(&self) -> Columns<'_> {
        Columns {
            deal_type: self.deal_type.as_deref(),
            contract_start: self.contract_start.as_deref(),
            contract_end: self.contract_end.as_deref(),
            contract_months: self.contract_months.as_deref(),
        }
    }
}

/// The customers basis of `snapshot` for `config`: the one kept with the snapshot, or one built
/// from `columns` (CPU work: call it off the reactor) and kept when every column it read is the
/// snapshot's own.
pub fn basis(snapshot: &CachedSnapshot, config: &InsightsConfig, columns: &CustomerColumns) -> Arc<Basis> {
    if let Some(kept) = snapshot.kept_customers(config) {
        return kept;
    }
    let basis = Arc::new(Basis::new(snapshot, columns.columns()));
    let fields = [
        (&config.deal_type_field, &columns.deal_type),
        (&config.contract_start_field, &columns.contract_start),
        (&config.contract_end_field, &columns.contract_end),
        (&config.contract_months_field, &columns.contract_months),
    ];
    let matching = fields
        .iter()
        .all(|(field, column)| match (attribute_name(field), column) {
            (Some(name), Some(column)) => snapshot.keeps_attribute(name, column),
            _ => true,
        });
    if matching {
        snapshot.keep_customers(config, basis.clone());
    }
    basis
}

fn attribute_name(field: &Option<String>) -> Option<&str> {
    field.as_deref().and_then(|f| f.strip_prefix("attr."))
}

/// What the customers report of `window` reads: the latest snapshot, its configured columns and
/// the spend of the periods overlapping the window.
pub async fn inputs(
    db: &Db,
    cache: &InsightsCache,
    config: &InsightsConfig,
    window: Window,
) -> Result<(Arc<CachedSnapshot>, CustomerColumns, Vec<AcquisitionCost>), sqlx::Error> {
    let snapshot = cache.snapshot(db).await?;
    let columns = CustomerColumns::read(db, cache, &snapshot, config).await?;
    let costs = store::overlapping(db, window.start, window.end).await?;
    Ok((snapshot, columns, costs))
}
