-- pg_forget: PL/pgSQL functions that the tables' triggers need (installed
-- first) and helpers of the doctor. Every routine is CREATE OR REPLACE: an
-- upgrade script runs this file again (see scripts/upgrade-script.sh).

-- Internal helpers live in schema forget_internal (created by pgrx from
-- src/lib.rs just before this file), so that \df forget.*
-- lists the documented interface only; nobody but the extension may call
-- them (privileges at the end of sql/api.sql). An upgrade from 0.1.0 moves
-- its helpers there first (their OIDs, and what depends on them, such as
-- the activity triggers on user tables, stay); every CREATE OR REPLACE
-- below then finds them in their new schema.

DO $move$
DECLARE
    f record;
BEGIN
    -- 0.1.0's DDL event trigger calls its helpers by their old names: off
    -- until the end of this file has replaced it.
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname OPERATOR(pg_catalog.=) 'forget_ddl_changed') THEN
        ALTER EVENT TRIGGER forget_ddl_changed DISABLE;
    END IF;
    FOR f IN SELECT p.oid::pg_catalog.regprocedure AS old,
                    pg_catalog.to_regprocedure(pg_catalog.format('forget_internal.%I(%s)', p.proname,
                        pg_catalog.oidvectortypes(p.proargtypes))) AS moved
             FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'forget'::pg_catalog.regnamespace
               AND p.proname OPERATOR(pg_catalog.~~) '\_%' LOOP
        -- Already created in its new schema earlier in this script (the
        -- order of what pgrx generates is not fixed): the old one goes.
        IF f.moved IS NULL THEN
            EXECUTE pg_catalog.format('ALTER ROUTINE %s SET SCHEMA forget_internal', f.old);
        ELSE
            EXECUTE pg_catalog.format('DROP ROUTINE %s', f.old);
        END IF;
    END LOOP;
END
$move$;

-- Why a mask cannot work, or NULL when it can: mask() refuses such a mask
-- (22023, naming the column) and check() reports one that stopped working.
-- It cannot work when the column is generated or gone, when PostgreSQL
-- cannot use the expression for the column (unknown names, a type that does
-- not fit), when it gives NULL for a NOT NULL column, or when it is a
-- constant for a column under a unique index (also an expression index)
-- whose other columns are not unique by themselves: the second anonymized
-- row would collide. With trial, the mask is also tried on up to 100 of
-- the table's rows (rows locked by others are skipped) in a subtransaction
-- that is always rolled back, which finds what only data shows: a value
-- too long for the column, a CHECK constraint, a collision. The table's
-- triggers fire during the trial and are rolled back with it.
CREATE OR REPLACE FUNCTION forget_internal._mask_problem(tbl regclass, col name, expression text, path text,
                                                trial boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    attnum     int2;
    not_null   boolean;
    generated  boolean;
    is_unique  boolean;
    constant   boolean;
    gives_null boolean;
    repeats    boolean;
BEGIN
    SELECT a.attnum, a.attnotnull, a.attgenerated <> '' INTO attnum, not_null, generated
      FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RETURN pg_catalog.format('column %I of %s does not exist', col, tbl);
    ELSIF generated THEN
        RETURN pg_catalog.format('column %I of %s is generated: PostgreSQL computes it, a mask cannot set it', col, tbl);
    END IF;
    -- A unique index on the column (or on an expression of it) that no
    -- unique index on its other columns makes safe for a constant.
    SELECT EXISTS (
        SELECT 1 FROM pg_index i
         WHERE i.indrelid = tbl AND i.indisunique
           AND (attnum = ANY (i.indkey::int2[])
                OR EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                              AND d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl
                              AND d.refobjsubid = attnum))
           AND NOT EXISTS (SELECT 1 FROM pg_index j
                            WHERE j.indrelid = tbl AND j.indisunique AND j.indexprs IS NULL AND j.indpred IS NULL
                              AND NOT (attnum = ANY (j.indkey::int2[]))
                              AND (j.indkey::int2[]) <@ (i.indkey::int2[])))
      INTO is_unique;
    -- The declared search_path is in force only while PostgreSQL parses and
    -- runs the mask (inside each block below, whose end or rollback puts
    -- this function's own path back): nothing of this function's own is
    -- evaluated under it, so no look-alike on that path runs here.
    BEGIN
        PERFORM pg_catalog.set_config('search_path', path, true);
        EXECUTE pg_catalog.format('SELECT (%s) FROM ONLY %s LIMIT 0', expression, tbl);
        -- Planned, not run: assignable to the column (EXPLAIN works in a
        -- read-only transaction and on a standby).
        EXECUTE pg_catalog.format('EXPLAIN UPDATE ONLY %s SET %I = (%s) WHERE false', tbl, col, expression);
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLERRM;
    END;
    -- A constant names no column: it evaluates without the row.
    BEGIN
        PERFORM pg_catalog.set_config('search_path', path, true);
        EXECUTE pg_catalog.format('SELECT (%1$s) IS NULL, (%1$s) IS NOT DISTINCT FROM (%1$s)', expression)
           INTO gives_null, repeats;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        constant := true;
    EXCEPTION WHEN OTHERS THEN
        constant := false;
    END;
    IF NOT constant AND not_null THEN
        BEGIN
            PERFORM pg_catalog.set_config('search_path', path, true);
            EXECUTE pg_catalog.format(
                'SELECT COALESCE(pg_catalog.bool_or((%s) IS NULL), false) FROM %s '
                'WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s LIMIT 100))', expression, tbl, tbl)
               INTO gives_null;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        EXCEPTION WHEN OTHERS THEN
            RETURN SQLERRM;
        END;
    END IF;
    IF not_null AND gives_null THEN
        RETURN pg_catalog.format('column %I of %s is NOT NULL and the mask gives NULL', col, tbl);
    ELSIF constant AND repeats AND NOT gives_null AND is_unique THEN
        RETURN pg_catalog.format('column %I of %s is under a unique constraint and the mask is a constant: '
                      'the second anonymized row would collide (use forget.random_email(), '
                      'forget.random_string() or a format() of the key)', col, tbl);
    END IF;
    IF trial THEN
        BEGIN
            PERFORM pg_catalog.set_config('search_path', path, true);
            EXECUTE pg_catalog.format(
                'UPDATE %1$s SET %2$I = (%3$s) WHERE ctid = ANY (ARRAY(SELECT ctid FROM %1$s LIMIT 100 FOR UPDATE SKIP LOCKED))',
                tbl, col, expression);
            RAISE EXCEPTION USING ERRCODE = 'PGF00';
        EXCEPTION
            WHEN SQLSTATE 'PGF00' THEN
                NULL;
            WHEN OTHERS THEN
                RETURN SQLERRM;
        END;
    END IF;
    RETURN NULL;
END
$$;

-- The doctor's look at the cleanup candidate query: its plan as EXPLAIN
-- (FORMAT JSON, VERBOSE) prints it for the first batch of 1000, or the error
-- PostgreSQL gives when a condition no longer plans (a dropped column). The
-- caller sets the planner settings a batch uses; the EXCEPTION block keeps
-- an error from ending the doctor's report.
CREATE OR REPLACE FUNCTION forget_internal._candidate_plan(query text, path text, OUT plan json, OUT problem text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Built before the declared path is in force (see _mask_problem).
    statement text := 'EXPLAIN (FORMAT JSON, VERBOSE, COSTS OFF) ' OPERATOR(pg_catalog.||) query;
BEGIN
    PERFORM pg_catalog.set_config('search_path', path, true);
    EXECUTE statement INTO plan USING NULL::pg_catalog.text, 1000::pg_catalog.int8;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
EXCEPTION WHEN OTHERS THEN
    problem := SQLERRM;
END
$$;

-- Statement trigger placed on activity tables by add_activity: a new row
-- (a role, a participation) clears its subject's minimized mark.
-- TG_ARGV: subject name, the column linking the row to the subject.
CREATE OR REPLACE FUNCTION forget_internal._activity_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keys text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM forget.subjects WHERE name = TG_ARGV[0]) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT array_agg(DISTINCT %I::text) FROM forget_new_rows', TG_ARGV[1]) INTO keys;
    -- The subject table is updated as the subject's run-as role (its
    -- triggers never run with this function's owner's rights).
    PERFORM forget_internal._clear_minimized(TG_ARGV[0], keys);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION forget_internal._bump_now() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('forget.config_version'::pg_catalog.regclass);
    -- Every backend drops its cache when this commits (PostgreSQL's own
    -- invalidation, sent once the change is visible), and this backend
    -- also when the change is rolled back (src/invalidation.rs). The
    -- library's functions come after the tables in the install and upgrade
    -- scripts, whose DDL reaches here first.
    IF pg_catalog.to_regprocedure('forget_internal._invalidate_caches(pg_catalog.oid)') IS NOT NULL THEN
        PERFORM forget_internal._invalidate_caches('forget.config_version'::pg_catalog.regclass);
    END IF;
    -- A deferred trigger cannot be queued in a security-restricted operation
    -- (DDL in a hook or trigger that pg_forget runs; 42501): the bump at once
    -- must do there.
    BEGIN
        INSERT INTO forget._pending_bump VALUES (1);
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
END
$$;

CREATE OR REPLACE FUNCTION forget_internal._bump_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('forget.config_version'::pg_catalog.regclass);
    DELETE FROM forget._pending_bump;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION forget_internal._config_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM forget_internal._bump_now();
    RETURN NULL;
END
$$;

-- DDL moves the configuration version (every backend then drops its cached
-- graphs and plans) only when it may change a subject's graph, the trust in
-- its objects or what declared SQL resolves to. It keeps the version for:
--   * temporary objects (never part of a graph; pg_temp comes last);
--   * tables, indexes and sequences unrelated to every subject: no foreign
--     key either way, no inheritance or partitioning, not named by the
--     configuration, and a name no declaration refers to;
--   * functions, views and types whose name no declaration or hook refers
--     to (a look-alike of a bound name moves it), and new schemas.
-- Anything else moves it (triggers, policies, grants, extensions...): when in
-- doubt, replan. Drops are judged by forget_internal._ddl_dropped (sql_drop).

-- Every name the configuration refers to, as one text to search: the
-- objects each declaration was bound to, the hook functions.
CREATE OR REPLACE FUNCTION forget_internal._declared_names() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(string_agg(b, ' '), '') FROM (
        SELECT unnest(bound) FROM forget.masks
        UNION ALL SELECT unnest(bound) FROM forget.links
        UNION ALL SELECT unnest(bound) FROM forget.rules
        UNION ALL SELECT unnest(bound) FROM forget.cleanup_conditions
        UNION ALL SELECT unnest(bound) FROM forget.cleanup_settings
        UNION ALL SELECT fn::text FROM forget.hooks) AS s(b)
$$;

-- The same, or NULL while the configuration tables are not all there yet
-- (DDL of the extension's own upgrade script).
CREATE OR REPLACE FUNCTION forget_internal._declared_names_or_null() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN forget_internal._declared_names();
EXCEPTION WHEN undefined_column OR undefined_table THEN
    RETURN NULL;
END
$$;

-- Whether a table can be part of a subject's graph: named by the
-- configuration, a foreign key either way, or inheritance either way.
CREATE OR REPLACE FUNCTION forget_internal._table_related(rel oid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM forget.subjects WHERE tbl = rel)
        OR EXISTS (SELECT 1 FROM forget.links WHERE rel IN (child, parent))
        OR EXISTS (SELECT 1 FROM forget.policies WHERE tbl = rel)
        OR EXISTS (SELECT 1 FROM forget.masks WHERE tbl = rel)
        OR EXISTS (SELECT 1 FROM forget.activities WHERE tbl = rel)
        OR EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND rel IN (conrelid, confrelid))
        OR EXISTS (SELECT 1 FROM pg_inherits WHERE rel IN (inhrelid, inhparent))
$$;

-- A fingerprint of every inheritance link: ALTER TABLE ... NO INHERIT (or
-- DETACH PARTITION named on the child) leaves no trace on the table itself,
-- so the fingerprint is taken before ALTER TABLE and compared after.
CREATE OR REPLACE FUNCTION forget_internal._inherits_fingerprint() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*) || ':' || COALESCE(sum(hashint8(inhrelid::int8 * 4294967296 + inhparent::int8)::int8), 0)
      FROM pg_inherits
$$;

CREATE OR REPLACE FUNCTION forget_internal._ddl_started() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Until the extension's script has made its Rust functions (DDL run by
    -- CREATE EXTENSION or an update fires these triggers too), nothing is
    -- noted and _ddl_changed moves the version.
    IF pg_catalog.to_regprocedure('forget_internal._ddl_note(text,text)') IS NULL THEN
        RETURN;
    END IF;
    PERFORM forget_internal._ddl_note('inherits', forget_internal._inherits_fingerprint());
END
$$;

CREATE OR REPLACE FUNCTION forget_internal._ddl_changed() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
    rel oid;
    name text;
    names text;
    dropped text;
BEGIN
    IF pg_catalog.to_regprocedure('forget_internal._ddl_noted(text)') IS NULL
       OR pg_catalog.to_regprocedure('forget_internal._ddl_note(text,text)') IS NULL THEN
        PERFORM forget_internal._bump_now();
        RETURN;
    END IF;
    dropped := forget_internal._ddl_noted('dropped');
    PERFORM forget_internal._ddl_note('dropped', NULL);
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()) THEN
        -- Nothing created or altered: a drop, judged by _ddl_dropped.
        IF dropped IS DISTINCT FROM 'judged' THEN
            PERFORM forget_internal._bump_now();
        END IF;
        RETURN;
    END IF;
    FOR c IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        CONTINUE WHEN c.schema_name LIKE 'pg\_temp%';
        IF c.classid = 'pg_class'::regclass THEN
            rel := COALESCE((SELECT indrelid FROM pg_index WHERE indexrelid = c.objid), c.objid);
            IF forget_internal._table_related(rel)
               OR (c.command_tag IN ('ALTER TABLE', 'ALTER FOREIGN TABLE')
                   AND forget_internal._ddl_noted('inherits')
                       IS DISTINCT FROM forget_internal._inherits_fingerprint()) THEN
                PERFORM forget_internal._bump_now();
                RETURN;
            END IF;
            name := (SELECT relname FROM pg_class WHERE oid = c.objid);
        ELSIF c.classid = 'pg_proc'::regclass THEN
            name := (SELECT proname FROM pg_proc WHERE oid = c.objid);
        ELSIF c.classid = 'pg_type'::regclass THEN
            name := (SELECT typname FROM pg_type WHERE oid = c.objid);
        ELSIF c.classid = 'pg_namespace'::regclass AND c.command_tag = 'CREATE SCHEMA' THEN
            CONTINUE;
        ELSE
            PERFORM forget_internal._bump_now();
            RETURN;
        END IF;
        names := COALESCE(names, forget_internal._declared_names_or_null());
        IF name IS NULL OR names IS NULL OR strpos(names, name) > 0 THEN
            PERFORM forget_internal._bump_now();
            RETURN;
        END IF;
    END LOOP;
END
$$;

-- Drops: temporary objects, indexes, and functions, views, sequences and
-- types no declaration refers to keep the version; anything else (a table,
-- a column, a constraint, a trigger...) moves it.
CREATE OR REPLACE FUNCTION forget_internal._ddl_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    names text := forget_internal._declared_names_or_null();
BEGIN
    IF pg_catalog.to_regprocedure('forget_internal._ddl_note(text,text)') IS NULL THEN
        RETURN;
    END IF;
    PERFORM forget_internal._ddl_note('dropped', 'judged');
    IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d
                WHERE NOT d.is_temporary
                  AND d.schema_name IS DISTINCT FROM 'pg_toast'
                  AND NOT (d.object_type = 'rule' AND d.address_names[3] = '_RETURN')  -- a view's
                  AND (d.object_type NOT IN ('index', 'function', 'procedure', 'view',
                                             'materialized view', 'sequence', 'type')
                       OR names IS NULL
                       OR strpos(names, d.address_names[array_length(d.address_names, 1)]) > 0)) THEN
        PERFORM forget_internal._bump_now();
    END IF;
END
$$;

-- At commit (deferred trigger on forget._pending_chain, one row per writing
-- transaction): link the transaction's audit rows into the hash chain.
CREATE OR REPLACE FUNCTION forget_internal._chain_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM forget_internal._link_chain();
    RETURN NULL;
END
$$;

-- forget.undo rows go with their recovery record (forget.deleted_clients):
-- one statement-level trigger instead of a foreign key, whose per-row check
-- cost more than the copy itself when a big subject is deleted with grace.
CREATE OR REPLACE FUNCTION forget_internal._undo_cascade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM forget.undo u USING gone g WHERE u.deletion_id OPERATOR(pg_catalog.=) g.id;
    RETURN NULL;
END
$$;

-- The DDL event trigger, turned off above during an upgrade, now calls
-- these helpers by their new names.
DO $enable$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname OPERATOR(pg_catalog.=) 'forget_ddl_changed') THEN
        ALTER EVENT TRIGGER forget_ddl_changed ENABLE;
    END IF;
END
$enable$;
