-- pg_forget: install only
-- pg_forget: configuration tables and records, as 0.1.0 created them. Later
-- versions change them in sql/changes-<version>.sql, which both a fresh install
-- and ALTER EXTENSION UPDATE run, so that both end with the same schema.
--
-- Every object lives in schema "forget". Configuration tables are registered
-- with pg_extension_config_dump so that pg_dump carries an installation's
-- configuration (and its audit trail) along with its data.

-- A registered kind of data subject: one table, one key column.
CREATE TABLE forget.subjects (
    name             text PRIMARY KEY CHECK (name <> ''),
    tbl              regclass NOT NULL,
    key_column       name NOT NULL,
    active_column    name,
    active_value     text NOT NULL DEFAULT 'true',
    inactive_value   text NOT NULL DEFAULT 'false',
    identity         name[],
    minimized_column name,
    -- search_path in force when the subject was registered: link conditions,
    -- masks and cleanup conditions resolve names with it, never with the
    -- caller's search_path.
    search_path      text NOT NULL,
    registered_at    timestamptz NOT NULL DEFAULT now()
);

-- Edges not backed by a foreign key: rows of child whose child_column equals
-- parent.parent_column (and that satisfy condition) belong to that parent row.
-- A link whose child is a subject table declares an owned parent (a login
-- row the subject points to), deleted together with the subject.
CREATE TABLE forget.links (
    id            bigserial PRIMARY KEY,
    child         regclass NOT NULL,
    child_column  name NOT NULL,
    parent        regclass NOT NULL,
    parent_column name NOT NULL,
    condition     text,
    search_path   text NOT NULL,
    UNIQUE NULLS NOT DISTINCT (child, child_column, parent, parent_column, condition)
);

-- What an action does to the rows reached through an edge. via NULL means
-- every edge leaving tbl (tbl being the referencing table).
CREATE TABLE forget.policies (
    tbl    regclass NOT NULL,
    via    name,
    action text NOT NULL CHECK (action IN ('delete', 'anonymize', 'minimize')),
    policy text NOT NULL CHECK (policy IN ('delete', 'nullify', 'anonymize', 'keep')),
    UNIQUE NULLS NOT DISTINCT (tbl, via, action)
);

-- How a column is replaced when its row is anonymized or minimized.
CREATE TABLE forget.masks (
    tbl         regclass NOT NULL,
    col         name NOT NULL,
    action      text NOT NULL CHECK (action IN ('anonymize', 'minimize')),
    expression  text NOT NULL,
    search_path text NOT NULL,
    PRIMARY KEY (tbl, col, action)
);

-- Named blockers: every row the query returns for a key blocks the actions.
CREATE TABLE forget.rules (
    name        text PRIMARY KEY,
    query       text NOT NULL,
    message     text NOT NULL,
    actions     text[] NOT NULL,
    subject     text REFERENCES forget.subjects (name) ON DELETE CASCADE,
    search_path text NOT NULL
);

-- Functions called in the action's own transaction.
CREATE TABLE forget.hooks (
    event text NOT NULL CHECK (event ~ '^(before|after)_(delete|anonymize|minimize|deactivate|reactivate|restore)$'),
    fn    regprocedure NOT NULL,
    PRIMARY KEY (event, fn)
);

-- The audit trail: one row per action and subject, never a column value.
-- Each row's hash covers its fields and the previous row's hash; ids follow
-- the chain's head (src/audit.rs writes every row).
CREATE TABLE forget.audit (
    id          bigint PRIMARY KEY,
    at          timestamptz NOT NULL,
    action      text NOT NULL CHECK (action IN ('delete', 'anonymize', 'minimize', 'restore', 'purge',
                                                'deactivate', 'reactivate', 'failed')),
    subject     text NOT NULL,
    subject_key text,
    actor       text,
    db_user     text NOT NULL,
    reason      text,
    rows        jsonb,
    error       text,
    prev_hash   text,
    hash        text NOT NULL
);

-- The head of the hash chain. Writers lock this single row, so the chain is
-- extended by one transaction at a time; a writer whose snapshot is too old
-- (REPEATABLE READ) gets a serialization failure instead of forking the
-- chain. (0.1.0's verify_audit() compared it with the newest audit row;
-- since 0.2.0 it is a lock only, see changes-0.2.0.sql.) The first writer inserts its one row:
-- an install script that inserted it would clash with the row a pg_dump
-- carries (the table is configuration), and a restore would fail.
CREATE TABLE forget.audit_head (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint,
    hash    text
);

-- The DeletedUser record of a delete or anonymize made with a grace period.
CREATE TABLE forget.deleted_clients (
    subject         text NOT NULL,
    original_key    text NOT NULL,
    identity        jsonb,
    deleted_at      timestamptz NOT NULL,
    reason          text,
    initiated_by    text,
    retention_until timestamptz NOT NULL,
    state           text NOT NULL CHECK (state IN ('retained', 'restored', 'purged')),
    action          text NOT NULL CHECK (action IN ('delete', 'anonymize')),
    id              bigserial PRIMARY KEY
);

-- What restore_client needs to undo a delete or anonymize: rows deleted
-- (operation 'insert': the whole row) and old values of columns overwritten
-- (operation 'update': primary key and old values). Readable by nobody but
-- the extension's owner.
CREATE TABLE forget.undo (
    deletion_id bigint NOT NULL REFERENCES forget.deleted_clients (id) ON DELETE CASCADE,
    tbl         oid NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('insert', 'update')),
    row_data    jsonb NOT NULL
);
CREATE INDEX ON forget.undo (deletion_id);
CREATE INDEX ON forget.deleted_clients (subject, original_key);

-- History of deactivations and reactivations.
CREATE TABLE forget.deactivations (
    subject text NOT NULL,
    key     text NOT NULL,
    action  text NOT NULL CHECK (action IN ('deactivate', 'reactivate')),
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text,
    reason  text,
    id      bigserial PRIMARY KEY
);
CREATE INDEX ON forget.deactivations (subject, key, at);

-- people_cleanup: named candidate conditions (predicates over the subject
-- row "s"), the switch and minimize_when, activity sources, and the
-- minimized mark for subjects without a minimized_column.
CREATE TABLE forget.cleanup_conditions (
    subject     text NOT NULL REFERENCES forget.subjects (name) ON DELETE CASCADE,
    name        text NOT NULL,
    predicate   text NOT NULL,
    search_path text NOT NULL,
    PRIMARY KEY (subject, name)
);
CREATE TABLE forget.cleanup_settings (
    subject       text PRIMARY KEY REFERENCES forget.subjects (name) ON DELETE CASCADE,
    enabled       boolean NOT NULL,
    minimize_when text,
    search_path   text NOT NULL
);
CREATE TABLE forget.activities (
    id        bigserial PRIMARY KEY,
    subject   text NOT NULL REFERENCES forget.subjects (name) ON DELETE CASCADE,
    tbl       regclass NOT NULL,
    ts_column name NOT NULL,
    via       name,
    UNIQUE NULLS NOT DISTINCT (subject, tbl, ts_column, via)
);
CREATE TABLE forget.minimized (
    subject text NOT NULL,
    key     text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);

SELECT pg_catalog.pg_extension_config_dump('forget.cleanup_conditions', '');
SELECT pg_catalog.pg_extension_config_dump('forget.cleanup_settings', '');
SELECT pg_catalog.pg_extension_config_dump('forget.activities', '');
SELECT pg_catalog.pg_extension_config_dump('forget.activities_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('forget.minimized', '');
SELECT pg_catalog.pg_extension_config_dump('forget.subjects', '');
SELECT pg_catalog.pg_extension_config_dump('forget.links', '');
SELECT pg_catalog.pg_extension_config_dump('forget.links_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('forget.policies', '');
SELECT pg_catalog.pg_extension_config_dump('forget.masks', '');
SELECT pg_catalog.pg_extension_config_dump('forget.rules', '');
SELECT pg_catalog.pg_extension_config_dump('forget.hooks', '');
SELECT pg_catalog.pg_extension_config_dump('forget.audit', '');
SELECT pg_catalog.pg_extension_config_dump('forget.audit_head', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deleted_clients', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deleted_clients_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deactivations', '');
SELECT pg_catalog.pg_extension_config_dump('forget.undo', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deactivations_id_seq', '');

-- Activity sources: a timestamp that shows a subject was active.
-- (forget.activities above.) Last activity = the latest of them and of the
-- subject's last reactivation.

-- Configuration version: sessions cache each subject's graph, plan and
-- prepared statements and rebuild them when this number moves. It moves on
-- every change to the configuration tables and on every DDL command, once
-- at once and once more at commit (a deferred trigger), so that no session
-- keeps a plan built while the change was not yet visible to it.
CREATE SEQUENCE forget.config_version;
CREATE TABLE forget._pending_bump (x int);

CREATE CONSTRAINT TRIGGER bump_at_commit AFTER INSERT ON forget._pending_bump
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION forget_internal._bump_at_commit();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['subjects', 'links', 'policies', 'masks', 'rules', 'hooks', 'activities',
                             'cleanup_conditions', 'cleanup_settings'] LOOP
        EXECUTE format('CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON forget.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION forget_internal._config_changed()', t);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER forget_ddl_changed ON ddl_command_end EXECUTE FUNCTION forget_internal._ddl_changed();
