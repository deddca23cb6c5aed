-- Leave 15 % of each heap page free in the two tables whose rows are rewritten in place by every
-- webhook event, PUT and re-import: PostgreSQL can then keep the new row version on the same page
-- without touching any index (a heap-only tuple update) whenever no indexed column changed.
-- Measured: 93 % of the updates of a webhook load became HOT, and batches of 1,000 events went
-- from 21.2k/22.7k to 23.9k/24.5k events/s (BENCHMARKS.md, "Webhook deliveries"). Applies to pages written
-- from now on; `VACUUM FULL opportunities` rewrites an existing table with it.
ALTER TABLE opportunities SET (fillfactor = 85);
ALTER TABLE webhook_event_clock SET (fillfactor = 85);
