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
-- Each row's hash covers its fields and the previous row's hash.
CREATE TABLE forget.audit (
    id          bigserial PRIMARY KEY,
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
SELECT pg_catalog.pg_extension_config_dump('forget.audit_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('forget.audit_head', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deleted_clients', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deleted_clients_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deactivations', '');
SELECT pg_catalog.pg_extension_config_dump('forget.undo', '');
SELECT pg_catalog.pg_extension_config_dump('forget.deactivations_id_seq', '');

-- The hash of one audit row. quote_nullable keeps fields apart (NULL and ''
-- differ) and the epoch keeps the timestamp independent of DateStyle.
CREATE FUNCTION forget._audit_hash(
    id bigint, at timestamptz, action text, subject text, subject_key text, actor text,
    db_user text, reason text, rows jsonb, error text, prev_hash text)
-- No SET clause, and STABLE like the quote_nullable and EXTRACT it calls, so
-- that PostgreSQL inlines it (an IMMUTABLE label would stop the inlining and
-- cost a SQL-function call per row, three times slower).
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.concat_ws('|',
        id, pg_catalog.quote_nullable(EXTRACT(epoch FROM at)), pg_catalog.quote_nullable(action),
        pg_catalog.quote_nullable(subject), pg_catalog.quote_nullable(subject_key),
        pg_catalog.quote_nullable(actor), pg_catalog.quote_nullable(db_user),
        pg_catalog.quote_nullable(reason), pg_catalog.quote_nullable(rows::text),
        pg_catalog.quote_nullable(error), pg_catalog.quote_nullable(prev_hash)), 'UTF8')), 'hex')
$$;

-- The one place that writes audit rows: one row per key, each with its rows
-- map, extending the hash chain under a single lock of its head, with one
-- NOTIFY per row (delivered at commit). Returns the last row's id. Only the
-- chain is a loop (each hash needs the one before, and these are simple
-- expressions, no queries); everything else is two statements, whether the
-- call writes one row or a cleanup batch's thousand.
CREATE FUNCTION forget._write_audit_many(
    p_action text, p_subject text, p_keys text[], p_actor text, p_reason text, p_rows jsonb[],
    p_error text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n      int := COALESCE(array_length(p_keys, 1), 0);
    at     timestamptz := clock_timestamp();
    usr    text := session_user;
    prev   text;
    ids    bigint[];
    prevs  text[];
    hashes text[];
    sent   bigint;
    notice text := '{"action" : ' || COALESCE(to_json(p_action)::text, 'null') || ', "subject" : '
                   || COALESCE(to_json(p_subject)::text, 'null') || ', "key" : ';
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    -- Lock the head: the next writer waits for our commit and then reads our hash.
    SELECT h.hash INTO prev FROM forget.audit_head h FOR UPDATE;
    FOR i IN 1 .. n LOOP
        ids[i] := nextval('forget.audit_id_seq'::regclass);
        prevs[i] := prev;
        prev := forget._audit_hash(ids[i], at, p_action, p_subject, p_keys[i], p_actor, usr, p_reason,
                                   p_rows[i], p_error, prevs[i]);
        hashes[i] := prev;
    END LOOP;
    WITH written AS (
        INSERT INTO forget.audit (id, at, action, subject, subject_key, actor, db_user, reason, rows, error,
                                  prev_hash, hash)
        SELECT u.id, at, p_action, p_subject, u.k, p_actor, usr, p_reason, u.r, p_error, u.p, u.h
        FROM unnest(ids, p_keys, p_rows, prevs, hashes) AS u(id, k, r, p, h)
        RETURNING id, subject_key
    ), head AS (
        UPDATE forget.audit_head SET last_id = ids[n], hash = prev
    )
    -- The payload is what json_build_object('action', .., 'subject', ..,
    -- 'key', .., 'audit_id', ..) prints, built from a prefix computed once:
    -- json_build_object looks up four types' output functions on every call.
    SELECT count(pg_notify('forget', notice || COALESCE(to_json(w.subject_key)::text, 'null')
                                     || ', "audit_id" : ' || w.id || '}'))
      INTO sent FROM written w;
    RETURN ids[n];
END
$$;

CREATE FUNCTION forget._write_audit(
    p_action text, p_subject text, p_key text, p_actor text, p_reason text, p_rows jsonb, p_error text)
RETURNS bigint LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT forget._write_audit_many(p_action, p_subject, ARRAY[p_key], p_actor, p_reason, ARRAY[p_rows], p_error) $$;

-- true when every audit row's hash matches its content, each row names its
-- predecessor's hash, and the chain's head is the newest row.
CREATE FUNCTION forget.verify_audit() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH chain AS (
        SELECT a.id, a.hash,
               a.hash = forget._audit_hash(a.id, a.at, a.action, a.subject, a.subject_key, a.actor,
                                           a.db_user, a.reason, a.rows, a.error, a.prev_hash)
               AND a.prev_hash IS NOT DISTINCT FROM pg_catalog.lag(a.hash) OVER (ORDER BY a.id) AS ok
        FROM forget.audit a
    )
    SELECT COALESCE(pg_catalog.bool_and(ok), true)
           AND (SELECT h.hash IS NOT DISTINCT FROM (SELECT c.hash FROM chain c ORDER BY c.id DESC LIMIT 1)
                FROM forget.audit_head h)
    FROM chain
$$;


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
