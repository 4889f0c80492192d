//! Every error of SPEC.md's table, with its SQLSTATE.

mod common;
use common::*;

#[test]
fn key_errors() {
    let mut c = billing_db("e2e_errors_keys");
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(999)", &[])),
        "P0002"
    );
    assert_eq!(
        message(c.query("SELECT * FROM forget.delete_client(999)", &[])),
        "client 999 not found"
    );
    c.query("SELECT * FROM forget.delete_client(2)", &[])
        .unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(2)", &[])),
        "P0002",
        "second delete"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(NULL::bigint)", &[])),
        "22004"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.eligibility(NULL::text)", &[])),
        "22004"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client('x1'::text)", &[])),
        "22P02"
    );
    assert_eq!(
        sqlstate(c.query(
            "SELECT * FROM forget.delete_client('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid)",
            &[]
        )),
        "22P02"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client('3'::text)", &[])),
        "00000 (no error)"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.export_client(NULL::bigint)", &[])),
        "22004"
    );
}

#[test]
fn subject_errors() {
    let mut c = fresh_db("e2e_errors_subjects");
    c.batch_execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id uuid PRIMARY KEY); INSERT INTO a VALUES (1)").unwrap();
    let none = c.query("SELECT * FROM forget.delete_client(1)", &[]);
    assert_eq!(sqlstate(none), "22023");
    assert!(message(c.query("SELECT * FROM forget.graph()", &[])).contains("subject"));
    c.batch_execute(
        "SELECT forget.register_subject('a', 'a'); SELECT forget.register_subject('b', 'b')",
    )
    .unwrap();
    let several = c.query("SELECT * FROM forget.delete_client(1)", &[]);
    assert!(message(c.query("SELECT * FROM forget.delete_client(1)", &[])).contains("subject"));
    assert_eq!(sqlstate(several), "22023");
    assert_eq!(
        sqlstate(c.query(
            "SELECT * FROM forget.delete_client(1, subject => 'zzz')",
            &[]
        )),
        "22023"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(1, subject => 'a')", &[])),
        "00000 (no error)"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(1, subject => 'b')", &[])),
        "22P02"
    );
}

#[test]
fn configuration_errors_name_the_object() {
    let mut c = billing_db("e2e_errors_config");
    let cases = [
        ("SELECT forget.register_subject('x', 'billing.client_settings')", "22023", "primary key"),
        ("SELECT forget.register_subject('x', 'billing.clients', key_column => 'nope')", "22023", "nope"),
        ("SELECT forget.register_subject('x', 'billing.clients', active_column => 'status', inactive_value => NULL)", "22023", "x"),
        ("SELECT forget.register_subject('', 'billing.clients')", "22023", "name"),
        ("SELECT forget.register_subject('x', 'billing.nope')", "42P01", "nope"),
        ("SELECT forget.add_link('billing.orders', 'nope', 'billing.clients')", "22023", "nope"),
        ("SELECT forget.add_link('billing.orders', 'userid', 'billing.clients', condition => 'nope = 1')", "42703", "nope"),
        ("SELECT forget.add_link('billing.orders', 'userid', 'billing.clients', condition => 'true); DROP TABLE billing.notes; --')", "22023", "DROP"),
        ("SELECT forget.set_policy('billing.invoices', 'client_id', 'delete', 'nullify')", "22023", "client_id"),
        ("SELECT forget.set_policy('billing.invoices', 'client_id', 'delete', 'shred')", "22023", "shred"),
        ("SELECT forget.set_policy('billing.invoices', 'client_id', 'purge', 'keep')", "22023", "purge"),
        ("SELECT forget.set_policy('billing.invoices', 'nope', 'delete', 'keep')", "22023", "nope"),
        ("SELECT forget.mask('billing.clients', 'nope', 'NULL')", "22023", "nope"),
        // A mask that cannot work is refused naming the column, with why.
        ("SELECT forget.mask('billing.clients', 'email', 'no_such_function()')", "22023", "no_such_function"),
        ("SELECT forget.mask('billing.clients', 'created_at', '42')", "22023", "created_at"),
        ("SELECT forget.mask('billing.clients', 'email', '1), (2')", "22023", "1), (2"),
        ("SELECT forget.add_rule('r', 'SELECT * FROM billing.nope WHERE id = $1', 'm')", "42P01", "nope"),
        ("SELECT forget.add_rule('r', 'SELECT 1', 'm', '{shred}')", "22023", "shred"),
        ("SELECT forget.on('before_shred', 'pg_catalog.now()')", "22023", "before_shred"),
        ("SELECT forget.on('before_delete', 'pg_catalog.now()')", "22023", "hook"),
    ];
    for (sql, state, needle) in cases {
        let msg = message(c.query(sql, &[]));
        assert_eq!(sqlstate(c.query(sql, &[])), state, "{sql}: {msg}");
        assert!(
            msg.contains(needle),
            "{sql}: message {msg:?} names {needle}"
        );
    }
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.notes"),
        20,
        "nothing injected ran"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.eligibility(2, 'shred')", &[])),
        "22023"
    );
}

#[test]
fn privileges_are_not_public_and_are_granted_separately() {
    let mut c = billing_db("e2e_errors_privileges");
    c.batch_execute(
        "DROP ROLE IF EXISTS forget_nobody; DROP ROLE IF EXISTS forget_anonymizer;
         CREATE ROLE forget_nobody LOGIN; CREATE ROLE forget_anonymizer LOGIN;
         GRANT EXECUTE ON FUNCTION forget.anonymize_client(bigint, text, text, boolean, interval, text) TO forget_anonymizer;",
    )
    .unwrap();
    let mut nobody = connect_as("e2e_errors_privileges", "forget_nobody");
    for sql in [
        "SELECT * FROM forget.delete_client(2)",
        "SELECT * FROM forget.anonymize_client(2)",
        "SELECT forget.export_client(2)",
        "SELECT * FROM forget.eligibility(2)",
        "SELECT * FROM forget.audit",
        "SELECT forget.register_subject('x', 'billing.clients')",
        "SELECT forget_internal._write_audit('delete', 'client', '{1}', NULL, NULL, NULL, NULL)",
        "SELECT * FROM forget_internal._act('delete', '2', NULL, NULL, false, NULL, NULL)",
    ] {
        assert_eq!(sqlstate(nobody.query(sql, &[])), "42501", "{sql}");
    }
    let mut anonymizer = connect_as("e2e_errors_privileges", "forget_anonymizer");
    assert_eq!(
        sqlstate(anonymizer.query("SELECT * FROM forget.delete_client(2)", &[])),
        "42501"
    );
    assert_eq!(
        sqlstate(anonymizer.query("SELECT * FROM forget.anonymize_client(2)", &[])),
        "00000 (no error)"
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.clients WHERE id = 2"),
        1
    );
    drop((nobody, anonymizer, c));
    drop_db_and_roles(
        "e2e_errors_privileges",
        &["forget_nobody", "forget_anonymizer"],
    );
}

/// A refusal's HINT is a statement that runs as shown, whatever the key and
/// subject name hold (quotes, a backslash, a minus sign that is no number),
/// and its CONSTRAINT and DETAIL name the rules; the refusal comes whole from
/// deactivate as from delete and anonymize.
#[test]
fn refusals_carry_fields_an_application_can_map() {
    let mut c = fresh_db("e2e_errors_refusals");
    c.batch_execute(
        r#"CREATE TABLE public.members (handle text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
           INSERT INTO public.members VALUES ('o''brien\x'), ('-5'), ('--5'), ('7'), (E'two\nLOG:  lines');
           SELECT forget.register_subject('it''s', 'public.members', active_column => 'active');
           SELECT forget.add_rule('b_always', $$SELECT 1 WHERE $1 IS NOT NULL$$, 'always blocked',
                                  '{delete,anonymize,deactivate}');
           SELECT forget.add_rule('a_never', $$SELECT 1 WHERE $1 IS NULL$$, 'never blocked',
                                  '{delete,anonymize,deactivate}');"#,
    )
    .unwrap();
    for key in ["o'brien\\x", "-5", "--5", "7", "two\nLOG:  lines"] {
        for (call, action) in [
            ("SELECT * FROM forget.delete_client($1::text)", "delete"),
            (
                "SELECT * FROM forget.anonymize_client($1::text)",
                "anonymize",
            ),
            (
                "SELECT forget.deactivate($1::text, 'admin', 'test')",
                "deactivate",
            ),
        ] {
            let e = db_error(c.query(call, &[&key]));
            assert_eq!(e.code().code(), "55000");
            // A control character in the key is shown escaped: the message
            // (and the log line it becomes) stays one line.
            assert_eq!(
                e.message(),
                format!(
                    "cannot {action} it's {}: always blocked",
                    key.replace('\n', "\\n")
                )
            );
            assert!(!e.hint().unwrap().contains('\n'));
            assert_eq!(e.constraint(), Some("b_always"), "the failing rule only");
            assert_eq!(e.detail(), Some("b_always: always blocked"));
            let hint = e.hint().unwrap().trim_end_matches(';').to_string();
            let rows = c
                .query(
                    &format!("SELECT rule, ok FROM ({hint}) e ORDER BY rule"),
                    &[],
                )
                .unwrap_or_else(|err| panic!("{hint}: {err}"));
            let got: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_eq!(
                got,
                [
                    ("a_never".to_string(), true),
                    ("b_always".to_string(), false)
                ],
                "{hint}"
            );
        }
    }
    assert_eq!(
        count(&mut c, "SELECT * FROM public.members WHERE active"),
        5
    );
    assert_eq!(
        message(c.query(
            "SELECT * FROM forget.account_status(E'no\\nbody'::text)",
            &[]
        )),
        "it's no\\nbody not found"
    );
}

/// `\df forget.*` is the documented interface: no internal helper there.
/// The helpers in forget_internal run for the extension alone: a role given
/// every capability (forget.grant) may execute none of them but the four
/// that run with their caller's own rights as the subject's run-as role
/// (the views' acting subject and recovery record, the mask and cleanup
/// condition checks). Calling one by name fails with 42501.
#[test]
fn internal_helpers_are_out_of_the_api_and_executable_by_the_extension_alone() {
    let db = "e2e_errors_internals";
    let mut c = billing_db(db);
    c.batch_execute(
        "DROP ROLE IF EXISTS forget_everything;
         CREATE ROLE forget_everything LOGIN;
         SELECT forget.grant(c, 'forget_everything')
         FROM unnest('{delete,anonymize,restore,export,eligibility,status,deactivate,cleanup,audit}'::text[]) c;",
    )
    .unwrap();
    assert_eq!(
        texts(
            &mut c,
            "SELECT proname::text FROM pg_proc WHERE pronamespace = 'forget'::regnamespace AND proname LIKE '\\_%'"
        ),
        Vec::<String>::new()
    );
    let executable = texts(
        &mut c,
        "SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'forget_internal'::regnamespace
           AND has_function_privilege('forget_everything', p.oid, 'EXECUTE')
         ORDER BY 1",
    );
    assert_eq!(
        executable,
        [
            "forget_internal._acting_recovery()",
            "forget_internal._acting_subject()",
            "forget_internal._candidate_plan(text,text)",
            "forget_internal._cleanup_batch(integer,boolean,text,text,boolean)",
            "forget_internal._finish_cleanup_run()",
            "forget_internal._mask_problem(regclass,name,text,text,boolean)",
        ],
        "the cleanup capability includes what the committing procedure calls"
    );
    let mut role = connect_as(db, "forget_everything");
    for sql in [
        "SELECT * FROM forget_internal._act('delete', '2', NULL, NULL, false, NULL, NULL)",
        "SELECT forget_internal._write_audit('delete', 'client', '{1}', NULL, NULL, NULL, NULL)",
        "SELECT * FROM forget_internal._take_refusal()",
        "SELECT forget_internal._link_chain()",
    ] {
        assert_eq!(sqlstate(role.query(sql, &[])), "42501", "{sql}");
    }
    // What the capabilities give still works through the interface.
    assert_eq!(
        sqlstate(role.query("SELECT * FROM forget.delete_client(2)", &[])),
        "00000 (no error)"
    );
    // The committing cleanup runs to its end as that role, and its run is
    // recorded by the extension: the role cannot write forget.runs itself.
    c.batch_execute(
        "CREATE TABLE public.people (id bigint PRIMARY KEY, gone boolean);
         INSERT INTO public.people SELECT g, g <= 1003 FROM generate_series(1001, 1005) g;
         SELECT forget.register_subject('person', 'public.people');
         SELECT forget.add_cleanup_condition('gone', 's.gone', 'person');
         SELECT forget.set_cleanup(true, subject => 'person');",
    )
    .unwrap();
    role.batch_execute("CALL forget.run_people_cleanup(2, 'person')")
        .unwrap();
    assert_eq!(
        texts(
            &mut c,
            "SELECT format('%s %s %s %s', job, subject, candidates, deleted) FROM forget.runs"
        ),
        ["run_people_cleanup person 3 3"]
    );
    for sql in [
        "INSERT INTO forget.runs (job, started_at, finished_at) VALUES ('x', now(), now())",
        "SELECT forget_internal._tally_cleanup_run(false, 'person', 1, 1, 1, 1)",
        "SELECT forget_internal._set_cleanup_run_id(1)",
    ] {
        assert_eq!(sqlstate(role.query(sql, &[])), "42501", "{sql}");
    }
    drop((role, c));
    drop_db_and_roles(db, &["forget_everything"]);
}

/// Settings that are policy can be changed by superusers only (found by a
/// security review: a role that may delete emptied forget.max_grace_period
/// in its session and kept a recovery record for ten years). Set before the
/// library is loaded in the session, the value is dropped when it loads
/// (with a WARNING); set after, it is refused (42501). What the database's
/// owner set with ALTER DATABASE as a superuser holds.
#[test]
fn policy_settings_are_for_superusers_alone() {
    let db = "e2e_errors_policy_settings";
    let mut c = billing_db(db);
    c.batch_execute(&format!(
        "ALTER DATABASE {db} SET forget.max_grace_period = '30 days';
         DROP ROLE IF EXISTS forget_gucop; CREATE ROLE forget_gucop LOGIN;
         SELECT forget.grant('delete', 'forget_gucop');"
    ))
    .unwrap();
    let mut before_load = connect_as(db, "forget_gucop");
    before_load
        .batch_execute("SET forget.max_grace_period = ''")
        .unwrap();
    assert_eq!(
        sqlstate(before_load.query(
            "SELECT * FROM forget.delete_client(5, grace => '10 years')",
            &[]
        )),
        "22023",
        "the limit holds"
    );
    let mut after_load = connect_as(db, "forget_gucop");
    after_load
        .query(
            "SELECT * FROM forget.delete_client(5, dry_run => true)",
            &[],
        )
        .unwrap();
    for setting in [
        "forget.max_grace_period",
        "forget.grace_period",
        "forget.anonymous_email_domain",
        "forget.allow_drop",
    ] {
        assert_eq!(
            sqlstate(after_load.batch_execute(&format!("SET {setting} = 'x'"))),
            "42501",
            "{setting}"
        );
    }
    // Preferences stay anyone's.
    after_load
        .batch_execute("SET forget.batch_size = 10; SET forget.admin_contacts = 'me'")
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.clients WHERE id = 5"),
        1
    );
    drop((before_load, after_load, c));
    drop_db_and_roles(db, &["forget_gucop"]);
}
