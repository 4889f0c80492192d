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
