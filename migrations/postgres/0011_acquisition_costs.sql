-- Acquisition spend per period (optionally per region or channel), behind the average
-- acquisition cost of the customers insight (docs/insights.md). A write replaces every row of
-- the periods it names, so the table holds at most one amount per period, dimension, value and
-- currency.
CREATE TABLE acquisition_costs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- '2026', '2026-Q1' or '2026-03'
    period TEXT NOT NULL,
    -- the period as epoch-millisecond bounds [period_start, period_end)
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    -- '' (all of the period's spend), 'region' or 'channel'
    dimension TEXT NOT NULL,
    -- the region or channel name; '' when dimension is ''
    dimension_value TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (period, dimension, dimension_value, currency)
);
CREATE INDEX acquisition_costs_start_idx ON acquisition_costs (period_start);
