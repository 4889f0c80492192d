-- pg_forget: the public SQL interface (names, parameters and results as in
-- SPEC.md). Functions here are thin: they call the internal Rust functions
-- (named with a leading underscore) that pgrx creates.
--
-- Configuration functions pass the caller's search_path along so that the
-- SQL a DBA declares (conditions, masks, rules) later resolves names as it
-- did when declared. Action functions pin search_path: the caller's cannot
-- redirect the extension's own SQL.

CREATE OR REPLACE FUNCTION forget.register_subject(
    name text, tbl regclass, key_column name DEFAULT NULL, active_column name DEFAULT NULL,
    active_value text DEFAULT 'true', inactive_value text DEFAULT 'false', identity name[] DEFAULT NULL,
    minimized_column name DEFAULT NULL, run_as regrole DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._register_subject(name, tbl::pg_catalog.oid, key_column::pg_catalog.text,
        active_column::pg_catalog.text, active_value, inactive_value, identity::pg_catalog.text[],
        minimized_column::pg_catalog.text, pg_catalog.current_setting('search_path'),
        run_as::pg_catalog.oid) $$;

CREATE OR REPLACE FUNCTION forget.add_link(
    child regclass, child_column name, parent regclass, parent_column name DEFAULT NULL, condition text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._add_link(child::pg_catalog.oid, child_column::pg_catalog.text, parent::pg_catalog.oid,
        parent_column::pg_catalog.text, condition, pg_catalog.current_setting('search_path')) $$;

CREATE OR REPLACE FUNCTION forget.set_policy(tbl regclass, via name, action text, policy text)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._set_policy(tbl::pg_catalog.oid, via::pg_catalog.text, action, policy) $$;

CREATE OR REPLACE FUNCTION forget.mask(tbl regclass, col name, expression text, action text DEFAULT 'anonymize')
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._mask(tbl::pg_catalog.oid, col::pg_catalog.text, expression, action,
        pg_catalog.current_setting('search_path')) $$;

CREATE OR REPLACE FUNCTION forget.add_rule(
    name text, query text, message text, actions text[] DEFAULT '{delete,anonymize}', subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._add_rule(name, query, message, actions, subject, pg_catalog.current_setting('search_path')) $$;

-- fn: a name ('app.queue_files', resolved with the caller's search_path
-- for the hook signature (text, text, jsonb)) or a signature
-- ('app.queue_files(text, text, jsonb)'); bound when declared.
CREATE OR REPLACE FUNCTION forget."on"(event text, fn text)
RETURNS void LANGUAGE plpgsql
AS $$
DECLARE
    found pg_catalog.oid;
BEGIN
    IF fn IS NULL THEN
        RAISE EXCEPTION 'hook function must not be NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    found := CASE WHEN pg_catalog.strpos(fn, '(') > 0 THEN pg_catalog.to_regprocedure(fn)
                  ELSE pg_catalog.to_regprocedure(fn OPERATOR(pg_catalog.||) '(text, text, jsonb)') END;
    IF found IS NULL THEN
        RAISE EXCEPTION 'hook function % does not exist (it must take (subject text, key text, context jsonb))', fn
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM forget_internal._on(event, found);
END
$$;

CREATE OR REPLACE FUNCTION forget.graph(subject text DEFAULT NULL)
RETURNS TABLE(tbl regclass, via text, parent regclass, depth int, source text,
              on_delete text, on_anonymize text, on_minimize text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp SET jit = off
AS $$ SELECT g.tbl::regclass, g.via, g.parent::regclass, g.depth, g.source, g.on_delete, g.on_anonymize,
             g.on_minimize FROM forget_internal._graph(subject) g $$;


-- No statement of the extension is JIT-compiled: each touches a few rows
-- per subject, and compiling (done anew for every execution of a cached
-- plan) costs more than it saves; the public functions that run statements
-- carry SET jit = off, which also covers the user code they run.

-- The functions that take a subject key, each in three overloads (bigint,
-- text, uuid); the key reaches Rust as text and is cast to the subject's key
-- type there (22P02 when it does not cast). PL/pgSQL, not SQL: a SQL function
-- with a SET clause is never inlined and parses and plans its body again on
-- every call, while PL/pgSQL keeps the plan of its one statement for the
-- session (pgbench: account_status 0.13 ms as SQL, 0.10 ms as PL/pgSQL).
-- Raises the refusal the Rust function just returned from (src/errors.rs,
-- Refusal): PL/pgSQL sets the CONSTRAINT field, which pgrx cannot.
CREATE OR REPLACE FUNCTION forget_internal._refused() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM forget_internal._take_refusal() LOOP
        -- An option may not be NULL: refusals by rules have DETAIL and HINT,
        -- the others neither.
        IF r.detail IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state', MESSAGE = r.message,
                CONSTRAINT = r.constraint_name;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state', MESSAGE = r.message,
            DETAIL = r.detail, HINT = r.hint, CONSTRAINT = r.constraint_name;
    END LOOP;
END
$$;

DO $generate$
DECLARE
    f record;
    key_type text;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('eligibility',
         'action text DEFAULT ''delete'', subject text DEFAULT NULL',
         'TABLE(rule text, ok boolean, blocking bigint, message text)',
         'SELECT e.rule, e.ok, e.blocking, e.message FROM forget_internal._eligibility(key::pg_catalog.text, action, subject) e',
         true, false),
        ('delete_client',
         'reason text DEFAULT NULL, actor text DEFAULT NULL, dry_run boolean DEFAULT false, grace interval DEFAULT NULL, subject text DEFAULT NULL',
         'TABLE(tbl regclass, operation text, rows bigint)',
         'SELECT a.tbl::pg_catalog.regclass, a.operation, a.rows FROM forget_internal._act(''delete'', key::pg_catalog.text, reason, actor, dry_run, grace::pg_catalog.text, subject) a',
         true, true),
        ('anonymize_client',
         'reason text DEFAULT NULL, actor text DEFAULT NULL, dry_run boolean DEFAULT false, grace interval DEFAULT NULL, subject text DEFAULT NULL',
         'TABLE(tbl regclass, operation text, rows bigint)',
         'SELECT a.tbl::pg_catalog.regclass, a.operation, a.rows FROM forget_internal._act(''anonymize'', key::pg_catalog.text, reason, actor, dry_run, grace::pg_catalog.text, subject) a',
         true, true),
        ('export_client',
         'subject text DEFAULT NULL',
         'jsonb',
         'SELECT forget_internal._export(key::pg_catalog.text, subject)',
         true, false),
        ('last_activity',
         'subject text DEFAULT NULL',
         'timestamptz',
         'SELECT forget_internal._last_activity(key::pg_catalog.text, subject)',
         true, false),
        ('deactivate',
         'actor text, reason text, subject text DEFAULT NULL',
         'boolean',
         'SELECT forget_internal._deactivate(key::pg_catalog.text, actor, reason, subject)',
         true, true),
        ('reactivate',
         'actor text, reason text DEFAULT NULL, subject text DEFAULT NULL',
         'boolean',
         'SELECT forget_internal._reactivate(key::pg_catalog.text, actor, reason, subject)',
         true, false),
        ('restore_client',
         'actor text DEFAULT NULL, subject text DEFAULT NULL',
         'TABLE(tbl regclass, operation text, rows bigint)',
         'SELECT r.tbl::pg_catalog.regclass, r.operation, r.rows FROM forget_internal._restore(key::pg_catalog.text, actor, subject) r',
         true, true),
        ('account_status',
         'subject text DEFAULT NULL',
         'TABLE(active boolean, deactivated_at timestamptz, deactivated_by text, reason text, message text)',
         'SELECT a.active, a.deactivated_at, a.deactivated_by, a.reason, a.message FROM forget_internal._account_status(key::pg_catalog.text, subject) a',
         true, false)
    ) AS v(name, params, result, body, definer, refuses)
    LOOP
        FOREACH key_type IN ARRAY ARRAY['bigint', 'text', 'uuid'] LOOP
            EXECUTE pg_catalog.format(
                'CREATE OR REPLACE FUNCTION forget.%I(key %s, %s) RETURNS %s LANGUAGE plpgsql %s '
                'SET search_path = pg_catalog, pg_temp SET jit = off SET plan_cache_mode = force_generic_plan AS %L',
                f.name, key_type, f.params, f.result,
                CASE WHEN f.definer THEN 'SECURITY DEFINER' ELSE '' END,
                CASE WHEN f.result LIKE 'TABLE(%' AND f.refuses
                         THEN 'BEGIN RETURN QUERY ' || f.body || '; PERFORM forget_internal._refused(); END'
                     WHEN f.result LIKE 'TABLE(%' THEN 'BEGIN RETURN QUERY ' || f.body || '; END'
                     WHEN f.refuses
                         THEN 'DECLARE r ' || f.result || '; BEGIN r := (' || f.body || '); PERFORM forget_internal._refused(); RETURN r; END'
                     ELSE 'BEGIN RETURN (' || f.body || '); END' END);
        END LOOP;
    END LOOP;
END
$generate$;

-- Mask helpers, usable in mask expressions. Those without a SET clause are
-- inlined by PostgreSQL into the statement that calls them (a SET clause
-- would cost a function call per row): so every name and operator in them
-- is qualified, and the caller's search_path cannot redirect them.

-- A random address at forget.anonymous_email_domain: unique in practice
-- (122 random bits), so unique email columns stay satisfied.
CREATE OR REPLACE FUNCTION forget.random_email() RETURNS text LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$ SELECT 'anon-' OPERATOR(pg_catalog.||) pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text, '-', '')
             OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||)
             CASE WHEN COALESCE(pg_catalog.current_setting('forget.anonymous_email_domain', true), '')
                       OPERATOR(pg_catalog.=) ''
                  THEN 'anonymized.invalid'
                  ELSE pg_catalog.current_setting('forget.anonymous_email_domain', true) END $$;

-- length random characters from [a-z0-9].
CREATE OR REPLACE FUNCTION forget.random_string(length int DEFAULT 12) RETURNS text LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT string_agg(substr('abcdefghijklmnopqrstuvwxyz0123456789', 1 + floor(random() * 36)::int, 1), '')
      FROM generate_series(1, greatest(length, 0)) $$;

-- A stable pseudonym: the same value and salt always give the same result,
-- which cannot be turned back into the value without the salt.
CREATE OR REPLACE FUNCTION forget.pseudonym(value text, salt text DEFAULT '') RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN value IS NULL THEN NULL
             ELSE encode(sha256(convert_to(salt || ':' || value, 'UTF8')), 'hex') END $$;

-- The first n characters, the rest replaced by the filler ('Jo***').
CREATE OR REPLACE FUNCTION forget.keep_prefix(value text, n int, filler text DEFAULT '*') RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.left(value, n) OPERATOR(pg_catalog.||)
             pg_catalog.repeat(filler, GREATEST(pg_catalog.length(value) OPERATOR(pg_catalog.-) n, 0)) $$;

-- The last n characters, the rest replaced by the filler ('****1234').
CREATE OR REPLACE FUNCTION forget.keep_suffix(value text, n int, filler text DEFAULT '*') RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.repeat(filler, GREATEST(pg_catalog.length(value) OPERATOR(pg_catalog.-) n, 0))
             OPERATOR(pg_catalog.||) pg_catalog.right(value, n) $$;


CREATE OR REPLACE FUNCTION forget."check"(subject text DEFAULT NULL)
RETURNS TABLE(severity text, object text, problem text, hint text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp SET jit = off
AS $$ SELECT c.severity, c.object, c.problem, c.hint FROM forget_internal._check(subject) c $$;

-- people_cleanup ------------------------------------------------------------

CREATE OR REPLACE FUNCTION forget.add_cleanup_condition(name text, predicate text, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._add_cleanup_condition(name, predicate, subject, pg_catalog.current_setting('search_path')) $$;

CREATE OR REPLACE FUNCTION forget.drop_cleanup_condition(name text, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._drop_cleanup_condition(name, subject) $$;

CREATE OR REPLACE FUNCTION forget.set_cleanup(enabled boolean, minimize_when text DEFAULT NULL, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._set_cleanup(enabled, minimize_when, subject, pg_catalog.current_setting('search_path')) $$;

CREATE OR REPLACE FUNCTION forget.add_activity(tbl regclass, ts_column name, via name DEFAULT NULL, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._add_activity(tbl::pg_catalog.oid, ts_column::pg_catalog.text, via::pg_catalog.text, subject) $$;

-- One batch: at most batch_size candidates after after_key (keyset order),
-- handled set-based; if that fails, one subject at a time so that only the
-- failing ones are skipped, each recorded in the audit as 'failed'.
CREATE OR REPLACE FUNCTION forget_internal._cleanup_batch(batch_size int, dry_run boolean, subject text, after_key text,
                                      count_remaining boolean DEFAULT true)
RETURNS TABLE(candidates bigint, minimized bigint, deleted bigint, failed bigint, remaining bigint, last_key text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    size   int := COALESCE(batch_size, NULLIF(current_setting('forget.batch_size', true), '')::int, 1000);
    name   text := forget_internal._subject_name(subject);
    mins   text[];
    dels   text[];
    one    record;
    total  bigint;
    found  bigint;
BEGIN
    IF size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    minimized := 0; deleted := 0; failed := 0;
    SELECT c.minimize, c.delete, c.last_key, cardinality(c.minimize) + cardinality(c.delete) + c.blocked
      INTO mins, dels, last_key, found
      FROM forget_internal._cleanup_candidates(name, size, after_key, NOT dry_run) c;
    candidates := cardinality(mins) + cardinality(dels);
    -- Counting every candidate costs a full evaluation of the conditions
    -- over the whole table: skip it when this batch already holds them all,
    -- or when the caller (the procedure) does not ask (remaining is NULL).
    IF NOT count_remaining THEN
        total := NULL;
    ELSIF after_key IS NULL AND found < size THEN
        total := found;
    ELSE
        total := forget_internal._cleanup_count(name);
    END IF;
    IF dry_run THEN
        minimized := cardinality(mins);
        deleted := cardinality(dels);
        remaining := total - candidates;
        RETURN NEXT;
        RETURN;
    END IF;
    BEGIN
        minimized := forget_internal._cleanup_apply(name, 'minimize', mins);
        deleted := forget_internal._cleanup_apply(name, 'delete', dels);
    EXCEPTION WHEN OTHERS THEN
        -- One subject at a time, each in its own subtransaction.
        minimized := 0; deleted := 0;
        FOR one IN SELECT m.k, 'minimize' AS a FROM unnest(mins) m(k)
                   UNION ALL SELECT d.k, 'delete' FROM unnest(dels) d(k) LOOP
            BEGIN
                PERFORM forget_internal._cleanup_apply(name, one.a, ARRAY[one.k]);
                IF one.a = 'minimize' THEN minimized := minimized + 1; ELSE deleted := deleted + 1; END IF;
            EXCEPTION WHEN OTHERS THEN
                failed := failed + 1;
                PERFORM forget_internal._write_audit('failed', name, ARRAY[one.k], 'people_cleanup', one.a, NULL, SQLERRM);
            END;
        END LOOP;
    END;
    remaining := total - minimized - deleted;
    IF NOT count_remaining THEN
        PERFORM forget_internal._tally_cleanup_run(after_key IS NULL, name, candidates, minimized, deleted, failed);
    END IF;
    RETURN NEXT;
END
$$;

-- What a run did, in one line of the server log (LOG: written whatever
-- log_min_messages says up to WARNING, and not sent to clients by default),
-- since pg_cron's return_message holds only a command tag and NOTICEs reach
-- no log.
CREATE OR REPLACE FUNCTION forget_internal._log_run(run forget.runs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE LOG '%', format('pg_forget run %s: %s%s: %s in %s s', run.id, run.job,
        CASE WHEN run.subject IS NULL THEN '' ELSE format(' of %s', run.subject) END,
        COALESCE(NULLIF(concat_ws(', ',
            run.candidates || ' candidates', run.minimized || ' minimized', run.deleted || ' deleted',
            run.deactivated || ' deactivated', run.failed || ' failed', 'error: ' || run.error), ''),
            'nothing to do'),
        round(extract(epoch FROM run.finished_at - run.started_at), 3));
END
$$;

-- One row of forget.runs: what a scheduled (or manual) job did; logged.
CREATE OR REPLACE FUNCTION forget_internal._record_run(job text, subject text, started_at timestamptz,
                                              candidates bigint, minimized bigint, deleted bigint,
                                              deactivated bigint, failed bigint, error text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run forget.runs;
BEGIN
    INSERT INTO forget.runs (job, subject, started_at, finished_at, candidates, minimized, deleted,
                             deactivated, failed, error)
    VALUES (job, subject, started_at, clock_timestamp(), candidates, minimized, deleted, deactivated,
            failed, error)
    RETURNING * INTO run;
    PERFORM forget_internal._log_run(run);
END
$$;

-- run_people_cleanup's row of forget.runs, kept by its batches (the
-- extension's own code, so a role that may run the cleanup cannot write
-- other counts): the first batch inserts it, each later one adds its counts
-- in the same committed transaction, so an interrupted run still shows what
-- it did. The row's id lives in the backend (src/cleanup.rs), out of the
-- caller's reach.
CREATE OR REPLACE FUNCTION forget_internal._tally_cleanup_run(first boolean, subject text, c bigint, m bigint,
                                                               d bigint, f bigint)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run_id bigint := CASE WHEN first THEN NULL ELSE forget_internal._cleanup_run_id() END;
BEGIN
    IF run_id IS NULL THEN
        INSERT INTO forget.runs (job, subject, started_at, finished_at, candidates, minimized, deleted, failed)
        VALUES ('run_people_cleanup', subject, now(), clock_timestamp(), c, m, d, f)
        RETURNING id INTO run_id;
        PERFORM forget_internal._set_cleanup_run_id(run_id);
    ELSE
        UPDATE forget.runs SET candidates = candidates + c, minimized = minimized + m, deleted = deleted + d,
                               failed = failed + f, finished_at = clock_timestamp()
        WHERE id = run_id;
    END IF;
END
$$;

-- The end of run_people_cleanup: its row, logged (see _log_run).
CREATE OR REPLACE FUNCTION forget_internal._finish_cleanup_run() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run forget.runs;
BEGIN
    SELECT * INTO run FROM forget.runs WHERE id = forget_internal._cleanup_run_id();
    IF FOUND THEN
        PERFORM forget_internal._log_run(run);
    END IF;
    PERFORM forget_internal._set_cleanup_run_id(NULL);
END
$$;

-- One batch in the caller's transaction; recorded in forget.runs unless a
-- dry run (which only reads).
CREATE OR REPLACE FUNCTION forget.people_cleanup(batch_size int DEFAULT NULL, dry_run boolean DEFAULT false, subject text DEFAULT NULL)
RETURNS TABLE(candidates bigint, minimized bigint, deleted bigint, failed bigint, remaining bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    started timestamptz := clock_timestamp();
    b       record;
BEGIN
    SELECT * INTO b FROM forget_internal._cleanup_batch(batch_size, dry_run, subject, NULL, true);
    candidates := b.candidates; minimized := b.minimized; deleted := b.deleted; failed := b.failed;
    remaining := b.remaining;
    IF NOT dry_run THEN
        PERFORM forget_internal._record_run('people_cleanup', forget_internal._subject_name(subject), started, b.candidates,
                                   b.minimized, b.deleted, NULL, b.failed, NULL);
    END IF;
    RETURN NEXT;
END
$$;

-- Who the next cleanup would handle and how (minimize, destroy, or blocked
-- by which rules), changing nothing: read-only, no lock.
CREATE OR REPLACE FUNCTION forget.cleanup_preview(lim int DEFAULT 100, subject text DEFAULT NULL)
RETURNS TABLE(key text, fate text, blocked_by text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
AS $$ SELECT p.key, p.fate, p.blocked_by FROM forget_internal._cleanup_preview(lim, subject) p $$;
-- Where values (an email, a username, a name) still appear: every column of
-- a text type (text, varchar, char, name, json, jsonb, xml) or an array type
-- whose text contains one of the needles, case-insensitively, in every
-- user table the caller may read (with subject: in that subject's graph).
-- One scan per table, with the caller's privileges (tables it may not read
-- are skipped with a NOTICE); a NOTICE before each table of more than 10,000
-- rows shows progress. 22023 without needles.
CREATE OR REPLACE FUNCTION forget.locate(needles text[], subject text DEFAULT NULL)
RETURNS TABLE(tbl regclass, col name, matches bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off SET lock_timeout = '10s' AS $$
DECLARE
    patterns text[];
    t record;
    cols name[];
    counts bigint[];
    -- Row level security policies are other roles' code: run as the caller,
    -- they would run with its privileges. Tables with policies that apply
    -- to the caller are not searched (superusers and BYPASSRLS roles skip
    -- policies, owners skip them unless forced).
    exempt boolean := (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user);
BEGIN
    needles := ARRAY(SELECT n FROM unnest(needles) n WHERE n IS NOT NULL AND n <> '');
    IF cardinality(needles) = 0 THEN
        RAISE EXCEPTION 'locate needs at least one non-empty value to look for'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    patterns := ARRAY(SELECT '%' || replace(replace(replace(n, '\', '\\'), '%', '\%'), '_', '\_') || '%'
                      FROM unnest(needles) n);
    FOR t IN
        SELECT c.oid, c.reltuples, n.nspname,
               c.relrowsecurity AND NOT exempt
                 AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) AS policed
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND c.relispopulated
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
          AND has_schema_privilege(n.oid, 'USAGE')
          AND (locate.subject IS NULL
               OR c.oid IN (SELECT g.tbl FROM forget.graph(locate.subject) g)
               OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i
                            WHERE i.inhparent IN (SELECT g.tbl FROM forget.graph(locate.subject) g)))
        ORDER BY n.nspname, c.relname
    LOOP
        cols := ARRAY(SELECT a.attname FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
                      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND (ty.typcategory IN ('S', 'A') OR ty.typname IN ('json', 'jsonb', 'xml'))
                        AND has_column_privilege(t.oid, a.attnum, 'SELECT')
                      ORDER BY a.attnum);
        CONTINUE WHEN cardinality(cols) = 0;
        IF t.policed THEN
            RAISE NOTICE 'locate: % not searched: its row level security policies would run as %',
                t.oid::regclass, current_user;
            CONTINUE;
        END IF;
        IF t.reltuples > 10000 THEN
            RAISE NOTICE 'locate: scanning % (about % rows)', t.oid::regclass, t.reltuples::bigint;
        END IF;
        -- format('%s') prints a value with its type's output function, never
        -- a cast: a cast from a role's own type to text could run that role's
        -- function as the caller. COLLATE "default": a column's own
        -- (nondeterministic) collation would make ILIKE fail. A table that
        -- cannot be read (a lock held for 10 s) is named, not fatal.
        BEGIN
            EXECUTE format('SELECT ARRAY[%s] FROM %s x',
                           (SELECT string_agg(format('count(*) FILTER (WHERE (pg_catalog.format(''%%s'', x.%I) COLLATE "default") ILIKE ANY ($1))', c), ', ')
                            FROM unnest(cols) c),
                           t.oid::regclass)
                INTO counts USING patterns;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'locate: % not searched: %', t.oid::regclass, SQLERRM;
            CONTINUE;
        END;
        FOR i IN 1 .. cardinality(cols) LOOP
            IF counts[i] > 0 THEN
                tbl := t.oid; col := cols[i]; matches := counts[i];
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
    -- Tables the caller may not read at all are not searched: say so.
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
                 AND (NOT has_schema_privilege(n.oid, 'USAGE')
                      OR (NOT has_table_privilege(c.oid, 'SELECT') AND NOT has_any_column_privilege(c.oid, 'SELECT')))
                 AND locate.subject IS NULL) THEN
        RAISE NOTICE 'locate: some tables were not searched: % may not read them', current_user;
    END IF;
END
$$;

-- Runs batches until no candidate is left, committing after each, so a first
-- run over a large backlog never becomes one giant transaction. No SET clause
-- and not SECURITY DEFINER: PostgreSQL allows COMMIT only without them; every
-- name below is schema-qualified instead.
-- After each committed batch it pauses for forget.cleanup_pause (an
-- interval, or milliseconds; 0 by default) to leave room for other work, and
-- records the whole run in forget.runs at the end.
CREATE OR REPLACE PROCEDURE forget.run_people_cleanup(batch_size int DEFAULT NULL, subject text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    r          record;
    after      text;
    batches    int := 0;
    minimized  bigint := 0;
    deleted    bigint := 0;
    failed     bigint := 0;
    pause_text text := pg_catalog.btrim(COALESCE(pg_catalog.current_setting('forget.cleanup_pause', true), ''));
    pause      float8;
BEGIN
    pause := CASE WHEN pause_text OPERATOR(pg_catalog.=) '' THEN 0
                  WHEN pause_text OPERATOR(pg_catalog.~) '^[0-9]+(\.[0-9]+)?$'
                      THEN pause_text::float8 OPERATOR(pg_catalog./) 1000
                  ELSE pg_catalog.date_part('epoch', pause_text::pg_catalog.interval) END;
    LOOP
        -- No count of what remains: that would read the whole table once
        -- more; the loop ends when a batch finds nobody.
        SELECT * INTO r FROM forget_internal._cleanup_batch(batch_size, false, subject, after, false);
        EXIT WHEN r.last_key IS NULL;
        after := r.last_key;
        batches := batches OPERATOR(pg_catalog.+) 1;
        minimized := minimized OPERATOR(pg_catalog.+) r.minimized;
        deleted := deleted OPERATOR(pg_catalog.+) r.deleted;
        failed := failed OPERATOR(pg_catalog.+) r.failed;
        RAISE NOTICE 'pg_forget people_cleanup batch %: % candidates, % minimized, % deleted, % failed (% handled so far)',
            batches, r.candidates, r.minimized, r.deleted, r.failed, minimized OPERATOR(pg_catalog.+) deleted;
        COMMIT;
        IF pause OPERATOR(pg_catalog.>) 0 THEN
            PERFORM pg_catalog.pg_sleep(pause);
        END IF;
    END LOOP;
    PERFORM forget_internal._finish_cleanup_run();
END
$$;

-- Deactivation ----------------------------------------------------------------

-- inactive_for NULL: take forget.inactive_for (what a scheduled job does).
CREATE OR REPLACE FUNCTION forget.deactivate_inactive(
    inactive_for interval, actor text DEFAULT 'system', reason text DEFAULT NULL,
    dry_run boolean DEFAULT false, subject text DEFAULT NULL)
RETURNS TABLE(key text, last_activity timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    started timestamptz := clock_timestamp();
    n       bigint;
BEGIN
    RETURN QUERY SELECT d.key, d.last_activity
        FROM forget_internal._deactivate_inactive(inactive_for::text, actor, reason, dry_run, subject) d;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF NOT dry_run THEN
        PERFORM forget_internal._record_run('deactivate_inactive', forget_internal._subject_name(subject), started, NULL, NULL,
                                   NULL, n, NULL, NULL);
    END IF;
END
$$;

-- Schedules in pg_cron ----------------------------------------------------------

-- The command each job runs (settings come from GUCs: ALTER DATABASE ...
-- SET); 22023 for an unknown job.
CREATE OR REPLACE FUNCTION forget_internal._job_command(job text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    command text := CASE job
        WHEN 'people_cleanup' THEN 'CALL forget.run_people_cleanup()'
        -- pg_cron's return_message is the command tag: SELECT <subjects deactivated>.
        WHEN 'deactivate_inactive' THEN 'SELECT key, last_activity FROM forget.deactivate_inactive(NULL)'
        WHEN 'purge_expired' THEN 'SELECT forget.purge_expired()'
    END;
BEGIN
    IF command IS NULL THEN
        RAISE EXCEPTION 'unknown job "%": use people_cleanup, deactivate_inactive or purge_expired', job
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN command;
END
$$;

CREATE OR REPLACE FUNCTION forget_internal._require_pg_cron(in_cron_db text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NOT NULL THEN
        -- pg_cron is loaded and lives in another database.
        RAISE EXCEPTION 'pg_cron is not installed in database % (it runs in database %)', current_database(), cron_db
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('connected to database %s as a role allowed to schedule there, run: %s', cron_db, in_cron_db);
    END IF;
    RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = format('apt-get install postgresql-15-cron; in postgresql.conf set shared_preload_libraries = '
                            '''pg_cron'' and cron.database_name (the database pg_cron is to live in); restart '
                            'PostgreSQL; CREATE EXTENSION pg_cron there; then run there: %s', in_cron_db);
END
$$;

-- The command schedule() registers for a job, for installations whose
-- pg_cron lives in another database (cron.schedule_in_database there).
CREATE OR REPLACE FUNCTION forget.cron_command(job text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT forget_internal._job_command(job) $$;

-- Registers (or reschedules: same name, replaced) a job with pg_cron. The job
-- runs as the calling role, which needs EXECUTE on what the job calls.
CREATE OR REPLACE FUNCTION forget.schedule(job text, cron text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    command text := forget_internal._job_command(job);
    id      bigint;
BEGIN
    PERFORM forget_internal._require_pg_cron(format('SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                                           'pg_forget_' || job, cron, command, current_database()));
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO id USING 'pg_forget_' || job, cron, command;
    RETURN id;
END
$$;

CREATE OR REPLACE FUNCTION forget.unschedule(job text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    PERFORM forget_internal._job_command(job);
    PERFORM forget_internal._require_pg_cron(format('SELECT cron.unschedule(%L);', 'pg_forget_' || job));
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO found USING 'pg_forget_' || job;
    IF NOT found THEN
        RAISE EXCEPTION 'job "%" is not scheduled', job USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO found USING 'pg_forget_' || job;
    RETURN found;
END
$$;

-- Soft deletion ---------------------------------------------------------------

-- Destroys the undo data and the identity of every record whose recovery
-- window has passed; the record stays, with no personal data, as 'purged'.
-- A deleted subject's deactivation history and minimized mark go too.
-- One statement: the records, their undo data, and one audit call per
-- subject for all its purged keys.
CREATE OR REPLACE FUNCTION forget.purge_expired() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $purge$
DECLARE
    started timestamptz := clock_timestamp();
    n       bigint;
BEGIN
    WITH purged AS (
        UPDATE forget.deleted_clients SET state = 'purged', identity = NULL
        WHERE state = 'retained' AND retention_until < now()
        RETURNING id, subject, original_key, action
    ), undone AS (
        DELETE FROM forget.undo WHERE deletion_id IN (SELECT p.id FROM purged p)
    ), history AS (
        DELETE FROM forget.deactivations d USING purged p
        WHERE p.action = 'delete' AND d.subject = p.subject AND d.key = p.original_key
    ), marks AS (
        DELETE FROM forget.minimized m USING purged p
        WHERE p.action = 'delete' AND m.subject = p.subject AND m.key = p.original_key
    ), per_subject AS (
        SELECT p.subject, array_agg(p.original_key ORDER BY p.id) AS keys FROM purged p GROUP BY p.subject
    )
    SELECT COALESCE(sum(cardinality(s.keys)), 0)::bigint INTO n
    FROM per_subject s, LATERAL forget_internal._write_audit('purge', s.subject, s.keys, 'purge_expired', NULL, NULL, NULL) a;
    PERFORM forget_internal._record_run('purge_expired', NULL, started, NULL, NULL, n, NULL, NULL, NULL);
    RETURN n;
END
$purge$;

-- Audit -----------------------------------------------------------------------

-- true when every audit row's hash matches its content, each row names its
-- predecessor's hash (the first remaining row: the base prune_audit
-- recorded) and its successor's position (the newest row: none).
CREATE OR REPLACE FUNCTION forget.verify_audit() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
    -- Linked rows only (this transaction's own rows are linked when it
    -- commits), in one ordered pass: the links and every hash, recomputed
    -- by the code that wrote it (src/audit.rs).
    SELECT forget_internal._verify_chain()
$$;

-- Removes the audit rows recorded before `before` (oldest first, by id) and
-- returns how many; the hash of the last one removed becomes the chain's
-- recorded base (forget.audit_base), from which verify_audit() still checks
-- what remains. Only the extension's owner may prune.
CREATE OR REPLACE FUNCTION forget.prune_audit(before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last_row record;
    removed  bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- No writer extends the chain meanwhile.
    PERFORM 1 FROM forget.audit_head FOR UPDATE;
    SELECT a.seq AS id, a.hash INTO last_row FROM forget.audit a
     WHERE a.at < before AND a.seq IS NOT NULL ORDER BY a.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    DELETE FROM forget.audit a WHERE a.seq <= last_row.id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    INSERT INTO forget.audit_base AS b (one, id, hash, pruned_at, pruned)
    VALUES (true, last_row.id, last_row.hash, now(), removed)
    ON CONFLICT (one) DO UPDATE SET id = EXCLUDED.id, hash = EXCLUDED.hash, pruned_at = EXCLUDED.pruned_at,
                                    pruned = b.pruned + EXCLUDED.pruned;
    RETURN removed;
END
$$;

-- Replay after restoring an older backup -------------------------------------

-- The erasures recorded since a moment (all, when since is NULL), as a jsonb
-- array of {audit_id, at, action, subject, key}: the delete, anonymize and
-- purge rows of the audit, no personal data, leaving out subjects restored
-- afterwards. Taken from the newer database before an older backup is
-- restored, and given to replay_erasures() there.
CREATE OR REPLACE FUNCTION forget.erasure_log(since timestamptz DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object('audit_id', a.id, 'at', a.at, 'action', a.action,
                                                 'subject', a.subject, 'key', a.subject_key) ORDER BY a.id),
                    '[]'::jsonb)
    FROM forget.audit a
    WHERE a.action IN ('delete', 'anonymize', 'purge')
      AND (since IS NULL OR a.at >= since)
      AND NOT EXISTS (SELECT 1 FROM forget.audit r
                      WHERE r.action = 'restore' AND r.subject = a.subject
                        AND r.subject_key = a.subject_key AND r.id > a.id)
$$;

-- Purges the retained recovery records of one key (state purged, identity
-- and undo data gone, audited as purge); true when there were any. With
-- dry_run only tells.
CREATE OR REPLACE FUNCTION forget_internal._purge_retained(subject text, key text, actor text, reason text, dry_run boolean)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    retained bigint[];
BEGIN
    SELECT array_agg(d.id) INTO retained FROM forget.deleted_clients d
     WHERE d.subject = _purge_retained.subject AND d.original_key = _purge_retained.key AND d.state = 'retained';
    IF retained IS NULL THEN
        RETURN false;
    END IF;
    IF NOT dry_run THEN
        UPDATE forget.deleted_clients d SET state = 'purged', identity = NULL WHERE d.id = ANY (retained);
        DELETE FROM forget.undo u WHERE u.deletion_id = ANY (retained);
        PERFORM forget_internal._write_audit('purge', _purge_retained.subject, ARRAY[_purge_retained.key], actor, reason, NULL, NULL);
    END IF;
    RETURN true;
END
$$;

-- Carries out every erasure of a log from erasure_log() again, oldest first,
-- each in its own subtransaction: deletes and anonymizations without a
-- grace period (forget.grace_period does not apply: a replayed erasure is
-- final, so a recovery record the restored database retains for the key is
-- purged too), purges of a recovery record the restored database still
-- retains. One row per entry: replayed, already_gone (no such subject,
-- nothing retained), blocked (a rule blocks it now: the DBA decides) or
-- failed (the error is raised as a WARNING). Each replay is audited, its
-- reason naming the original audit id.
CREATE OR REPLACE FUNCTION forget.replay_erasures(log jsonb, dry_run boolean DEFAULT false)
RETURNS TABLE(audit_id bigint, subject text, key text, outcome text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off SET forget.grace_period = '' AS $$
DECLARE
    e   record;
    why text;
BEGIN
    IF log IS NULL OR jsonb_typeof(log) <> 'array' THEN
        RAISE EXCEPTION 'log must be the jsonb array forget.erasure_log() returns'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR e IN SELECT x.audit_id, x.action, x.subject, x.key
             FROM jsonb_to_recordset(log) AS x(audit_id bigint, action text, subject text, key text)
             ORDER BY x.audit_id LOOP
        IF e.audit_id IS NULL OR e.subject IS NULL OR e.key IS NULL
           OR e.action IS NULL OR e.action NOT IN ('delete', 'anonymize', 'purge') THEN
            RAISE EXCEPTION 'not an erasure_log() entry: audit_id %, action %', e.audit_id, e.action
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        audit_id := e.audit_id;
        subject := e.subject;
        key := e.key;
        why := 'replay of audit ' || e.audit_id;
        BEGIN
            IF e.action = 'purge' THEN
                outcome := CASE WHEN forget_internal._purge_retained(e.subject, e.key, 'replay_erasures', why, dry_run)
                                THEN 'replayed' ELSE 'already_gone' END;
            ELSE
                PERFORM 1 FROM forget_internal._act(e.action, e.key, why, 'replay_erasures', dry_run, NULL, e.subject);
                PERFORM forget_internal._refused();
                outcome := 'replayed';
            END IF;
        EXCEPTION
            WHEN no_data_found THEN
                -- Soft-deleted in the backup: what the delete would purge.
                outcome := CASE WHEN e.action = 'delete'
                                     AND forget_internal._purge_retained(e.subject, e.key, 'replay_erasures', why, dry_run)
                                THEN 'replayed' ELSE 'already_gone' END;
            WHEN object_not_in_prerequisite_state THEN
                outcome := 'blocked';
            WHEN OTHERS THEN
                RAISE WARNING 'pg_forget replay of audit %: %', e.audit_id, SQLERRM;
                outcome := 'failed';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Trust ------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION forget.trust(role regrole, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._trust(role::pg_catalog.oid, subject, true) $$;

CREATE OR REPLACE FUNCTION forget.distrust(role regrole, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._trust(role::pg_catalog.oid, subject, false) $$;

-- Capabilities ---------------------------------------------------------------

-- What each capability needs: the routines (every key overload) and table
-- privileges. 22023 for an unknown capability.
CREATE OR REPLACE FUNCTION forget_internal._capability(capability text)
RETURNS TABLE(privilege text, object text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    routines text[] := CASE capability
        WHEN 'delete' THEN ARRAY['delete_client']
        WHEN 'anonymize' THEN ARRAY['anonymize_client']
        WHEN 'restore' THEN ARRAY['restore_client']
        WHEN 'export' THEN ARRAY['export_client']
        WHEN 'eligibility' THEN ARRAY['eligibility']
        WHEN 'status' THEN ARRAY['account_status', 'last_activity']
        WHEN 'deactivate' THEN ARRAY['deactivate', 'reactivate', 'deactivate_inactive']
        WHEN 'cleanup' THEN ARRAY['people_cleanup', 'run_people_cleanup', 'cleanup_preview', '_cleanup_batch',
                                  '_finish_cleanup_run']
        WHEN 'audit' THEN ARRAY['verify_audit', 'erasure_log']
    END;
BEGIN
    IF routines IS NULL THEN
        RAISE EXCEPTION 'unknown capability "%": use delete, anonymize, restore, export, eligibility, status, deactivate, cleanup or audit',
            capability USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT CASE p.prokind WHEN 'p' THEN 'EXECUTE ON PROCEDURE' ELSE 'EXECUTE ON FUNCTION' END,
               p.oid::regprocedure::text
        FROM pg_proc p
        WHERE p.pronamespace IN ('forget'::regnamespace, 'forget_internal'::regnamespace)
          AND p.proname = ANY (routines)
        ORDER BY 2;
    IF capability = 'audit' THEN
        RETURN QUERY VALUES ('SELECT ON TABLE', 'forget.audit'), ('SELECT ON TABLE', 'forget.runs');
    END IF;
END
$$;

-- grant(capability, role) / revoke(capability, role): give a role (or take
-- back) what one capability needs, for every key overload. Needs the right
-- to grant them (the extension's owner, a superuser).
CREATE OR REPLACE FUNCTION forget_internal._apply_capability(capability text, role regrole, give boolean)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM forget_internal._capability(capability) LOOP
        EXECUTE CASE WHEN give THEN format('GRANT %s %s TO %s', o.privilege, o.object, role)
                     ELSE format('REVOKE %s %s FROM %s', o.privilege, o.object, role) END;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION forget."grant"(capability text, role regrole)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._apply_capability(capability, role, true) $$;

CREATE OR REPLACE FUNCTION forget."revoke"(capability text, role regrole)
RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._apply_capability(capability, role, false) $$;

-- Removing configuration -----------------------------------------------------
-- Each removes one declaration (22023 when it names nothing declared).

CREATE OR REPLACE FUNCTION forget.drop_link(child regclass, child_column name) RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._drop_link(child::pg_catalog.oid, child_column::pg_catalog.text) $$;

CREATE OR REPLACE FUNCTION forget.drop_policy(tbl regclass, via name, action text) RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._drop_policy(tbl::pg_catalog.oid, via::pg_catalog.text, action) $$;

CREATE OR REPLACE FUNCTION forget.drop_mask(tbl regclass, col name, action text DEFAULT 'anonymize') RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._drop_mask(tbl::pg_catalog.oid, col::pg_catalog.text, action) $$;

CREATE OR REPLACE FUNCTION forget.drop_rule(name text, subject text DEFAULT NULL) RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._drop_rule(name, subject) $$;

CREATE OR REPLACE FUNCTION forget.drop_activity(tbl regclass, ts_column name, subject text DEFAULT NULL) RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._drop_activity(tbl::pg_catalog.oid, ts_column::pg_catalog.text, subject) $$;

CREATE OR REPLACE FUNCTION forget.unregister_subject(name text) RETURNS void LANGUAGE sql
AS $$ SELECT forget_internal._unregister_subject(name) $$;

-- fn as on() takes it: a name (for the hook signature) or a signature.
CREATE OR REPLACE FUNCTION forget.off(event text, fn text)
RETURNS void LANGUAGE plpgsql
AS $$
DECLARE
    found pg_catalog.oid;
BEGIN
    found := CASE WHEN pg_catalog.strpos(fn, '(') > 0 THEN pg_catalog.to_regprocedure(fn)
                  ELSE pg_catalog.to_regprocedure(fn OPERATOR(pg_catalog.||) '(text, text, jsonb)') END;
    IF found IS NULL THEN
        RAISE EXCEPTION 'hook function % does not exist', fn USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM forget_internal._off(event, found);
END
$$;


-- Keep this block last: it covers every routine defined above.
-- Privileges: nothing is executable or readable by PUBLIC except the mask
-- helpers; the DBA grants each action separately (see README, Privileges).
REVOKE ALL ON ALL TABLES IN SCHEMA forget FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA forget FROM PUBLIC;
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA forget FROM PUBLIC;
-- Internal helpers: executable by the extension's own functions (their
-- owner) alone, but for the few granted below, which run with their
-- caller's rights and are called by name as the subject's run-as role
-- (hence USAGE on the schema).
REVOKE ALL ON SCHEMA forget_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA forget_internal TO PUBLIC;
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA forget_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA forget TO PUBLIC;
GRANT EXECUTE ON FUNCTION forget.random_email(), forget.random_string(int), forget.pseudonym(text, text),
    forget.keep_prefix(text, int, text), forget.keep_suffix(text, int, text) TO PUBLIC;

-- A role that may call the cleanup's batch (granted with 0.1.0, before
-- run_people_cleanup recorded its run at the end) may also finish a run.
DO $finish$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::pg_catalog.regrole AS role
             FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'forget_internal'::pg_catalog.regnamespace
               AND p.proname OPERATOR(pg_catalog.=) '_cleanup_batch'
               AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
               AND a.grantee OPERATOR(pg_catalog.<>) 0
               AND a.grantee OPERATOR(pg_catalog.<>) p.proowner LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION forget_internal._finish_cleanup_run() TO %s', r.role);
    END LOOP;
END
$finish$;

-- DROP EXTENSION pg_forget refuses while the audit holds rows or recovery
-- records are retained, unless forget.allow_drop is on (src/drop_guard.rs).
DO $guard$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'forget_drop_guard') THEN
        CREATE EVENT TRIGGER forget_drop_guard ON ddl_command_start WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
            EXECUTE FUNCTION forget_internal._drop_guard();
    END IF;
END
$guard$;

-- What user code of an action may see of the extension's records while it
-- runs as the subject's run-as role (src/identity.rs): the undo data of the
-- action's own recovery record (written by the action's statement, read by
-- a restore), and the acting subject's deactivation history and minimized
-- marks (read by conditions and last activity). Outside an action they show
-- nothing; the tables themselves stay the extension owner's alone.
CREATE OR REPLACE VIEW forget.undo_current WITH (security_barrier) AS
    SELECT u.deletion_id, u.tbl, u.operation, u.row_data FROM forget.undo u
    WHERE u.deletion_id OPERATOR(pg_catalog.=) forget_internal._acting_recovery()
    WITH CASCADED CHECK OPTION;
CREATE OR REPLACE VIEW forget.deactivations_current WITH (security_barrier) AS
    SELECT d.subject, d.key, d.action, d.at FROM forget.deactivations d
    WHERE d.subject OPERATOR(pg_catalog.=) forget_internal._acting_subject();
CREATE OR REPLACE VIEW forget.minimized_current WITH (security_barrier) AS
    SELECT m.subject, m.key, m.at FROM forget.minimized m
    WHERE m.subject OPERATOR(pg_catalog.=) forget_internal._acting_subject();
REVOKE ALL ON forget.undo_current, forget.deactivations_current, forget.minimized_current FROM PUBLIC;
GRANT SELECT, INSERT ON forget.undo_current TO PUBLIC;
GRANT SELECT ON forget.deactivations_current, forget.minimized_current TO PUBLIC;
GRANT EXECUTE ON FUNCTION forget_internal._acting_subject(), forget_internal._acting_recovery() TO PUBLIC;
-- Declarations are checked as the run-as role that will run them: the mask
-- check runs the given SQL with its caller's own privileges, no more.
GRANT EXECUTE ON FUNCTION forget_internal._mask_problem(regclass, name, text, text, boolean),
                          forget_internal._candidate_plan(text, text) TO PUBLIC;

