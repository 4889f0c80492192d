-- pg_forget: changes in 0.2.0
-- Changes to the tables of 0.1.0. A fresh install runs this after
-- sql/schema.sql; ALTER EXTENSION pg_forget UPDATE from 0.1.0 runs it on the
-- installed tables (their data kept). Append only: a released version's
-- changes never change again.

-- Undo data names its tables (regclass), not their OIDs: a pg_dump restores
-- it with the new OIDs, so a soft delete made before the dump restores in
-- the copy.
ALTER TABLE forget.undo ALTER COLUMN tbl TYPE regclass USING tbl::regclass;
