-- Which deals a key may see. `scope_owners` is a JSON array of owner names (a rep key holds its
-- own name, a manager key its team's); `scope_region` is a region name (manager keys by region).
-- Both NULL: every deal, which only analyst and admin keys may have — a rep key created before
-- these columns is refused until it is recreated with `--owner` (see docs/operations.md).
ALTER TABLE api_keys ADD COLUMN scope_owners TEXT;
ALTER TABLE api_keys ADD COLUMN scope_region TEXT;
