-- pg_forget: changes in 0.2.0
-- Changes to the tables of 0.1.0. A fresh install runs this after
-- sql/schema.sql; ALTER EXTENSION pg_forget UPDATE from 0.1.0 runs it on the
-- installed tables (their data kept). Append only: a released version's
-- changes never change again.

-- Undo data names its tables (regclass), not their OIDs: a pg_dump restores
-- it with the new OIDs, so a soft delete made before the dump restores in
-- the copy.
ALTER TABLE forget.undo ALTER COLUMN tbl TYPE regclass USING tbl::regclass;

-- The doctor's mask check takes a trial flag (functions.sql).
DROP FUNCTION IF EXISTS forget_internal._mask_problem(regclass, name, text, text);

-- A 0.1.0 dump restored into a 0.1.0 installation could not load its chain
-- head (0.1.0's install script had inserted one): the head is empty while
-- the audit has rows. Point it at the newest row.
UPDATE forget.audit_head h SET last_id = a.id, hash = a.hash
FROM (SELECT id, hash FROM forget.audit ORDER BY id DESC LIMIT 1) a
WHERE h.last_id IS NULL;

-- The run-as role of a subject (NULL: the subject table's owner), whose
-- privileges its actions use for user code; register_subject takes it.
ALTER TABLE forget.subjects ADD COLUMN run_as regrole;
DROP FUNCTION IF EXISTS forget.register_subject(text, regclass, name, name, text, text, name[], name);
DROP FUNCTION IF EXISTS forget_internal._register_subject(text, oid, text, text, text, text, text[], text, text);

-- Roles a subject trusts: its graph may reach their tables, and call their
-- hook functions, running their code with the run-as role's privileges.
CREATE TABLE forget.trusted (
    subject text NOT NULL REFERENCES forget.subjects (name) ON DELETE CASCADE,
    role    regrole NOT NULL,
    PRIMARY KEY (subject, role)
);
SELECT pg_catalog.pg_extension_config_dump('forget.trusted', '');
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON forget.trusted
    FOR EACH STATEMENT EXECUTE FUNCTION forget_internal._config_changed();

-- on() takes a function name or signature as text.
DROP FUNCTION IF EXISTS forget."on"(text, regprocedure);

-- Names are bound when declared: what each piece of declared SQL referred
-- to then (src/binding.rs). NULL for what 0.1.0 declared. A rule's is per
-- subject ('<subject>: <object>').
ALTER TABLE forget.masks ADD COLUMN bound text[];
ALTER TABLE forget.links ADD COLUMN bound text[];
ALTER TABLE forget.rules ADD COLUMN bound text[];
ALTER TABLE forget.cleanup_conditions ADD COLUMN bound text[];
ALTER TABLE forget.cleanup_settings ADD COLUMN bound text[];

-- Audit rows found by subject and key (erasure_log, lookups), and the base
-- of a pruned chain (prune_audit): the last removed row's id and hash.
CREATE INDEX ON forget.audit (subject, subject_key);
CREATE TABLE forget.audit_base (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    id        bigint NOT NULL,
    hash      text NOT NULL,
    pruned_at timestamptz NOT NULL,
    pruned    bigint NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('forget.audit_base', '');

-- What each scheduled (or manual) job run did: people_cleanup batches,
-- run_people_cleanup, deactivate_inactive and purge_expired calls.
CREATE TABLE forget.runs (
    id          bigserial PRIMARY KEY,
    job         text NOT NULL,
    subject     text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    candidates  bigint,
    minimized   bigint,
    deleted     bigint,
    deactivated bigint,
    failed      bigint,
    error       text
);
SELECT pg_catalog.pg_extension_config_dump('forget.runs', '');
SELECT pg_catalog.pg_extension_config_dump('forget.runs_id_seq', '');

-- The audit chain is extended at commit (src/audit.rs): an action writes its
-- rows unlinked (ids from a sequence, no hash yet) and a deferred trigger
-- links them after the chain's head when the transaction commits, so the
-- head is locked only during commits and an open transaction stalls no
-- other. seq is a row's position in the chain (commit order); the head's
-- last_id holds the newest position.
ALTER TABLE forget.audit ADD COLUMN seq bigint;
UPDATE forget.audit SET seq = id;
ALTER TABLE forget.audit ALTER COLUMN hash DROP NOT NULL;
CREATE UNIQUE INDEX ON forget.audit (seq);
CREATE INDEX ON forget.audit (id) WHERE hash IS NULL;
CREATE SEQUENCE forget.audit_id_seq;
SELECT pg_catalog.setval('forget.audit_id_seq', COALESCE((SELECT max(id) FROM forget.audit), 0) + 1, false);
SELECT pg_catalog.pg_extension_config_dump('forget.audit_id_seq', '');
CREATE TABLE forget._pending_chain (txid bigint PRIMARY KEY);
CREATE CONSTRAINT TRIGGER chain_at_commit AFTER INSERT ON forget._pending_chain
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION forget_internal._chain_at_commit();

-- DDL moves the configuration version only when it may matter (see
-- forget_internal._ddl_changed): ALTER TABLE is fingerprinted before it runs, drops
-- are judged on their own.
CREATE EVENT TRIGGER forget_ddl_started ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE') EXECUTE FUNCTION forget_internal._ddl_started();
CREATE EVENT TRIGGER forget_ddl_dropped ON sql_drop EXECUTE FUNCTION forget_internal._ddl_dropped();

-- Undo rows are removed with their recovery record by a statement-level
-- trigger (forget_internal._undo_cascade) instead of a foreign key checked per row.
ALTER TABLE forget.undo DROP CONSTRAINT undo_deletion_id_fkey;
CREATE TRIGGER undo_cascade AFTER DELETE ON forget.deleted_clients
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION forget_internal._undo_cascade();

-- The chain's end is its newest linked row, not a row updated by every
-- commit (under a long-held snapshot its dead versions slowed every commit):
-- forget.audit_head is only locked. Each linked row but the newest names its
-- successor (next_seq), so removing the newest rows still shows, and the
-- transaction's first audit id bounds its search for rows to link.
ALTER TABLE forget.audit ADD COLUMN next_seq bigint;
UPDATE forget.audit a SET next_seq = n.following
  FROM (SELECT id, pg_catalog.lead(seq) OVER (ORDER BY seq) AS following FROM forget.audit WHERE seq IS NOT NULL) n
 WHERE a.id = n.id AND n.following IS NOT NULL;
DROP INDEX forget.audit_seq_idx;
CREATE UNIQUE INDEX audit_seq_idx ON forget.audit (seq) WHERE seq IS NOT NULL;
ALTER TABLE forget._pending_chain ADD COLUMN first_id bigint;

-- Masks for export: what export_client shows for a column.
ALTER TABLE forget.masks DROP CONSTRAINT masks_action_check;
ALTER TABLE forget.masks ADD CONSTRAINT masks_action_check CHECK (action IN ('anonymize', 'minimize', 'export'));

-- _require_pg_cron takes the statement its HINT shows.
DROP FUNCTION IF EXISTS forget_internal._require_pg_cron();

-- verify_audit() checks the chain in one ordered pass
-- (forget_internal._verify_chain): the per-row hash function goes.
DROP FUNCTION IF EXISTS forget._audit_hash(bigint, timestamptz, text, text, text, text, text, text, jsonb, text, text);
DROP FUNCTION IF EXISTS forget_internal._audit_hash(bigint, timestamptz, text, text, text, text, text, text, jsonb, text, text);

-- How a recovery record's undo data holds deleted rows: 1 as 0.1.0 kept
-- them (a row reached by two paths may be held twice, and a restore takes
-- equal rows once); 2 each row once, as it was (two equal rows of a table
-- without a primary key are two rows, and both come back). Records from
-- 0.1.0, upgraded or restored from its dumps, read as 1.
ALTER TABLE forget.deleted_clients ADD COLUMN undo_format smallint NOT NULL DEFAULT 1
    CONSTRAINT deleted_clients_undo_format_check CHECK (undo_format IN (1, 2));
