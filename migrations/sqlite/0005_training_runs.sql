-- Model lifecycle: training runs (persisted so every server sees them and a crash is detected),
-- leases (one server runs the retraining schedule), and the promotion gate's decision per version.
CREATE TABLE training_runs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    -- 1 while the run is queued or running, NULL after: the unique index below admits one such
    -- run across every server sharing the database (NULLs never collide).
    active_slot INTEGER,
    trigger TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    request TEXT NOT NULL,
    phase TEXT NOT NULL,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    heartbeat_at BIGINT NOT NULL,
    owner TEXT NOT NULL,
    version TEXT,
    gate TEXT,
    error TEXT
);
CREATE UNIQUE INDEX training_runs_one_active_idx ON training_runs (active_slot);
CREATE INDEX training_runs_created_idx ON training_runs (created_at);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

ALTER TABLE model_versions ADD COLUMN gate TEXT;
