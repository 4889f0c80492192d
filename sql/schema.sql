-- pg_forget: configuration tables and records.
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
-- chain. verify_audit() also compares it with the newest audit row, which
-- reveals removal of the newest rows.
CREATE TABLE forget.audit_head (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint,
    hash    text
);
INSERT INTO forget.audit_head VALUES (true, NULL, NULL);

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

-- The doctor's mask check: NULL when the mask still validates, else the
-- error PostgreSQL gives (the EXCEPTION block undoes the attempt).
CREATE FUNCTION forget._mask_problem(tbl regclass, col name, expression text, path text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', path, true);
    EXECUTE pg_catalog.format('SELECT (%s) FROM ONLY %s LIMIT 0', expression, tbl);
    EXECUTE pg_catalog.format('UPDATE ONLY %s SET %I = (%s) WHERE false', tbl, col, expression);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END
$$;

-- The doctor's look at the cleanup candidate query: its plan as EXPLAIN
-- (FORMAT JSON, VERBOSE) prints it for the first batch of 1000, or the error
-- PostgreSQL gives when a condition no longer plans (a dropped column). The
-- caller sets the planner settings a batch uses; the EXCEPTION block keeps
-- an error from ending the doctor's report.
CREATE FUNCTION forget._candidate_plan(query text, path text, OUT plan json, OUT problem text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', path, true);
    EXECUTE 'EXPLAIN (FORMAT JSON, VERBOSE, COSTS OFF) ' || query INTO plan USING NULL::text, 1000::bigint;
EXCEPTION WHEN OTHERS THEN
    problem := SQLERRM;
END
$$;

-- Statement trigger placed on activity tables by add_activity: a new row
-- (a role, a participation) clears its subject's minimized mark.
-- TG_ARGV: subject name, the column linking the row to the subject.
CREATE FUNCTION forget._activity_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s        forget.subjects;
    key_type text;
    keys     text[];
BEGIN
    SELECT * INTO s FROM forget.subjects WHERE name = TG_ARGV[0];
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT array_agg(DISTINCT %I::text) FROM forget_new_rows', TG_ARGV[1]) INTO keys;
    IF s.minimized_column IS NOT NULL THEN
        SELECT format_type(a.atttypid, a.atttypmod) INTO key_type
        FROM pg_attribute a WHERE a.attrelid = s.tbl AND a.attname = s.key_column;
        EXECUTE format('UPDATE %s SET %I = NULL WHERE %I = ANY ($1::%s[]) AND %I IS NOT NULL',
                       s.tbl, s.minimized_column, s.key_column, key_type, s.minimized_column) USING keys;
    ELSE
        DELETE FROM forget.minimized m WHERE m.subject = s.name AND m.key = ANY (keys);
    END IF;
    RETURN NULL;
END
$$;

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

CREATE FUNCTION forget._bump_now() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('forget.config_version'::pg_catalog.regclass);
    INSERT INTO forget._pending_bump VALUES (1);
END
$$;

CREATE FUNCTION forget._bump_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('forget.config_version'::pg_catalog.regclass);
    DELETE FROM forget._pending_bump;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER bump_at_commit AFTER INSERT ON forget._pending_bump
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION forget._bump_at_commit();

CREATE FUNCTION forget._config_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM forget._bump_now();
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['subjects', 'links', 'policies', 'masks', 'rules', 'hooks', 'activities',
                             'cleanup_conditions', 'cleanup_settings'] LOOP
        EXECUTE format('CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON forget.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION forget._config_changed()', t);
    END LOOP;
END
$$;

CREATE FUNCTION forget._ddl_changed() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM forget._bump_now();
END
$$;
CREATE EVENT TRIGGER forget_ddl_changed ON ddl_command_end EXECUTE FUNCTION forget._ddl_changed();
