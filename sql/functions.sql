-- pg_forget: PL/pgSQL functions that the tables' triggers need (installed
-- first) and helpers of the doctor. Every routine is CREATE OR REPLACE: an
-- upgrade script runs this file again (see scripts/upgrade-script.sh).

-- The doctor's mask check: NULL when the mask still validates, else the
-- error PostgreSQL gives (the EXCEPTION block undoes the attempt).
CREATE OR REPLACE FUNCTION forget._mask_problem(tbl regclass, col name, expression text, path text) RETURNS text
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
CREATE OR REPLACE FUNCTION forget._candidate_plan(query text, path text, OUT plan json, OUT problem text)
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
CREATE OR REPLACE FUNCTION forget._activity_inserted() RETURNS trigger
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

CREATE OR REPLACE FUNCTION forget._bump_now() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('forget.config_version'::pg_catalog.regclass);
    INSERT INTO forget._pending_bump VALUES (1);
END
$$;

CREATE OR REPLACE FUNCTION forget._bump_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('forget.config_version'::pg_catalog.regclass);
    DELETE FROM forget._pending_bump;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION forget._config_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM forget._bump_now();
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION forget._ddl_changed() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM forget._bump_now();
END
$$;
