//! Issue 18 (trust): no one's code runs with more privileges than its
//! author has. Real LOGIN roles over real connections.

mod common;
use common::*;
use postgres::Client;

/// Drops and creates LOGIN roles (cluster-wide: names are per test).
fn roles(c: &mut Client, names: &[&str]) {
    for r in names {
        c.batch_execute(&format!(
            "DROP OWNED BY {r} CASCADE; DROP ROLE IF EXISTS {r}"
        ))
        .ok();
        c.batch_execute(&format!("DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN"))
            .unwrap();
    }
}

fn is_superuser(c: &mut Client, role: &str) -> bool {
    c.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .unwrap()
        .get(0)
}

#[test]
fn text_that_closes_the_expression_early_is_refused_by_postgresqls_parser() {
    let mut c = billing_db("e2e_trust_parser");
    roles(&mut c, &["trust_parser_evil"]);
    let attacks = [
        // The closing parenthesis inside an E'' string for a hand-written
        // scanner, a real one for PostgreSQL.
        r"E'\'' ); ALTER ROLE trust_parser_evil SUPERUSER; SELECT (E'\''",
        // Quotes inside comments.
        "1 /* ' */ ); ALTER ROLE trust_parser_evil SUPERUSER; SELECT ( /* ' */ 1",
        "1 -- '\n); ALTER ROLE trust_parser_evil SUPERUSER; SELECT (1",
        "1), (2",
        "1) FROM pg_authid WHERE (true",
    ];
    for attack in attacks {
        for sql in [
            "SELECT forget.mask('billing.clients', 'companyname', $1)",
            "SELECT forget.add_cleanup_condition('attack', $1)",
            "SELECT forget.add_link('billing.orders', 'userid', 'billing.clients', condition => $1)",
        ] {
            let state = sqlstate(c.query(sql, &[&attack]));
            assert!(
                state == "22023" || state == "42601",
                "{sql} with {attack:?}: {state}"
            );
        }
    }
    for query in [
        "SELECT 1 WHERE $1 > 0; ALTER ROLE trust_parser_evil SUPERUSER",
        "WITH x AS (DELETE FROM billing.notes RETURNING 1) SELECT * FROM x WHERE $1 > 0",
        "DELETE FROM billing.notes WHERE client_id = $1 RETURNING 1",
    ] {
        assert_eq!(
            sqlstate(c.query("SELECT forget.add_rule('attack', $1, 'm')", &[&query])),
            "22023",
            "{query}"
        );
    }
    // A comment at the end cannot swallow what the extension adds.
    c.query(
        "SELECT forget.mask('billing.clients', 'companyname', $1)",
        &[&"NULL -- no company"],
    )
    .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
    assert!(!is_superuser(&mut c, "trust_parser_evil"));
    assert_eq!(count(&mut c, "SELECT * FROM billing.notes"), 20);
}

#[test]
fn a_role_without_grants_cannot_stall_people_cleanup() {
    let db = "e2e_trust_lock";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE TABLE people (id bigint PRIMARY KEY, gone boolean);
         INSERT INTO people SELECT g, g % 2 = 0 FROM generate_series(1, 10) g;
         SELECT forget.register_subject('person', 'people');
         SELECT forget.add_cleanup_condition('gone', 's.gone');
         SELECT forget.set_cleanup(true);",
    )
    .unwrap();
    roles(&mut c, &["trust_lock_nobody"]);
    let mut nobody = connect_as(db, "trust_lock_nobody");
    // Every lock a role with no grants could take against the extension.
    nobody
        .batch_execute(
            "BEGIN;
             SELECT pg_advisory_lock(hashtext('pg_forget.cleanup'), hashtext('person'));
             SELECT pg_advisory_xact_lock(hashtext('pg_forget.cleanup'), hashtext('person'));",
        )
        .unwrap();
    assert_eq!(
        sqlstate(nobody.batch_execute("SELECT * FROM forget.cleanup_settings FOR UPDATE")),
        "42501"
    );
    c.batch_execute("SET statement_timeout = '5s'").unwrap();
    let done: i64 = c
        .query_one("SELECT deleted FROM forget.people_cleanup()", &[])
        .unwrap()
        .get(0);
    assert_eq!(done, 5);
}

#[test]
fn user_code_with_unqualified_names_works_in_every_action() {
    let db = "e2e_trust_names";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE SCHEMA app;
         SET search_path = app;
         CREATE TABLE clients (id bigint PRIMARY KEY, name text, active boolean NOT NULL DEFAULT true);
         CREATE TABLE orders (id bigint PRIMARY KEY, client_id bigint REFERENCES clients ON DELETE CASCADE);
         CREATE TABLE audit_log (what text);
         CREATE TABLE hook_calls (event text, key text);
         -- Unqualified names, no SET search_path: they resolve with the
         -- subject's declared search_path in every action.
         CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO audit_log VALUES (TG_OP || ' ' || TG_TABLE_NAME); RETURN NULL; END $$;
         CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON clients FOR EACH ROW EXECUTE FUNCTION log_change();
         CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW EXECUTE FUNCTION log_change();
         CREATE FUNCTION hook(subject text, key text, context jsonb) RETURNS void LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO hook_calls VALUES (context->>'action', key); END $$;
         INSERT INTO clients VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy');
         INSERT INTO orders VALUES (10, 1), (20, 2), (30, 3);
         SELECT forget.register_subject('client', 'clients', active_column => 'active');
         SELECT forget.mask('clients', 'name', $$'Anonymous'$$);",
    )
    .unwrap();
    for event in ["delete", "anonymize", "restore", "deactivate", "reactivate"] {
        for when in ["before", "after"] {
            c.execute(
                "SELECT forget.on($1, 'app.hook(text, text, jsonb)')",
                &[&format!("{when}_{event}")],
            )
            .unwrap();
        }
    }
    c.batch_execute("RESET search_path; SET search_path = pg_catalog")
        .unwrap();
    for sql in [
        "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        "SELECT * FROM forget.restore_client(1)",
        "SELECT forget.deactivate(2, 'admin', 'test')",
        "SELECT forget.reactivate(2, 'admin')",
        "SELECT * FROM forget.deactivate_inactive('0 seconds')",
        "SELECT * FROM forget.anonymize_client(3)",
        "SELECT * FROM forget.delete_client(1)",
    ] {
        c.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    let hooks = count(&mut c, "SELECT * FROM app.hook_calls");
    assert!(hooks >= 10, "every action's hooks ran: {hooks}");
    assert!(count(&mut c, "SELECT * FROM app.audit_log") >= 6);
}

#[test]
fn a_temporary_table_cannot_stand_in_for_a_rules_table() {
    let db = "e2e_trust_temp_rule";
    let mut c = billing_db(db);
    roles(&mut c, &["trust_temp_operator"]);
    c.batch_execute(
        "GRANT EXECUTE ON FUNCTION forget.delete_client(bigint, text, text, boolean, interval, text) TO trust_temp_operator;
         GRANT TEMPORARY ON DATABASE e2e_trust_temp_rule TO trust_temp_operator;
         UPDATE billing.invoices SET status = 'Unpaid' WHERE id = (SELECT min(id) FROM billing.invoices WHERE client_id = 4);",
    )
    .unwrap();
    let mut op = connect_as(db, "trust_temp_operator");
    op.batch_execute(
        "CREATE TEMP TABLE invoices (id bigint, client_id bigint, status text);
         SET search_path = pg_temp, billing, public;",
    )
    .unwrap();
    assert_eq!(
        sqlstate(op.query("SELECT * FROM forget.delete_client(4)", &[])),
        "55000",
        "the rule still reads billing.invoices"
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.clients WHERE id = 4"),
        1
    );
}

/// A schema owned by a role that is no superuser, whose trigger, hook, mask,
/// rule, link condition and cleanup condition each record who runs them,
/// and fail when it is anyone but that role.
fn owned_app(db: &str, owner: &str) -> Client {
    let mut c = fresh_db(db);
    roles(&mut c, &[owner]);
    c.batch_execute(&format!(
        "CREATE SCHEMA app AUTHORIZATION {owner};
         SET ROLE {owner};
         SET search_path = app;
         CREATE TABLE clients (id bigint PRIMARY KEY, name text NOT NULL, active boolean NOT NULL DEFAULT true,
                               gone boolean NOT NULL DEFAULT false);
         CREATE TABLE orders (id bigint PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients ON DELETE CASCADE,
                              kind text);
         CREATE TABLE seen (what text, who name, super boolean);
         CREATE FUNCTION seen(what text) RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN
             IF current_user <> '{owner}' OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                 RAISE EXCEPTION '% ran as %', what, current_user;
             END IF;
             INSERT INTO seen SELECT what, current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
             RETURN true;
         END $$;
         CREATE FUNCTION on_change() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM seen('trigger ' || TG_OP); RETURN NULL; END $$;
         CREATE TRIGGER on_change AFTER INSERT OR UPDATE OR DELETE ON clients FOR EACH ROW EXECUTE FUNCTION on_change();
         CREATE TRIGGER on_change AFTER INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW EXECUTE FUNCTION on_change();
         CREATE FUNCTION hook(subject text, key text, context jsonb) RETURNS void LANGUAGE plpgsql AS
             $$ BEGIN PERFORM seen('hook ' || (context->>'action')); END $$;
         CREATE FUNCTION mask_name(name text) RETURNS text LANGUAGE plpgsql AS
             $$ BEGIN PERFORM seen('mask'); RETURN 'Anonymous'; END $$;
         INSERT INTO clients (id, name, gone) SELECT g, 'c' || g, g > 6 FROM generate_series(1, 9) g;
         INSERT INTO orders SELECT 10 * g, g, 'web' FROM generate_series(1, 9) g;
         RESET ROLE;
         SELECT forget.register_subject('client', 'clients', active_column => 'active');
         SELECT forget.mask('clients', 'name', 'mask_name(name)');
         SELECT forget.add_rule('seen', 'SELECT 1 FROM clients WHERE id = $1 AND NOT seen(''rule'')', 'never');
         SELECT forget.add_link('orders', 'client_id', 'clients', condition => 'seen(''link condition'')');
         SELECT forget.add_cleanup_condition('gone', 's.gone AND seen(''condition'')');
         SELECT forget.set_cleanup(true);"
    ))
    .unwrap();
    for event in [
        "delete",
        "anonymize",
        "restore",
        "deactivate",
        "reactivate",
        "minimize",
    ] {
        for when in ["before", "after"] {
            c.execute(
                "SELECT forget.on($1, 'app.hook(text, text, jsonb)')",
                &[&format!("{when}_{event}")],
            )
            .unwrap();
        }
    }
    c.batch_execute("RESET search_path").unwrap();
    c
}

#[test]
fn user_code_runs_as_the_run_as_role_in_every_action() {
    let db = "e2e_trust_identity";
    let owner = "trust_identity_owner";
    let mut c = owned_app(db, owner);
    let seen = |c: &mut Client, what: &str| -> i64 {
        count(c, &format!("SELECT * FROM app.seen WHERE what LIKE '{what}%' AND who = '{owner}' AND NOT super"))
    };
    for (sql, expected) in [
        ("SELECT * FROM forget.eligibility(1)", vec!["rule"]),
        ("SELECT forget.export_client(1)", vec!["link condition"]),
        (
            "SELECT * FROM forget.delete_client(1)",
            vec!["rule", "hook delete", "trigger DELETE", "link condition"],
        ),
        (
            "SELECT * FROM forget.anonymize_client(2, grace => '1 day')",
            vec!["mask", "hook anonymize", "trigger UPDATE"],
        ),
        (
            "SELECT * FROM forget.restore_client(2)",
            vec!["hook restore"],
        ),
        (
            "SELECT * FROM forget.delete_client(3, grace => '1 day')",
            vec!["trigger DELETE"],
        ),
        (
            "SELECT * FROM forget.restore_client(3)",
            vec!["trigger INSERT"],
        ),
        (
            "SELECT forget.deactivate(4, 'admin', 'test')",
            vec!["hook deactivate"],
        ),
        (
            "SELECT forget.reactivate(4, 'admin')",
            vec!["hook reactivate"],
        ),
        (
            "SELECT * FROM forget.people_cleanup()",
            vec!["condition", "hook delete"],
        ),
    ] {
        c.batch_execute("TRUNCATE app.seen").unwrap();
        c.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        for what in expected {
            assert!(seen(&mut c, what) > 0, "{sql}: {what} ran as {owner}");
        }
        assert_eq!(
            count(
                &mut c,
                &format!("SELECT * FROM app.seen WHERE who <> '{owner}' OR super")
            ),
            0
        );
    }
    assert_eq!(
        count(&mut c, "SELECT * FROM app.clients WHERE id > 6"),
        0,
        "cleanup destroyed them"
    );
}

#[test]
fn a_table_of_an_untrusted_role_stops_the_action_until_trusted() {
    let db = "e2e_trust_foreign";
    let owner = "trust_foreign_owner";
    let mut c = owned_app(db, owner);
    roles(&mut c, &["trust_foreign_evil", "trust_foreign_operator"]);
    // A role with only REFERENCES on the subject table hangs its own table,
    // with a trigger that would make it superuser, below the subject.
    c.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA app TO trust_foreign_evil;
         GRANT REFERENCES ON app.clients TO trust_foreign_evil;
         CREATE SCHEMA evil AUTHORIZATION trust_foreign_evil;
         GRANT USAGE ON SCHEMA evil TO PUBLIC;
         SET ROLE trust_foreign_evil;
         CREATE TABLE evil.notes (id bigint PRIMARY KEY, client_id bigint REFERENCES app.clients ON DELETE CASCADE);
         CREATE FUNCTION evil.grab() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN ALTER ROLE trust_foreign_evil SUPERUSER; RETURN OLD; END $$;
         CREATE TRIGGER grab BEFORE DELETE ON evil.notes FOR EACH ROW EXECUTE FUNCTION evil.grab();
         GRANT ALL ON evil.notes TO PUBLIC;
         INSERT INTO evil.notes VALUES (1, 5);
         RESET ROLE;
         GRANT EXECUTE ON FUNCTION forget.delete_client(bigint, text, text, boolean, interval, text) TO trust_foreign_operator;"
    ))
    .unwrap();
    let mut op = connect_as(db, "trust_foreign_operator");
    let refused = op.query("SELECT * FROM forget.delete_client(5)", &[]);
    let text = message(op.query("SELECT * FROM forget.delete_client(5)", &[]));
    assert_eq!(sqlstate(refused), "42501");
    assert!(
        text.contains("evil.notes") && text.contains("trust_foreign_evil"),
        "{text}"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.export_client(5)", &[])),
        "42501"
    );
    assert!(!is_superuser(&mut c, "trust_foreign_evil"));
    let listed: Vec<String> = c
        .query(
            "SELECT hint FROM forget.check() WHERE object = 'evil.notes'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(listed.len(), 1, "check() names the table");
    assert!(listed[0].contains("forget.trust"));
    // Trusted, its trigger runs with the run-as role's privileges: never a
    // superuser's.
    c.batch_execute("SELECT forget.trust('trust_foreign_evil')")
        .unwrap();
    assert_eq!(
        sqlstate(op.query("SELECT * FROM forget.delete_client(5)", &[])),
        "42501"
    );
    assert!(!is_superuser(&mut c, "trust_foreign_evil"));
    c.batch_execute("SELECT forget.distrust('trust_foreign_evil')")
        .unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT forget.distrust('trust_foreign_evil')", &[])),
        "22023"
    );
    let text = message(c.query("SELECT forget.distrust('trust_foreign_evil')", &[]));
    assert!(
        text.starts_with("role trust_foreign_evil is not trusted by subject"),
        "named, not numbered: {text}"
    );
    // A hook owned by an untrusted role is refused the same way.
    c.batch_execute(
        "SET ROLE trust_foreign_evil;
         DROP TABLE evil.notes;
         CREATE FUNCTION evil.hook(subject text, key text, context jsonb) RETURNS void LANGUAGE plpgsql AS
             $$ BEGIN ALTER ROLE trust_foreign_evil SUPERUSER; END $$;
         RESET ROLE;
         SELECT forget.on('before_delete', 'evil.hook(text, text, jsonb)');",
    )
    .unwrap();
    assert_eq!(
        sqlstate(op.query("SELECT * FROM forget.delete_client(6)", &[])),
        "42501"
    );
    assert!(!is_superuser(&mut c, "trust_foreign_evil"));
}

#[test]
fn a_replaced_hook_body_runs_as_the_run_as_role() {
    let db = "e2e_trust_hook";
    let owner = "trust_hook_owner";
    let mut c = owned_app(db, owner);
    // The application's owner replaces its hook: the new body runs as the
    // owner, not as the superuser who installed the extension.
    c.batch_execute(&format!(
        "SET ROLE {owner};
         CREATE OR REPLACE FUNCTION app.hook(subject text, key text, context jsonb) RETURNS void LANGUAGE plpgsql AS
             $$ BEGIN ALTER ROLE {owner} SUPERUSER; END $$;
         RESET ROLE;"
    ))
    .unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(5)", &[])),
        "42501"
    );
    assert!(!is_superuser(&mut c, owner));
}

#[test]
fn row_level_security_limits_what_a_caller_reaches_through_the_extension() {
    let db = "e2e_trust_rls";
    let owner = "trust_rls_owner";
    let mut c = owned_app(db, owner);
    roles(&mut c, &["trust_rls_north", "trust_rls_blind"]);
    c.batch_execute(&format!(
        "SET ROLE {owner};
         SET search_path = app;
         ALTER TABLE app.clients ADD COLUMN region text NOT NULL DEFAULT 'north';
         UPDATE app.clients SET region = 'south' WHERE id IN (5, 6);
         ALTER TABLE app.clients ENABLE ROW LEVEL SECURITY;
         CREATE POLICY north ON app.clients TO trust_rls_north USING (region = 'north');
         GRANT USAGE ON SCHEMA app TO trust_rls_north, trust_rls_blind;
         GRANT SELECT ON app.clients TO trust_rls_north;
         RESET ROLE;
         RESET search_path;
         TRUNCATE app.seen;
         GRANT EXECUTE ON FUNCTION forget.delete_client(bigint, text, text, boolean, interval, text),
                                   forget.export_client(bigint, text), forget.eligibility(bigint, text, text)
               TO trust_rls_north, trust_rls_blind;
         SELECT forget.grant('status', 'trust_rls_north');"
    ))
    .unwrap();
    let mut north = connect_as(db, "trust_rls_north");
    for sql in [
        "SELECT forget.export_client(5)",
        "SELECT * FROM forget.eligibility(5)",
        "SELECT * FROM forget.delete_client(5)",
    ] {
        assert_eq!(sqlstate(north.query(sql, &[])), "P0002", "{sql}");
    }
    assert_eq!(count(&mut c, "SELECT * FROM app.clients WHERE id = 5"), 1);
    north
        .query("SELECT * FROM forget.delete_client(2)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM app.clients WHERE id = 2"), 0);
    for sql in [
        "SELECT * FROM forget.account_status(5)",
        "SELECT forget.last_activity(5)",
    ] {
        assert_eq!(sqlstate(north.query(sql, &[])), "P0002", "{sql}");
    }
    // A caller who may not read the table at all sees no client.
    let mut blind = connect_as(db, "trust_rls_blind");
    assert_eq!(
        sqlstate(blind.query("SELECT * FROM forget.delete_client(3)", &[])),
        "P0002"
    );
}

#[test]
fn hooks_are_declared_by_name_or_signature_and_bound_then() {
    let mut c = fresh_db("e2e_trust_on");
    c.batch_execute(
        "CREATE SCHEMA app;
         CREATE TABLE app.clients (id bigint PRIMARY KEY);
         CREATE TABLE app.calls (key text);
         CREATE FUNCTION app.note(subject text, key text, context jsonb) RETURNS void LANGUAGE sql
             AS $$ INSERT INTO app.calls VALUES (key) $$;
         INSERT INTO app.clients VALUES (1), (2);
         SELECT forget.register_subject('client', 'app.clients');
         SET search_path = app;
         SELECT forget.on('before_delete', 'note');
         RESET search_path;
         SELECT forget.on('after_delete', 'app.note(text, text, jsonb)');",
    )
    .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM forget.hooks"), 2);
    for (event, fn_) in [
        ("before_delete", "app.nope"),
        ("before_delete", "pg_catalog.now()"),
        ("before_shred", "app.note"),
    ] {
        assert_eq!(
            sqlstate(c.query("SELECT forget.on($1, $2)", &[&event, &fn_])),
            "22023",
            "{event} {fn_}"
        );
    }
    // A look-alike created later in a schema on the path changes nothing.
    c.batch_execute(
        "CREATE FUNCTION public.note(subject text, key text, context jsonb) RETURNS void LANGUAGE sql
             AS $$ SELECT 1 / 0 $$;
         SELECT * FROM forget.delete_client(1);",
    )
    .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM app.calls WHERE key = '1'"), 2);
}

#[test]
fn a_capability_is_granted_for_every_key_overload() {
    let db = "e2e_trust_grant";
    let mut c = billing_db(db);
    roles(&mut c, &["trust_grant_app"]);
    c.batch_execute(
        "SELECT forget.grant('delete', 'trust_grant_app');
         SELECT forget.grant('status', 'trust_grant_app');
         SELECT forget.grant('audit', 'trust_grant_app');",
    )
    .unwrap();
    let mut app = connect_as(db, "trust_grant_app");
    // Drivers that send untyped parameters pick the text overload.
    app.query("SELECT * FROM forget.delete_client($1::text)", &[&"3"])
        .unwrap();
    app.query("SELECT * FROM forget.delete_client(4::bigint)", &[])
        .unwrap();
    assert_eq!(
        sqlstate(app.query("SELECT * FROM forget.delete_client($1::text)", &[&"x"])),
        "22P02",
        "a key that does not cast, not a missing privilege"
    );
    app.query("SELECT * FROM forget.account_status($1::text)", &[&"5"])
        .unwrap();
    app.query("SELECT forget.last_activity(5)", &[]).unwrap();
    assert_eq!(count(&mut app, "SELECT * FROM forget.audit"), 2);
    app.query("SELECT forget.verify_audit()", &[]).unwrap();
    for sql in [
        "SELECT * FROM forget.anonymize_client(5)",
        "SELECT forget.export_client(5)",
        "SELECT * FROM forget.undo",
    ] {
        assert_eq!(sqlstate(app.query(sql, &[])), "42501", "{sql}");
    }
    c.batch_execute("SELECT forget.revoke('delete', 'trust_grant_app')")
        .unwrap();
    assert_eq!(
        sqlstate(app.query("SELECT * FROM forget.delete_client($1::text)", &[&"6"])),
        "42501"
    );
    assert_eq!(
        sqlstate(c.query("SELECT forget.grant('shred', 'trust_grant_app')", &[])),
        "22023"
    );
    drop(app);
    c.batch_execute("SELECT forget.revoke('status', 'trust_grant_app'); SELECT forget.revoke('audit', 'trust_grant_app')")
        .unwrap();
}

#[test]
fn a_look_alike_created_later_changes_nothing_that_was_declared() {
    let db = "e2e_trust_lookalike";
    let mut c = billing_db(db);
    roles(&mut c, &["trust_lookalike_evil"]);
    // billing's mask: lastname = format('Client_%s', id), declared with
    // search_path billing, public. A role with CREATE on public adds a
    // better-matching overload there.
    c.batch_execute(
        "GRANT CREATE ON SCHEMA public TO trust_lookalike_evil;
         SET ROLE trust_lookalike_evil;
         CREATE FUNCTION public.format(text, bigint) RETURNS text LANGUAGE plpgsql AS
             $$ BEGIN ALTER ROLE trust_lookalike_evil SUPERUSER; RETURN 'x'; END $$;
         RESET ROLE;",
    )
    .unwrap();
    let refused = c.query("SELECT * FROM forget.anonymize_client(2)", &[]);
    let text = message(c.query("SELECT * FROM forget.anonymize_client(2)", &[]));
    assert_eq!(sqlstate(refused), "55000");
    assert!(text.contains("public.format"), "{text}");
    assert!(!is_superuser(&mut c, "trust_lookalike_evil"));
    // So does a temporary table named like a rule's table.
    c.batch_execute("DROP FUNCTION public.format(text, bigint)")
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
    // Declared again knowingly, it is what the DBA asked for.
    c.batch_execute(
        "CREATE FUNCTION public.format(text, bigint) RETURNS text LANGUAGE sql AS $$ SELECT 'Client' $$;
         SET search_path = billing, public;
         SELECT forget.mask('billing.clients', 'lastname', $$format('Client_%s', id)$$);
         RESET search_path;",
    )
    .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(3)", &[])
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM billing.clients WHERE id = 3 AND lastname = 'Client'"
        ),
        1
    );
}

#[test]
fn an_error_in_user_code_says_where_it_came_from() {
    let db = "e2e_trust_context";
    let owner = "trust_context_owner";
    let mut c = owned_app(db, owner);
    c.batch_execute(&format!(
        "SET ROLE {owner};
         CREATE FUNCTION app.refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'orders are kept'; END $$;
         CREATE TRIGGER refuse BEFORE DELETE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.refuse();
         RESET ROLE;"
    ))
    .unwrap();
    let err = c
        .query("SELECT * FROM forget.delete_client(5)", &[])
        .unwrap_err();
    let db_err = err.as_db_error().expect("a database error");
    assert_eq!(db_err.message(), "orders are kept");
    // PostgreSQL's context of the error (the trigger, and that pg_forget
    // ran it) travels in the DETAIL: the extension's Rust layer passes an
    // error on without its CONTEXT.
    let context = db_err.detail().unwrap_or_default();
    assert!(
        context.starts_with("Raised in PL/pgSQL function refuse() line 1 at RAISE"),
        "{context}"
    );
    assert!(
        context.contains(
            "user code run by pg_forget for subject \"client\" as role trust_context_owner"
        ),
        "{context}"
    );
    // A domain in the caller's temporary schema cannot stand in for a type
    // the extension names.
    roles(&mut c, &["trust_context_temp"]);
    c.batch_execute(
        "DROP TRIGGER refuse ON app.orders;
         SELECT forget.grant('delete', 'trust_context_temp');
         GRANT TEMPORARY ON DATABASE e2e_trust_context TO trust_context_temp;",
    )
    .unwrap();
    let mut temp = connect_as(db, "trust_context_temp");
    temp.batch_execute(
        "CREATE FUNCTION pg_temp.grab(text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
         CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.grab(VALUE));
         CREATE DOMAIN pg_temp.bigint AS pg_catalog.int8 CHECK (pg_temp.grab(VALUE::pg_catalog.text));
         SET search_path = pg_temp, public;",
    )
    .unwrap();
    temp.query("SELECT * FROM forget.delete_client(6)", &[])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(count(&mut c, "SELECT * FROM app.clients WHERE id = 6"), 0);
}

#[test]
fn what_the_run_as_role_may_not_read_is_refused_at_declaration_and_temp_objects_stand_in_for_nothing(
) {
    let db = "e2e_trust_declare";
    let owner = "trust_declare_owner";
    let mut c = owned_app(db, owner);
    // The run-as role cannot read pg_authid: such a mask or condition is
    // refused when declared, whoever declares it.
    for sql in [
        "SELECT forget.mask('app.clients', 'name', '(SELECT rolpassword FROM pg_authid LIMIT 1)')",
        "SELECT forget.add_cleanup_condition('secret', 'EXISTS (SELECT 1 FROM pg_authid WHERE rolpassword IS NOT NULL)')",
        "SELECT forget.add_rule('secret', 'SELECT 1 FROM pg_authid WHERE $1 > 0', 'm')",
    ] {
        let state = sqlstate(c.query(sql, &[]));
        assert!(state == "22023" || state == "42501", "{sql}: {state}");
    }
    // A cleanup role's temporary table named like a condition's table, or
    // a temporary view, changes nothing that was declared.
    roles(&mut c, &["trust_declare_cleaner"]);
    c.batch_execute(&format!(
        "SET ROLE {owner};
         CREATE TABLE app.keep (client_id bigint);
         INSERT INTO app.keep VALUES (7), (8);
         RESET ROLE;
         SET search_path = app;
         SELECT forget.add_cleanup_condition('not_kept', 'NOT EXISTS (SELECT 1 FROM keep k WHERE k.client_id = s.id)');
         RESET search_path;
         SELECT forget.grant('cleanup', 'trust_declare_cleaner');
         GRANT TEMPORARY ON DATABASE {db} TO trust_declare_cleaner;"
    ))
    .unwrap();
    let preview: i64 = c
        .query_one(
            "SELECT candidates FROM forget.people_cleanup(dry_run => true)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(preview, 1, "only client 9 is gone and not kept");
    let mut cleaner = connect_as(db, "trust_declare_cleaner");
    cleaner
        .batch_execute(
            "CREATE TEMP TABLE keep (client_id bigint);
             CREATE TEMP VIEW clients AS SELECT 1::bigint AS id;
             SET search_path = pg_temp, app, public;",
        )
        .unwrap();
    let deleted: i64 = cleaner
        .query_one("SELECT deleted FROM forget.people_cleanup()", &[])
        .unwrap()
        .get(0);
    assert_eq!(deleted, 1);
    assert_eq!(
        c.query("SELECT id FROM app.clients WHERE gone ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i64>(0))
            .collect::<Vec<_>>(),
        vec![7, 8],
        "kept clients stay"
    );
}

#[test]
fn the_activity_trigger_updates_the_subject_table_as_its_run_as_role() {
    let db = "e2e_trust_activity";
    let owner = "trust_activity_owner";
    let mut c = fresh_db(db);
    roles(&mut c, &[owner]);
    c.batch_execute(&format!(
        "CREATE SCHEMA app AUTHORIZATION {owner};
         SET ROLE {owner};
         CREATE TABLE app.people (id bigint PRIMARY KEY, minimized_at timestamptz);
         CREATE TABLE app.roles (person_id bigint REFERENCES app.people, start_on date);
         CREATE FUNCTION app.guard() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                 RAISE EXCEPTION 'ran as %', current_user;
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER guard BEFORE UPDATE ON app.people FOR EACH ROW EXECUTE FUNCTION app.guard();
         INSERT INTO app.people VALUES (1, now()), (2, now());
         RESET ROLE;
         SELECT forget.register_subject('person', 'app.people', minimized_column => 'minimized_at');
         SELECT forget.add_activity('app.roles', 'start_on', via => 'person_id');"
    ))
    .unwrap();
    c.batch_execute(&format!(
        "SET ROLE {owner}; INSERT INTO app.roles VALUES (1, current_date); RESET ROLE;"
    ))
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM app.people WHERE minimized_at IS NULL"
        ),
        1,
        "the new role cleared the mark, as the owner"
    );
}

#[test]
fn the_doctor_plans_declared_sql_as_the_run_as_role() {
    let db = "e2e_trust_doctor";
    let owner = "trust_doctor_owner";
    let mut c = owned_app(db, owner);
    c.batch_execute(&format!(
        "SET ROLE {owner};
         CREATE FUNCTION app.cutoff(n int) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
         BEGIN
             IF current_user <> '{owner}' THEN RAISE EXCEPTION 'cutoff ran as %', current_user; END IF;
             RETURN n;
         END $$;
         RESET ROLE;
         SELECT forget.add_cleanup_condition('early', 's.id < app.cutoff(24)');"
    ))
    .unwrap();
    // Planning the candidate query evaluates the immutable call: as the
    // owner, not as the superuser who asks the doctor.
    c.query("SELECT * FROM forget.check()", &[])
        .unwrap_or_else(|e| panic!("{e:?}"));
}

#[test]
fn a_function_of_an_untrusted_role_called_by_a_mask_stops_the_action() {
    let db = "e2e_trust_mask_function";
    let mut c = billing_db(db);
    roles(&mut c, &["trust_maskfn_mallory"]);
    c.batch_execute(
        "GRANT CREATE ON SCHEMA public TO trust_maskfn_mallory;
         SET ROLE trust_maskfn_mallory;
         CREATE FUNCTION public.initials(t text) RETURNS text LANGUAGE sql AS $$ SELECT left(t, 1) $$;
         RESET ROLE;
         SELECT forget.mask('billing.clients', 'firstname', 'public.initials(firstname)');",
    )
    .unwrap();
    let refused = c.query("SELECT * FROM forget.anonymize_client(3)", &[]);
    let text = message(c.query("SELECT * FROM forget.anonymize_client(3)", &[]));
    assert_eq!(sqlstate(refused), "42501");
    assert!(
        text.contains("initials") && text.contains("trust_maskfn_mallory"),
        "{text}"
    );
    c.batch_execute("SELECT forget.trust('trust_maskfn_mallory')")
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(3)", &[])
        .unwrap();
}

#[test]
fn ddl_in_a_hook_does_not_break_the_action() {
    let db = "e2e_trust_ddl_hook";
    let owner = "trust_ddl_owner";
    let mut c = owned_app(db, owner);
    c.batch_execute(&format!(
        "SET ROLE {owner};
         CREATE OR REPLACE FUNCTION app.hook(subject text, key text, context jsonb) RETURNS void LANGUAGE plpgsql AS
             $$ BEGIN EXECUTE 'GRANT SELECT ON app.orders TO PUBLIC'; END $$;
         RESET ROLE;"
    ))
    .unwrap();
    c.query("SELECT * FROM forget.delete_client(5)", &[])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(count(&mut c, "SELECT * FROM app.clients WHERE id = 5"), 0);
}

/// The mask check runs a declared mask under the search_path it was
/// declared with, and the doctor checks its own suggestions: a role that may
/// create functions in `public` (PostgreSQL 15's database owner, or anyone
/// in a database upgraded from 14) puts look-alikes of what the check calls
/// there (`format`) and neither `check()` nor `mask()` run
/// by a superuser ever runs them (found by a security review: check() ran a
/// `public.format(text, name, regclass)` as the run-as role, a superuser).
#[test]
fn look_alikes_on_a_declared_path_never_run_inside_the_mask_check() {
    let db = "e2e_trust_mask_check_path";
    let mut c = billing_db(db);
    c.batch_execute(
        "DROP ROLE IF EXISTS trust_path_mallory; CREATE ROLE trust_path_mallory LOGIN;
         GRANT CREATE ON SCHEMA public TO trust_path_mallory;
         CREATE SEQUENCE public.ran; GRANT USAGE ON SEQUENCE public.ran TO PUBLIC;",
    )
    .unwrap();
    let mut mallory = connect_as(db, "trust_path_mallory");
    mallory
        .batch_execute(
            "CREATE FUNCTION public.format(fmt text, col name, tbl regclass) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_catalog.nextval('public.ran'); RETURN pg_catalog.format(fmt, col, tbl); END $$;
             CREATE FUNCTION public.format(fmt text, a name, b regclass, c text) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_catalog.nextval('public.ran'); RETURN pg_catalog.format(fmt, a, b, c); END $$;",
        )
        .unwrap();
    // check() tries NULL on billing's NOT NULL unmasked columns: the
    // "gives NULL" answer is formatted after the mask ran.
    let findings = count(&mut c, "SELECT * FROM forget.check('client')");
    assert!(findings > 0);
    // mask() under a path with public: a mask that gives NULL for a NOT NULL
    // column is refused, its message formatted the same way.
    c.batch_execute("SET search_path = public, pg_catalog")
        .unwrap();
    assert_eq!(
        sqlstate(c.query(
            "SELECT forget.mask('billing.client_settings', 'name', 'NULL')",
            &[]
        )),
        "22023"
    );
    c.batch_execute("RESET search_path").unwrap();
    // A sequence is not rolled back with the refused mask().
    let called: bool = c
        .query_one("SELECT is_called FROM public.ran", &[])
        .unwrap()
        .get(0);
    assert!(!called, "no look-alike ran");
    assert!(!is_superuser(&mut c, "trust_path_mallory"));
    drop((mallory, c));
    drop_db_and_roles(db, &["trust_path_mallory"]);
}

/// A connection that found the owners of the subject's tables trusted
/// must check again when a role changes elsewhere: a membership revoked, a
/// superuser made an ordinary role (no configuration changes with them).
#[test]
fn a_role_changed_in_another_session_ends_the_trust_a_connection_found() {
    let db = "e2e_trust_role_change";
    let owner = "trust_change_owner";
    let mut c = owned_app(db, owner);
    roles(&mut c, &["trust_change_member", "trust_change_super"]);
    // A table owned by a member of the run-as role: trusted through it.
    c.batch_execute(&format!(
        "GRANT {owner} TO trust_change_member;
         GRANT USAGE, CREATE ON SCHEMA app TO trust_change_member;
         SET ROLE trust_change_member;
         CREATE TABLE app.notes (id bigint PRIMARY KEY, client_id bigint REFERENCES app.clients ON DELETE CASCADE);
         INSERT INTO app.notes SELECT g, g FROM generate_series(1, 9) g;
         GRANT ALL ON app.notes TO {owner};
         RESET ROLE;
         ALTER ROLE trust_change_super SUPERUSER;"
    ))
    .unwrap();
    let mut op = connect(db);
    let dry = "SELECT * FROM forget.delete_client(1, dry_run => true)";
    let delete = "SELECT * FROM forget.anonymize_client(2)";
    op.query(dry, &[]).unwrap();
    c.batch_execute(&format!("REVOKE {owner} FROM trust_change_member"))
        .unwrap();
    assert_eq!(sqlstate(op.query(dry, &[])), "42501", "membership revoked");
    assert_eq!(sqlstate(op.query(delete, &[])), "42501");
    c.batch_execute(&format!("GRANT {owner} TO trust_change_member"))
        .unwrap();
    op.query(dry, &[]).unwrap();
    // A table owned by a superuser, who stops being one.
    c.batch_execute("ALTER TABLE app.notes OWNER TO trust_change_super")
        .unwrap();
    op.query(dry, &[]).unwrap();
    c.batch_execute("ALTER ROLE trust_change_super NOSUPERUSER")
        .unwrap();
    assert_eq!(sqlstate(op.query(dry, &[])), "42501", "superuser no more");
    assert_eq!(sqlstate(op.query(delete, &[])), "42501");
    // deactivate and reactivate check the hooks' owners the same way.
    c.batch_execute(&format!(
        "GRANT {owner} TO trust_change_member;
         SET ROLE trust_change_member;
         CREATE FUNCTION app.member_hook(subject text, key text, context jsonb) RETURNS void
             LANGUAGE plpgsql AS $$ BEGIN END $$;
         RESET ROLE;
         SELECT forget.on('before_deactivate', 'app.member_hook(text, text, jsonb)');
         SELECT forget.on('before_reactivate', 'app.member_hook(text, text, jsonb)');"
    ))
    .unwrap();
    op.query("SELECT forget.deactivate(3, 'admin', 'test')", &[])
        .unwrap();
    c.batch_execute(&format!("REVOKE {owner} FROM trust_change_member"))
        .unwrap();
    assert_eq!(
        sqlstate(op.query("SELECT forget.reactivate(3, 'admin')", &[])),
        "42501"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM app.clients WHERE id = 2 AND name = 'c2'"
        ),
        1,
        "nothing anonymized"
    );
    // A server-side prepared statement in an open transaction: the revoke
    // committed meanwhile is taken in before the verdict is used.
    c.batch_execute(&format!(
        "GRANT {owner} TO trust_change_member; ALTER TABLE app.notes OWNER TO trust_change_member"
    ))
    .unwrap();
    let prepared = op
        .prepare("SELECT count(*) FROM forget.delete_client($1::bigint, dry_run => $2)")
        .unwrap();
    op.query(&prepared, &[&4i64, &true]).unwrap();
    let mut tx = op.transaction().unwrap();
    tx.query(&prepared, &[&4i64, &true]).unwrap();
    c.batch_execute(&format!("REVOKE {owner} FROM trust_change_member"))
        .unwrap();
    assert_eq!(
        sqlstate(tx.query(&prepared, &[&4i64, &false])),
        "42501",
        "in the open transaction"
    );
    tx.rollback().unwrap();
    // REASSIGN OWNED moves owners without any DDL event: the hook and the
    // table now belong to a role nobody trusts.
    c.batch_execute(&format!("GRANT {owner} TO trust_change_member"))
        .unwrap();
    op.query(&prepared, &[&4i64, &true]).unwrap();
    op.query("SELECT forget.deactivate(5, 'admin', 'test')", &[])
        .unwrap();
    roles(&mut c, &["trust_change_outsider"]);
    c.batch_execute("REASSIGN OWNED BY trust_change_member TO trust_change_outsider")
        .unwrap();
    assert_eq!(
        sqlstate(op.query(&prepared, &[&4i64, &true])),
        "42501",
        "reassigned"
    );
    assert_eq!(
        sqlstate(op.query("SELECT forget.reactivate(5, 'admin')", &[])),
        "42501",
        "reassigned hook"
    );
}

/// A role granted TRIGGER on a table of the graph (not its owner) hangs a
/// function of its own on it: that function would run as the run-as role,
/// so its owner is judged like a table's or a hook's owner.
#[test]
fn a_trigger_function_of_an_untrusted_role_stops_the_action() {
    let db = "e2e_trust_trigger_privilege";
    let owner = "trust_trigger_owner";
    let mut c = owned_app(db, owner);
    roles(&mut c, &["trust_trigger_evil"]);
    c.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA app TO trust_trigger_evil;
         GRANT TRIGGER ON app.orders TO trust_trigger_evil;
         CREATE SCHEMA evil AUTHORIZATION trust_trigger_evil;
         GRANT USAGE ON SCHEMA evil TO PUBLIC;
         SET ROLE trust_trigger_evil;
         CREATE TABLE evil.ran (who name);
         GRANT INSERT ON evil.ran TO PUBLIC;
         CREATE FUNCTION evil.grab() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO evil.ran VALUES (current_user); RETURN OLD; END $$;
         CREATE TRIGGER grab BEFORE DELETE OR UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION evil.grab();
         RESET ROLE;"
    ))
    .unwrap();
    for call in [
        "SELECT * FROM forget.delete_client(1)",
        "SELECT * FROM forget.delete_client(1, dry_run => true)",
        "SELECT * FROM forget.anonymize_client(2)",
        "SELECT forget.export_client(3)",
    ] {
        let refused = c.query(call, &[]);
        let text = message(c.query(call, &[]));
        assert_eq!(sqlstate(refused), "42501", "{call}");
        assert!(
            text.contains("trigger grab on app.orders") && text.contains("trust_trigger_evil"),
            "{call}: {text}"
        );
    }
    assert_eq!(count(&mut c, "SELECT * FROM evil.ran"), 0, "never ran");
    // The same code in the WHEN condition of a trigger whose function is
    // trusted (a superuser's).
    c.batch_execute(
        "DROP TRIGGER grab ON app.orders;
         SET ROLE trust_trigger_evil;
         CREATE FUNCTION evil.seen() RETURNS boolean LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO evil.ran VALUES (current_user); RETURN false; END $$;
         CREATE TRIGGER grab BEFORE DELETE ON app.orders FOR EACH ROW
             WHEN (evil.seen()) EXECUTE FUNCTION suppress_redundant_updates_trigger();
         RESET ROLE;",
    )
    .unwrap();
    let text = message(c.query("SELECT * FROM forget.delete_client(1)", &[]));
    assert!(
        text.contains("evil.seen()") && text.contains("trust_trigger_evil"),
        "{text}"
    );
    assert_eq!(count(&mut c, "SELECT * FROM evil.ran"), 0, "never ran");
    c.batch_execute(
        "DROP TRIGGER grab ON app.orders;
         SET ROLE trust_trigger_evil;
         CREATE TRIGGER grab BEFORE DELETE OR UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION evil.grab();
         RESET ROLE;",
    )
    .unwrap();
    assert_eq!(
        count(&mut c, "SELECT * FROM app.orders WHERE client_id = 1"),
        1
    );
    // check() names it; trusted, the action runs it as the run-as role.
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.check() WHERE object LIKE 'trigger grab on app.orders%'"
        ),
        1
    );
    c.batch_execute("SELECT forget.trust('trust_trigger_evil')")
        .unwrap();
    c.query("SELECT * FROM forget.delete_client(1)", &[])
        .unwrap();
    assert_eq!(
        texts(&mut c, "SELECT who::text FROM evil.ran"),
        [owner],
        "ran as the run-as role"
    );
}
