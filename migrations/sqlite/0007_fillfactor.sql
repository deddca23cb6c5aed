-- PostgreSQL leaves room in the pages of `opportunities` and `webhook_event_clock` for in-place
-- updates (its 0007). SQLite has no such setting: this file only keeps both folders numbered
-- alike.
SELECT 1;
