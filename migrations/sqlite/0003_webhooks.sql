-- CRM webhooks: every delivery's outcome, the per-opportunity event clock and the write-back
-- outbox. Number 0002 is reserved for the model tables (sqlx applies a lower version added later).
CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    -- set only for events whose effect was committed (applied or ignored): the unique key that
    -- makes a redelivery a duplicate. Rejections and duplicate deliveries leave it NULL.
    event_id TEXT,
    -- the id the sender gave, when it could be read (always kept, for the admin listing)
    sent_id TEXT,
    event_type TEXT,
    external_id TEXT,
    occurred_at BIGINT,
    received_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    -- the outcome answered the first time (JSON text), answered again to duplicates
    outcome TEXT,
    UNIQUE (source, event_id)
);
CREATE INDEX webhook_events_listing_idx ON webhook_events (source, status, id);
CREATE INDEX webhook_events_source_idx ON webhook_events (source, id);

-- Last applied occurred_at per opportunity; kept after a delete so a late upsert is ignored.
CREATE TABLE webhook_event_clock (
    external_id TEXT PRIMARY KEY,
    occurred_at BIGINT NOT NULL
);

CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (status, next_attempt_at);
CREATE INDEX webhook_outbox_source_idx ON webhook_outbox (source, status, id);
