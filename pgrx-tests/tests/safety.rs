//! SPEC.md "Behaviour that must hold": privileges, hostile search_path,
//! hostile names and values, races and injected faults.

mod common;
use common::*;
use std::thread;
use std::time::Duration;

fn market_db(name: &str) -> postgres::Client {
    let c = fresh_db(name);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(name, &format!("examples/marketplace/{f}"), &[]);
    }
    c
}

#[test]
fn each_documented_role_can_do_what_it_is_granted_and_nothing_more() {
    let db = "e2e_safety_roles";
    let mut c = market_db(db);
    let roles = [
        "forget_operator",
        "forget_senior",
        "forget_auditor",
        "forget_app",
    ];
    for r in roles {
        c.batch_execute(&format!("DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN"))
            .unwrap();
    }
    // The GRANTs of the README's Privileges section.
    c.batch_execute(
        "GRANT EXECUTE ON FUNCTION forget.anonymize_client(bigint, text, text, boolean, interval, text) TO forget_operator;
         GRANT EXECUTE ON FUNCTION forget.anonymize_client(bigint, text, text, boolean, interval, text),
                                   forget.delete_client(bigint, text, text, boolean, interval, text) TO forget_senior;
         GRANT SELECT ON forget.audit TO forget_auditor;
         GRANT EXECUTE ON FUNCTION forget.verify_audit() TO forget_auditor;
         GRANT EXECUTE ON FUNCTION forget.account_status(bigint, text), forget.eligibility(bigint, text, text) TO forget_app;",
    )
    .unwrap();
    let ok = "00000 (no error)";
    let expectations: &[(&str, &str, &str)] = &[
        ("forget_operator", "SELECT * FROM forget.anonymize_client(3)", ok),
        ("forget_operator", "SELECT * FROM forget.delete_client(4)", "42501"),
        ("forget_operator", "SELECT * FROM forget.audit", "42501"),
        ("forget_senior", "SELECT * FROM forget.delete_client(4)", ok),
        ("forget_senior", "SELECT * FROM forget.restore_client(4)", "42501"),
        ("forget_auditor", "SELECT count(*) FROM forget.audit", ok),
        ("forget_auditor", "SELECT forget.verify_audit()", ok),
        ("forget_auditor", "UPDATE forget.audit SET actor = 'x'", "42501"),
        ("forget_auditor", "DELETE FROM forget.audit", "42501"),
        ("forget_auditor", "SELECT * FROM forget.undo", "42501"),
        ("forget_auditor", "SELECT * FROM forget.delete_client(5)", "42501"),
        ("forget_app", "SELECT * FROM forget.account_status(5)", ok),
        ("forget_app", "SELECT * FROM forget.eligibility(5)", ok),
        ("forget_app", "SELECT * FROM forget.delete_client(5)", "42501"),
        ("forget_app", "SELECT * FROM forget.export_client(5)", "42501"),
        ("forget_app", "INSERT INTO forget.audit (at, action, subject, db_user, hash) VALUES (now(), 'delete', 'x', 'x', 'x')", "42501"),
        ("forget_app", "SELECT forget.set_policy('market.sessions', 'user_id', 'delete', 'keep')", "42501"),
        ("forget_app", "SELECT * FROM forget.people_cleanup()", "42501"),
        ("forget_app", "CALL forget.run_people_cleanup()", "42501"),
    ];
    for (role, sql, state) in expectations {
        let mut conn = connect_as(db, role);
        assert_eq!(sqlstate(conn.query(*sql, &[])), *state, "{role}: {sql}");
    }
    assert!(audit_is_intact(&mut c));
    drop(c);
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .unwrap();
    for r in roles {
        admin.batch_execute(&format!("DROP ROLE {r}")).unwrap();
    }
}

#[test]
fn the_callers_search_path_cannot_redirect_the_extension() {
    let mut c = market_db("e2e_safety_search_path");
    // A DBA function used, unqualified, in a mask declared with search_path public.
    c.batch_execute(
        "CREATE FUNCTION public.blank_name(text) RETURNS text LANGUAGE sql AS $$ SELECT 'Blank' $$;
         SET search_path = public; SELECT forget.mask('market.users', 'full_name', 'blank_name(full_name)'); RESET search_path;",
    )
    .unwrap();
    c.batch_execute(
        "CREATE SCHEMA evil;
         CREATE TABLE evil.audit (x int); CREATE TABLE evil.subjects (x int); CREATE TABLE evil.undo (x int);
         CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1999-01-01'::timestamptz $$;
         CREATE FUNCTION evil.random() RETURNS double precision LANGUAGE sql AS $$ SELECT 0.5::float8 $$;
         CREATE FUNCTION evil.md5(text) RETURNS text LANGUAGE sql AS $$ SELECT 'evil' $$;
         CREATE FUNCTION evil.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT 'evil'::bytea $$;
         CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{\"evil\": true}'::jsonb $$;
         CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE sql AS $$ SELECT 'evil' $$;
         CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;
         CREATE FUNCTION evil.count(anyelement) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
         CREATE FUNCTION evil.blank_name(text) RETURNS text LANGUAGE sql AS $$ SELECT 'EVIL' $$;
         CREATE FUNCTION evil.eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
         CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq);",
    )
    .unwrap();
    c.batch_execute("SET search_path = evil, pg_catalog, public")
        .unwrap();
    let export: String = c
        .query_one("SELECT forget.export_client(2)::text", &[])
        .unwrap()
        .get(0);
    assert!(
        export.contains("user2@example.com") && !export.contains("evil"),
        "{export}"
    );
    c.query(
        "SELECT * FROM forget.anonymize_client(3, grace => '1 day')",
        &[],
    )
    .unwrap();
    let row = c
        .query_one(
            "SELECT full_name, email FROM market.users WHERE id OPERATOR(pg_catalog.=) 3",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "Blank",
        "the DBA's mask resolved as declared"
    );
    assert!(!row
        .get::<_, String>(1)
        .starts_with("anon-00000000000000000000000000000000"));
    c.query("SELECT * FROM forget.restore_client(3)", &[])
        .unwrap();
    c.query("SELECT * FROM forget.delete_client(4)", &[])
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM market.users WHERE id OPERATOR(pg_catalog.=) 4"
        ),
        0
    );
    assert_eq!(
        count(&mut c, "SELECT 1 FROM market.users"),
        29,
        "only user 4 went (an evil = matches everything)"
    );
    c.query("SELECT * FROM forget.eligibility(5)", &[]).unwrap();
    let recent: bool = c
        .query_one("SELECT pg_catalog.bool_and(at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')) FROM forget.audit", &[])
        .unwrap()
        .get(0);
    assert!(recent, "audit timestamps come from pg_catalog.now()");
    assert!(audit_is_intact(&mut c));
    assert_eq!(count(&mut c, "SELECT 1 FROM evil.audit"), 0);
    c.batch_execute("SELECT forget.deactivate(6, 'x', 'y'); SELECT forget.reactivate(6, 'x')")
        .unwrap();
    c.query("SELECT * FROM forget.check()", &[]).unwrap();
}

#[test]
fn names_that_need_quoting_and_values_that_look_like_sql_are_handled() {
    let mut c = fresh_db("e2e_safety_names");
    c.batch_execute(
        r#"CREATE SCHEMA "Weird Schema";
           CREATE TABLE "Weird Schema"."User Accounts" ("User ID" bigint PRIMARY KEY, "select" text, "E-Mail" text UNIQUE, "Active?" boolean DEFAULT true);
           CREATE TABLE "Weird Schema"."order-items" (id bigint PRIMARY KEY, "Owner" bigint REFERENCES "Weird Schema"."User Accounts", "from" text);
           CREATE TABLE "Weird Schema"."Notes" ("key" bigint PRIMARY KEY, "who""s" text);
           INSERT INTO "Weird Schema"."User Accounts" VALUES (1, 'a', 'a@x.org'), (2, 'b', 'b@x.org');
           INSERT INTO "Weird Schema"."order-items" VALUES (1, 1, 'x'), (2, 2, 'y');
           INSERT INTO "Weird Schema"."Notes" VALUES (1, '1'), (2, '2');
           SELECT forget.register_subject('Odd "Subject"', '"Weird Schema"."User Accounts"', active_column => 'Active?');
           SELECT forget.add_link('"Weird Schema"."Notes"', 'who"s', '"Weird Schema"."User Accounts"');
           SELECT forget.mask('"Weird Schema"."User Accounts"', 'E-Mail', 'forget.random_email()');
           SELECT forget.mask('"Weird Schema"."User Accounts"', 'select', $$'x'$$);"#,
    )
    .unwrap();
    let hostile = "'); DROP TABLE \"Weird Schema\".\"Notes\"; --";
    c.query(
        "SELECT * FROM forget.anonymize_client(2, reason => $1, actor => $1, grace => '1 day')",
        &[&hostile],
    )
    .unwrap();
    c.query(
        "SELECT * FROM forget.restore_client(2, actor => $1)",
        &[&hostile],
    )
    .unwrap();
    c.query(
        "SELECT * FROM forget.delete_client(1, reason => $1, actor => $1)",
        &[&hostile],
    )
    .unwrap();
    assert_eq!(
        count(&mut c, r#"SELECT * FROM "Weird Schema"."Notes""#),
        1,
        "the table survived, its row for 1 is gone"
    );
    assert_eq!(
        count(&mut c, r#"SELECT * FROM "Weird Schema"."order-items""#),
        1
    );
    assert_eq!(
        count(
            &mut c,
            &format!(
                "SELECT * FROM forget.audit WHERE reason = {}",
                quote(hostile)
            )
        ),
        2
    );
    let doc: String = c
        .query_one("SELECT forget.export_client(2)::text", &[])
        .unwrap()
        .get(0);
    assert!(doc.contains("Weird Schema.order-items"), "{doc}");
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn a_subject_table_dropped_or_altered_after_registration_fails_cleanly() {
    let mut c = fresh_db("e2e_safety_dropped");
    c.batch_execute(
        "CREATE TABLE a (id bigint PRIMARY KEY, x text); INSERT INTO a VALUES (1, 'x');
         CREATE TABLE b (id bigint PRIMARY KEY); INSERT INTO b VALUES (1);
         SELECT forget.register_subject('a', 'a'); SELECT forget.register_subject('b', 'b');
         ALTER TABLE a RENAME COLUMN id TO ident; DROP TABLE b;",
    )
    .unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(1, subject => 'a')", &[])),
        "22023"
    );
    assert!(
        message(c.query("SELECT * FROM forget.delete_client(1, subject => 'a')", &[]))
            .contains("no longer exists")
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(1, subject => 'b')", &[])),
        "22023"
    );
    assert_eq!(count(&mut c, "SELECT * FROM a"), 1);
    c.batch_execute("SELECT forget.register_subject('a', 'a')")
        .unwrap();
    c.query("SELECT * FROM forget.delete_client(1, subject => 'a')", &[])
        .unwrap();
}

#[test]
fn two_anonymizations_of_one_subject_and_a_manual_delete_during_cleanup() {
    let db = "e2e_safety_races";
    let mut c = market_db(db);
    let mut first = connect(db);
    first
        .batch_execute("BEGIN; SELECT * FROM forget.anonymize_client(8)")
        .unwrap();
    let second = thread::spawn(move || {
        let mut c = connect(db);
        c.query(
            "SELECT rows FROM forget.anonymize_client(8) WHERE tbl = 'market.users'::regclass",
            &[],
        )
        .map(|r| r.len())
    });
    thread::sleep(Duration::from_millis(300));
    first.batch_execute("COMMIT").unwrap();
    assert!(
        second.join().unwrap().is_ok(),
        "the second waits, then anonymizes the already anonymized row again"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE action = 'anonymize'"
        ),
        2
    );
    assert!(audit_is_intact(&mut c));
}

#[test]
fn a_manual_delete_during_a_cleanup_batch_is_skipped_not_done_twice() {
    let db = "e2e_safety_cleanup_race";
    let mut c = fresh_db(db);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(db, &format!("examples/association/{f}"), &[("bulk", "60")]);
    }
    let mut manual = connect(db);
    manual
        .batch_execute("BEGIN; SELECT * FROM forget.delete_client(2)")
        .unwrap();
    // The cleanup skips the locked person 2, then waits for the manual
    // delete's commit only to extend the audit chain after it.
    let cleanup = thread::spawn(move || {
        let mut c = connect(db);
        let r = c
            .query_one(
                "SELECT candidates, failed FROM forget.people_cleanup(1000)",
                &[],
            )
            .unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1))
    });
    thread::sleep(Duration::from_millis(500));
    manual.batch_execute("COMMIT").unwrap();
    let (candidates, failed) = cleanup.join().unwrap();
    assert!(candidates > 0);
    assert_eq!(failed, 0);
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.audit WHERE subject_key = '2'"),
        1,
        "person 2 was handled once, by hand"
    );
    assert_eq!(count(&mut c, "SELECT * FROM assoc.people WHERE id = 2"), 0);
}

/// Every action, with a fault injected at each of its steps (before hook,
/// after hook, a trigger on a table it changes, a constraint it would break,
/// a statement_timeout): each fails, nothing changes, no audit row is
/// written, and once the fault is gone the same call succeeds.
#[test]
fn an_injected_fault_at_any_step_changes_nothing_and_the_next_call_succeeds() {
    let db = "e2e_safety_faults";
    let mut c = market_db(db);
    c.batch_execute(
        "CREATE TABLE public.faults (step text PRIMARY KEY);
         CREATE FUNCTION public.maybe_fail(s text, k text, ctx jsonb) RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
             IF EXISTS (SELECT 1 FROM public.faults
                        WHERE step = CASE WHEN ctx ? 'rows' THEN 'after_hook' ELSE 'before_hook' END) THEN
                 RAISE EXCEPTION 'injected hook fault';
             END IF;
             IF EXISTS (SELECT 1 FROM public.faults WHERE step = 'timeout') THEN PERFORM pg_sleep(2); END IF;
         END $$;
         CREATE FUNCTION public.trigger_fault() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF EXISTS (SELECT 1 FROM public.faults WHERE step = 'trigger') THEN RAISE EXCEPTION 'injected trigger fault'; END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER fault AFTER INSERT OR UPDATE OR DELETE ON market.sessions FOR EACH ROW EXECUTE FUNCTION public.trigger_fault();
         CREATE TRIGGER fault AFTER UPDATE ON market.users FOR EACH ROW EXECUTE FUNCTION public.trigger_fault();
         ALTER TABLE market.projects ADD CONSTRAINT fault_check CHECK (seller_id IS NOT NULL OR status <> 'fault');",
    )
    .unwrap();
    for action in ["delete", "anonymize", "deactivate", "restore"] {
        for when in ["before", "after"] {
            c.execute(
                "SELECT forget.on($1, 'public.maybe_fail(text,text,jsonb)')",
                &[&format!("{when}_{action}")],
            )
            .unwrap();
        }
    }
    c.query(
        "SELECT * FROM forget.delete_client(13, grace => '1 day')",
        &[],
    )
    .unwrap();
    let hooks_trigger_timeout = ["before_hook", "after_hook", "trigger", "timeout"];
    let cases: &[(&str, i64, &[&str])] = &[
        (
            "SELECT * FROM forget.delete_client($1::bigint)",
            10,
            &[
                "before_hook",
                "after_hook",
                "trigger",
                "timeout",
                "constraint",
            ],
        ),
        (
            "SELECT * FROM forget.delete_client($1::bigint, grace => '1 day')",
            11,
            &[
                "before_hook",
                "after_hook",
                "trigger",
                "timeout",
                "constraint",
            ],
        ),
        (
            "SELECT * FROM forget.anonymize_client($1::bigint, grace => '1 day')",
            12,
            &hooks_trigger_timeout,
        ),
        (
            "SELECT * FROM forget.restore_client($1::bigint)",
            13,
            &hooks_trigger_timeout,
        ),
        (
            "SELECT forget.deactivate($1::bigint, 'ops', 'test')",
            14,
            &hooks_trigger_timeout,
        ),
    ];
    let mut tried = 0;
    for (call, key, faults) in cases {
        for fault in *faults {
            if *fault == "constraint" {
                c.execute(
                    "UPDATE market.projects SET status = 'fault' WHERE seller_id = $1",
                    &[key],
                )
                .unwrap();
            } else {
                c.execute("INSERT INTO public.faults VALUES ($1)", &[fault])
                    .unwrap();
            }
            if *fault == "timeout" {
                c.batch_execute("SET statement_timeout = '300ms'").unwrap();
            }
            let before = snapshot(&mut c, "market");
            let audit_before = count(&mut c, "SELECT * FROM forget.audit");
            let result = c.query(*call, &[key]);
            let state = sqlstate(c.query("SELECT 1 WHERE false", &[]));
            assert_eq!(state, "00000 (no error)");
            c.batch_execute("RESET statement_timeout; TRUNCATE public.faults")
                .unwrap();
            assert!(result.is_err(), "{call} ({key}) with {fault} must fail");
            assert_eq!(
                snapshot(&mut c, "market"),
                before,
                "{call} with {fault}: nothing changed"
            );
            assert_eq!(
                count(&mut c, "SELECT * FROM forget.audit"),
                audit_before,
                "{call} with {fault}: no audit row"
            );
            c.execute(
                "UPDATE market.projects SET status = 'completed' WHERE status = 'fault'",
                &[],
            )
            .unwrap();
            tried += 1;
        }
        c.query(*call, &[key])
            .unwrap_or_else(|e| panic!("{call} succeeds once the faults are gone: {e}"));
    }
    assert_eq!(tried, 22);
    assert!(audit_is_intact(&mut c));
}
