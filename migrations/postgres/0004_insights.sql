-- Insights: sales objectives, and a change stamp that tells the in-memory insights snapshot when
-- opportunities or scores changed (docs/insights.md).
CREATE TABLE objectives (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

-- The change stamp is SUM(weight). Each writing statement appends a row rather than bumping one
-- shared row: a shared row would be locked until commit, serialising every writer and risking
-- deadlocks between transactions that also lock opportunity rows. Appends never conflict; the
-- reader compacts old rows into one of the same total weight.
CREATE TABLE insights_changes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    weight BIGINT NOT NULL
);
INSERT INTO insights_changes (weight) VALUES (0);

CREATE FUNCTION insights_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO insights_changes (weight) VALUES (1);
    RETURN NULL;
END
$$;

CREATE TRIGGER insights_opportunities_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON opportunities
    FOR EACH STATEMENT EXECUTE FUNCTION insights_record_change();
CREATE TRIGGER insights_scores_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON scores
    FOR EACH STATEMENT EXECUTE FUNCTION insights_record_change();
