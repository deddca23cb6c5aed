-- The deal each score row was computed from, as a hash of the stored opportunity (its effective
-- values included), so a read of a stored score can tell whether the deal changed since the last
-- row and add one only then. Rows written before this column have none and count as changed.
ALTER TABLE scores ADD COLUMN deal_hash TEXT;
