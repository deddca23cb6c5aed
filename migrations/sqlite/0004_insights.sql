-- Insights: sales objectives, and a change stamp that tells the in-memory insights snapshot when
-- opportunities or scores changed (docs/insights.md).
CREATE TABLE objectives (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'owner' or 'region'
    scope TEXT NOT NULL,
    scope_value TEXT NOT NULL,
    -- '2026', '2026-Q1' or '2026-03'
    period TEXT NOT NULL,
    -- 'won_revenue' or 'won_deals'
    metric TEXT NOT NULL,
    -- the currency of a won_revenue target; '' for won_deals
    currency TEXT NOT NULL,
    target DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (scope, scope_value, period, metric, currency)
);
CREATE INDEX objectives_period_idx ON objectives (period);

-- The change stamp is SUM(weight). SQLite serialises writers, so one row bumped by row triggers
-- is enough (PostgreSQL appends one row per statement instead, to avoid a hot row lock).
CREATE TABLE insights_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    weight BIGINT NOT NULL
);
INSERT INTO insights_changes (weight) VALUES (0);

CREATE TRIGGER insights_opportunities_insert AFTER INSERT ON opportunities
BEGIN UPDATE insights_changes SET weight = weight + 1 WHERE id = (SELECT MIN(id) FROM insights_changes); END;
CREATE TRIGGER insights_opportunities_update AFTER UPDATE ON opportunities
BEGIN UPDATE insights_changes SET weight = weight + 1 WHERE id = (SELECT MIN(id) FROM insights_changes); END;
CREATE TRIGGER insights_opportunities_delete AFTER DELETE ON opportunities
BEGIN UPDATE insights_changes SET weight = weight + 1 WHERE id = (SELECT MIN(id) FROM insights_changes); END;
CREATE TRIGGER insights_scores_insert AFTER INSERT ON scores
BEGIN UPDATE insights_changes SET weight = weight + 1 WHERE id = (SELECT MIN(id) FROM insights_changes); END;
CREATE TRIGGER insights_scores_update AFTER UPDATE ON scores
BEGIN UPDATE insights_changes SET weight = weight + 1 WHERE id = (SELECT MIN(id) FROM insights_changes); END;
CREATE TRIGGER insights_scores_delete AFTER DELETE ON scores
BEGIN UPDATE insights_changes SET weight = weight + 1 WHERE id = (SELECT MIN(id) FROM insights_changes); END;
