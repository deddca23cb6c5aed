-- Opportunities, activities and API keys. Times are epoch milliseconds (BIGINT), money is
-- DOUBLE PRECISION, custom attributes are JSON text: the types sqlx's Any driver reads on both
-- SQLite and PostgreSQL.
CREATE TABLE opportunities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT,
    account TEXT,
    sector TEXT,
    region TEXT,
    owner TEXT,
    contact_role TEXT,
    amount DOUBLE PRECISION,
    currency TEXT NOT NULL,
    stage TEXT,
    status TEXT NOT NULL,
    created_at BIGINT,
    closed_at BIGINT,
    -- what the client sent
    reported_interaction_count BIGINT,
    reported_response_hours DOUBLE PRECISION,
    reported_last_activity_at BIGINT,
    -- effective values: derived from activities when there are any, else the reported ones
    interaction_count BIGINT,
    response_hours DOUBLE PRECISION,
    last_activity_at BIGINT,
    derived_from_activities BIGINT NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX opportunities_status_idx ON opportunities (status, id);
CREATE INDEX opportunities_owner_idx ON opportunities (owner, id);
CREATE INDEX opportunities_region_idx ON opportunities (region, id);
CREATE INDEX opportunities_sector_idx ON opportunities (sector, id);
CREATE INDEX opportunities_closed_at_idx ON opportunities (closed_at);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    opportunity_id BIGINT NOT NULL REFERENCES opportunities (id) ON DELETE CASCADE,
    dedup_key TEXT NOT NULL,
    activity_id TEXT,
    kind TEXT NOT NULL,
    direction TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    UNIQUE (opportunity_id, dedup_key)
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX api_keys_active_name_idx ON api_keys (name) WHERE revoked_at IS NULL;
