-- Every change of a deal's fields, appended by every write (REST PUT, CSV import, webhook event)
-- in the transaction of the write itself, and by imports of a CRM's field history.
-- `field`: a tracked field (`stage`, `amount`, `attributes.tier`…).
-- `value`: its new value as JSON text in canonical form; NULL when the field was cleared.
-- `previous`: the value it replaced, as JSON text (`null` when the field was empty); NULL when
--   unknown (a deal's first write, an imported change).
-- `changed_at`: when the change took effect (the event's time, the import's `changed_at`, else
--   the write time); `recorded_at`: when it was written.
-- `source`: api, import, webhook or history-import.
-- Append-only; the rows go with their deal when it is deleted.
CREATE TABLE opportunity_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    opportunity_id BIGINT NOT NULL REFERENCES opportunities (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    value TEXT,
    previous TEXT,
    changed_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
-- "The history of deal X up to T".
CREATE INDEX opportunity_history_deal_time_idx ON opportunity_history (opportunity_id, changed_at, id);
-- An imported change is recorded once: importing the same field history again adds nothing.
CREATE UNIQUE INDEX opportunity_history_imported_idx
    ON opportunity_history (opportunity_id, field, changed_at) WHERE source = 'history-import';
