//! What the customers insight reads besides the snapshot: the attribute columns of the
//! configured fields (kept with the snapshot) and the acquisition spend of the window.

use std::sync::Arc;

use super::breakdown::AttributeColumn;
use super::customers::Columns;
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
