-- Model registry (artifacts are stored here too, so a server on another machine can load them)
-- and the score history of stored opportunities.
CREATE TABLE model_versions (
    version TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    artifact TEXT NOT NULL,
    train_rows BIGINT NOT NULL,
    holdout_auc DOUBLE PRECISION,
    activated_at BIGINT,
    activated_by TEXT
);
CREATE INDEX model_versions_status_idx ON model_versions (status);

CREATE TABLE model_activations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version TEXT NOT NULL,
    activated_at BIGINT NOT NULL,
    activated_by TEXT NOT NULL,
    reason TEXT NOT NULL
);

CREATE TABLE scores (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id BIGINT NOT NULL REFERENCES opportunities (id) ON DELETE CASCADE,
    model_version TEXT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    score BIGINT NOT NULL,
    grade TEXT NOT NULL,
    expected_value DOUBLE PRECISION,
    focus TEXT NOT NULL,
    scored_at BIGINT NOT NULL
);
CREATE INDEX scores_opportunity_idx ON scores (opportunity_id, id);
