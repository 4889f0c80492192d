//! Issue 20: configuration can be removed again. Each drop function removes
//! one declaration and the actions stop using it; naming something that is
//! not declared is 22023.

mod common;
use common::*;

fn state(r: Result<impl Sized, postgres::Error>) -> String {
    sqlstate(r)
}

#[test]
fn each_declaration_can_be_removed_and_the_actions_stop_using_it() {
    let db = "e2e_configuration_drop";
    let mut c = billing_db(db);

    // A trial mask replaced nothing it cannot give back: dropping it leaves
    // the column unmasked, as before the trial.
    c.batch_execute("SELECT forget.mask('billing.clients', 'currency_id', 'NULL')")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.masks WHERE col = 'currency_id'"
        ),
        1
    );
    c.batch_execute("SELECT forget.drop_mask('billing.clients', 'currency_id')")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.masks WHERE col = 'currency_id'"
        ),
        0
    );

    // A rule: eligibility lists it, then no longer.
    let rules =
        |c: &mut postgres::Client| texts(c, "SELECT rule FROM forget.eligibility(2) ORDER BY 1");
    assert!(rules(&mut c).contains(&"open_invoices".to_string()));
    c.batch_execute("SELECT forget.drop_rule('open_invoices')")
        .unwrap();
    assert!(!rules(&mut c).contains(&"open_invoices".to_string()));

    // A link: the graph reaches tickets through it, then no longer.
    let reaches_tickets = |c: &mut postgres::Client| {
        count(
            c,
            "SELECT 1 FROM forget.graph() WHERE tbl = 'billing.tickets'::regclass",
        ) > 0
    };
    assert!(reaches_tickets(&mut c));
    c.batch_execute("SELECT forget.drop_link('billing.tickets', 'userid')")
        .unwrap();
    assert!(!reaches_tickets(&mut c));

    // A policy: anonymize deletes email_log rows, then falls back to the
    // default for the edge.
    let on_anonymize = |c: &mut postgres::Client| {
        texts(
            c,
            "SELECT on_anonymize FROM forget.graph() WHERE tbl = 'billing.email_log'::regclass",
        )
    };
    assert_eq!(on_anonymize(&mut c), vec!["delete".to_string()]);
    c.batch_execute("SELECT forget.drop_policy('billing.email_log', 'client_id', 'anonymize')")
        .unwrap();
    assert_ne!(on_anonymize(&mut c), vec!["delete".to_string()]);

    // A hook, by name: declared, then gone.
    c.batch_execute(
        "CREATE FUNCTION public.note_it(subject text, key text, context jsonb) RETURNS void
             LANGUAGE sql AS 'SELECT NULL';
         SELECT forget.on('before_delete', 'public.note_it');",
    )
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.hooks WHERE fn = 'public.note_it(text,text,jsonb)'::regprocedure"
        ),
        1
    );
    c.batch_execute("SELECT forget.off('before_delete', 'public.note_it')")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.hooks WHERE fn = 'public.note_it(text,text,jsonb)'::regprocedure"
        ),
        0
    );

    // An activity source: last_activity reads it, then finds nothing.
    c.batch_execute(
        "SELECT forget.add_activity('billing.email_log', 'sent_at', 'client_id');
         INSERT INTO billing.email_log (client_id, subject, sent_at) VALUES (2, 'hello', now());",
    )
    .unwrap();
    let last =
        |c: &mut postgres::Client| count(c, "SELECT 1 WHERE forget.last_activity(2) IS NOT NULL");
    assert_eq!(last(&mut c), 1);
    c.batch_execute("SELECT forget.drop_activity('billing.email_log', 'sent_at')")
        .unwrap();
    assert_eq!(last(&mut c), 0);

    // Unknown objects: 22023, each.
    for sql in [
        "SELECT forget.drop_mask('billing.clients', 'currency_id')",
        "SELECT forget.drop_mask('billing.clients', 'email', 'minimize')",
        "SELECT forget.drop_rule('open_invoices')",
        "SELECT forget.drop_rule('recurring_invoices', 'no_such_subject')",
        "SELECT forget.drop_link('billing.tickets', 'userid')",
        "SELECT forget.drop_policy('billing.email_log', 'client_id', 'anonymize')",
        "SELECT forget.off('before_delete', 'public.note_it')",
        "SELECT forget.off('before_delete', 'public.no_such_function')",
        "SELECT forget.drop_activity('billing.notes', 'body')",
        "SELECT forget.unregister_subject('no_such_subject')",
    ] {
        assert_eq!(state(c.batch_execute(sql)), "22023", "{sql}");
    }
}

#[test]
fn a_subject_is_unregistered_with_what_is_declared_for_it_alone() {
    let db = "e2e_configuration_unregister";
    let mut c = billing_db(db);
    // While a recovery window runs, restore_client needs the subject: 55000.
    c.batch_execute("SELECT * FROM forget.delete_client(2, grace => '30 days')")
        .unwrap();
    assert_eq!(
        state(c.batch_execute("SELECT forget.unregister_subject('client')")),
        "55000"
    );
    c.batch_execute("SELECT * FROM forget.restore_client(2)")
        .unwrap();
    let masks = count(&mut c, "SELECT 1 FROM forget.masks");
    c.batch_execute(
        "SELECT forget.add_rule('client_only', 'SELECT 1 WHERE false', 'never', subject => 'client')",
    )
    .unwrap();
    let shared = count(&mut c, "SELECT 1 FROM forget.rules WHERE subject IS NULL");
    c.batch_execute("SELECT forget.unregister_subject('client')")
        .unwrap();
    assert_eq!(count(&mut c, "SELECT 1 FROM forget.subjects"), 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.rules WHERE name = 'client_only'"
        ),
        0,
        "its own rules go"
    );
    assert_eq!(
        count(&mut c, "SELECT 1 FROM forget.rules WHERE subject IS NULL"),
        shared,
        "rules for every subject stay"
    );
    assert_eq!(
        count(&mut c, "SELECT 1 FROM forget.masks"),
        masks,
        "masks belong to tables and stay"
    );
    assert_eq!(
        state(c.batch_execute("SELECT * FROM forget.delete_client(3)")),
        "22023",
        "no subject is registered"
    );
    // Registered again, it works as before.
    psql_file(db, "examples/billing/config.sql", &[]);
    c.batch_execute("SELECT * FROM forget.delete_client(3)")
        .unwrap();
}

/// Configuration belongs to the extension's owner: a role without
/// privileges on it cannot remove any of it (42501).
#[test]
fn removing_configuration_needs_the_privileges_declaring_does() {
    let db = "e2e_configuration_privileges";
    let mut c = billing_db(db);
    c.batch_execute(
        "DROP ROLE IF EXISTS cfg_intruder; CREATE ROLE cfg_intruder LOGIN;
         GRANT USAGE ON SCHEMA billing TO cfg_intruder;",
    )
    .unwrap();
    let mut intruder = connect_as(db, "cfg_intruder");
    for sql in [
        "SELECT forget.drop_rule('open_invoices')",
        "SELECT forget.drop_mask('billing.clients', 'email')",
        "SELECT forget.unregister_subject('client')",
    ] {
        assert_eq!(state(intruder.batch_execute(sql)), "42501", "{sql}");
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.rules WHERE name = 'open_invoices'"
        ),
        1
    );
}

/// Issue 20, input 3: a mask for export decides what export_client shows
/// for a column (the password hash: null); the other actions ignore it.
#[test]
fn export_masks_hide_secrets_from_the_export() {
    let db = "e2e_configuration_export_mask";
    let mut c = billing_db(db);
    let hash_in_export = |c: &mut postgres::Client| -> Option<String> {
        c.query_one(
            "SELECT forget.export_client(2)->'data'->'billing.users'->0->>'password_hash'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    c.batch_execute(
        "UPDATE billing.users SET password_hash = 'secret-hash' WHERE id = (SELECT user_id FROM billing.clients WHERE id = 2)",
    )
    .unwrap();
    // The billing example declares the mask: without it the export shows
    // the stored hash, with it null.
    assert_eq!(hash_in_export(&mut c), None, "the example's export mask");
    c.batch_execute("SELECT forget.drop_mask('billing.users', 'password_hash', 'export')")
        .unwrap();
    assert_eq!(hash_in_export(&mut c).as_deref(), Some("secret-hash"));
    c.batch_execute("SELECT forget.mask('billing.users', 'password_hash', 'NULL', 'export')")
        .unwrap();
    assert_eq!(hash_in_export(&mut c), None, "the export shows null");
    let email: Option<String> = c
        .query_one(
            "SELECT forget.export_client(2)->'data'->'billing.users'->0->>'email'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(email.is_some(), "the other columns stay");
    // An expression over the row's own columns.
    c.batch_execute(
        "SELECT forget.mask('billing.clients', 'email', $$forget.keep_suffix(email, 12)$$, 'export')",
    )
    .unwrap();
    let shown: String = c
        .query_one(
            "SELECT forget.export_client(2)->'data'->'billing.clients'->0->>'email'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(shown.starts_with('*'), "{shown}");
    // The data itself is untouched, and dropping the mask shows it again.
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM billing.users WHERE password_hash = 'secret-hash'"
        ),
        1
    );
    c.batch_execute("SELECT forget.drop_mask('billing.users', 'password_hash', 'export')")
        .unwrap();
    assert_eq!(hash_in_export(&mut c).as_deref(), Some("secret-hash"));
    assert_eq!(
        sqlstate(
            c.batch_execute("SELECT forget.mask('billing.users', 'password_hash', 'NULL', 'show')")
        ),
        "22023"
    );
}

/// Issue 20, input 10: declarations that could never apply are refused
/// (22023): a mask on a table outside every subject's graph, a policy on a
/// column that is no edge.
#[test]
fn declarations_that_would_never_apply_are_refused() {
    let db = "e2e_configuration_no_ops";
    let mut c = billing_db(db);
    for sql in [
        // currencies is referenced by clients, but no subject reaches it.
        "SELECT forget.mask('billing.currencies', 'code', 'NULL')",
        "SELECT forget.mask('billing.custom_fields', 'name', $$'x'$$)",
        // a plain column of a graph table
        "SELECT forget.set_policy('billing.notes', 'body', 'delete', 'nullify')",
        "SELECT forget.set_policy('billing.currencies', NULL, 'delete', 'keep')",
    ] {
        assert_eq!(sqlstate(c.batch_execute(sql)), "22023", "{sql}");
    }
    // What does apply is still accepted.
    c.batch_execute(
        "SELECT forget.mask('billing.notes', 'body', 'NULL');
         SELECT forget.set_policy('billing.notes', 'client_id', 'anonymize', 'delete');",
    )
    .unwrap();
}

/// Issue 20, beyond peers: locate finds where a value still appears (text
/// case-insensitively, inside jsonb and arrays). After a delete, only what
/// the configuration deliberately keeps is found; a copy planted in an
/// unlinked jsonb column is found.
#[test]
fn locate_finds_every_copy_of_a_value_and_proves_an_erasure() {
    let db = "e2e_configuration_locate";
    let mut c = billing_db(db);
    let email: String = c
        .query_one("SELECT email FROM billing.clients WHERE id = 2", &[])
        .unwrap()
        .get(0);
    c.execute(
        "CREATE TABLE public.event_payloads (id serial PRIMARY KEY, payload jsonb, tags text[]);
         ",
        &[],
    )
    .unwrap();
    c.execute(
        "INSERT INTO public.event_payloads (payload, tags) VALUES
             (jsonb_build_object('user', jsonb_build_object('mail', upper($1::text))), NULL),
             ('{}', ARRAY['x', $1::text])",
        &[&email],
    )
    .unwrap();
    let found = |c: &mut postgres::Client| -> Vec<String> {
        c.query(
            "SELECT tbl::text || '.' || col || '=' || matches FROM forget.locate(ARRAY[$1::text]) ORDER BY 1",
            &[&email],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let before = found(&mut c);
    assert!(
        before.contains(&"billing.clients.email=1".to_string()),
        "{before:?}"
    );
    assert!(
        before.contains(&"event_payloads.payload=1".to_string()),
        "upper case, inside jsonb: {before:?}"
    );
    assert!(
        before.contains(&"event_payloads.tags=1".to_string()),
        "inside an array: {before:?}"
    );
    c.batch_execute("SELECT * FROM forget.delete_client(2)")
        .unwrap();
    let after = found(&mut c);
    assert_eq!(
        after,
        vec![
            "event_payloads.payload=1".to_string(),
            "event_payloads.tags=1".to_string()
        ],
        "only the planted, unlinked copies remain"
    );
    // With a subject: only its graph is searched.
    let in_graph = count(
        &mut c,
        &format!("SELECT 1 FROM forget.locate(ARRAY['{email}'], 'client')"),
    );
    assert_eq!(in_graph, 0);
    // Wildcards in a needle are literal.
    c.batch_execute("INSERT INTO public.event_payloads (payload) VALUES ('{\"code\": \"qqXzz\"}')")
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT 1 FROM forget.locate(ARRAY['qq_zz'])"),
        0
    );
    assert_eq!(
        count(&mut c, "SELECT 1 FROM forget.locate(ARRAY['QQxZZ'])"),
        1
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.locate(ARRAY[]::text[])", &[])),
        "22023"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.locate(ARRAY[''])", &[])),
        "22023"
    );
}

/// The doctor's findings as (object, problem, hint).
fn findings(c: &mut postgres::Client, about: &str) -> Vec<(String, String, String)> {
    c.query("SELECT object, problem, hint FROM forget.check()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .filter(|f: &(String, String, String)| f.1.contains(about))
        .collect()
}

/// Issue 20, input 7: check() names columns that look like references to
/// the subject but have no foreign key or link, and its hint declares the
/// link: run, the rows are reached and the finding is gone.
#[test]
fn check_names_loose_references_and_its_hint_links_them() {
    let db = "e2e_configuration_loose";
    let mut c = billing_db(db);
    c.batch_execute(
        "CREATE TABLE public.comments (id serial PRIMARY KEY, author_id bigint, body text);
         CREATE TABLE public.audit_trail (id serial PRIMARY KEY, created_by text, what text);
         CREATE TABLE public.shipments (id serial PRIMARY KEY, weight_id bigint);
         INSERT INTO public.comments (author_id, body) VALUES (2, 'hello');",
    )
    .unwrap();
    let loose = findings(&mut c, "looks like a reference to subject");
    let objects: Vec<&str> = loose.iter().map(|f| f.0.as_str()).collect();
    assert!(
        objects.contains(&"public.comments(author_id)"),
        "{objects:?}"
    );
    assert!(
        objects.contains(&"public.audit_trail(created_by)"),
        "{objects:?}"
    );
    assert!(
        !objects.iter().any(|o| o.contains("weight_id")),
        "{objects:?}"
    );
    assert!(
        !objects
            .iter()
            .any(|o| o.contains("billing.tickets") || o.contains("billing.orders")),
        "columns with a link are not named: {objects:?}"
    );
    let hint = &loose
        .iter()
        .find(|f| f.0 == "public.comments(author_id)")
        .unwrap()
        .2;
    c.batch_execute(hint).unwrap();
    assert!(!findings(&mut c, "looks like a reference to subject")
        .iter()
        .any(|f| f.0 == "public.comments(author_id)"));
    let rows = c
        .query_one(
            "SELECT (forget.export_client(2)->'data'->'public.comments')::text",
            &[],
        )
        .unwrap()
        .get::<_, Option<String>>(0);
    assert!(
        rows.is_some_and(|r| r.contains("hello")),
        "the linked rows are reached now"
    );
}

/// A table reached through two paths is named only where an action takes
/// the other path's rows along. In the marketplace, payments and disputes
/// reference the user directly and through projects; a delete sets the
/// project's reference to NULL (ON DELETE SET NULL) and keeps the project,
/// so nothing reaches them through it: no finding, and so no hint whose
/// `keep` would make every delete fail (as the doctor once said).
#[test]
fn two_paths_are_named_only_where_an_action_takes_rows_along() {
    let db = "e2e_configuration_two_paths_kept";
    let mut c = fresh_db(db);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(db, &format!("examples/marketplace/{f}"), &[]);
    }
    assert_eq!(
        findings(&mut c, "reached through two paths"),
        Vec::<(String, String, String)>::new()
    );
    // With projects deleted along with their seller, payments are taken
    // along through them: named, for the delete only.
    c.batch_execute("SELECT forget.set_policy('market.projects', 'seller_id', 'delete', 'delete')")
        .unwrap();
    let two = findings(&mut c, "reached through two paths");
    assert!(!two.is_empty());
    for (object, _, hint) in &two {
        assert!(object.contains("project_id"), "{object}");
        assert!(
            hint.contains("'delete'") && !hint.contains("'anonymize'"),
            "{hint}"
        );
    }
}

/// Issue 20, input 8: a table the subject references directly that is also
/// reached through another table is named, with the policy that keeps other
/// subjects' rows; with it set, anonymizing one user leaves another user's
/// workspace alone.
#[test]
fn check_names_tables_reached_through_two_paths_and_its_hint_protects_them() {
    let db = "e2e_configuration_two_paths";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, active boolean NOT NULL DEFAULT true);
         CREATE TABLE tokens (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users);
         CREATE TABLE workspaces (id bigint PRIMARY KEY, owner_id bigint NOT NULL REFERENCES users,
                                  token_id bigint REFERENCES tokens ON DELETE RESTRICT);
         INSERT INTO users VALUES (2, 'two@example.com'), (4, 'four@example.com');
         INSERT INTO tokens VALUES (20, 2);
         -- user 4's workspace uses user 2's token
         INSERT INTO workspaces VALUES (40, 4, 20);
         SELECT forget.register_subject('user', 'users', active_column => 'active');
         SELECT forget.mask('users', 'email', 'forget.random_email()');
         SELECT forget.set_policy('tokens', 'user_id', 'anonymize', 'delete');",
    )
    .unwrap();
    let two = findings(&mut c, "reached through two paths");
    assert_eq!(two.len(), 1, "{two:?}");
    assert_eq!(two[0].0, "public.workspaces(token_id)");
    c.batch_execute(&two[0].2).unwrap();
    c.batch_execute("SELECT * FROM forget.anonymize_client(2)")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM workspaces WHERE id = 40 AND owner_id = 4"
        ),
        1,
        "user 4's workspace stays"
    );
    assert_eq!(count(&mut c, "SELECT 1 FROM tokens"), 0);
}

/// Issue 20, input 2 (the doctor's part): a delete that only unlinks rows
/// keeping personal columns is named, with the policy that deletes them.
#[test]
fn check_names_unlinked_rows_that_keep_personal_columns() {
    let db = "e2e_configuration_unlinked";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);
         CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users ON DELETE SET NULL,
                              billing_name text, email text, amount numeric);
         CREATE INDEX ON orders (user_id);
         INSERT INTO users VALUES (2, 'two@example.com');
         INSERT INTO orders VALUES (1, 2, 'Two Person', 'two@example.com', 10);
         SELECT forget.register_subject('user', 'users');",
    )
    .unwrap();
    let found = findings(&mut c, "keeps the rows, with their personal columns");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "public.orders(user_id)");
    assert!(found[0].1.contains("email"), "{found:?}");
    c.batch_execute(&found[0].2).unwrap();
    assert!(findings(&mut c, "keeps the rows, with their personal columns").is_empty());
    c.batch_execute("SELECT * FROM forget.delete_client(2)")
        .unwrap();
    assert_eq!(count(&mut c, "SELECT 1 FROM orders"), 0);
}

/// Issue 20, input 2: orders a business must keep after a delete. Policy
/// `anonymize` under `delete` keeps the rows, applies their anonymize masks
/// and sets the reference to NULL; on a NOT NULL reference it is refused.
/// With a grace period, restore puts name, email and reference back.
#[test]
fn anonymize_under_delete_keeps_the_rows_masked_and_unlinked() {
    let db = "e2e_configuration_keep_orders";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);
         CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users,
                              billing_name text, email text, address text, amount numeric NOT NULL);
         CREATE TABLE order_lines (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders, sku text);
         CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users);
         CREATE INDEX ON orders (user_id); CREATE INDEX ON order_lines (order_id); CREATE INDEX ON sessions (user_id);
         INSERT INTO users VALUES (2, 'two@example.com'), (3, 'three@example.com');
         INSERT INTO orders VALUES (1, 2, 'Two Person', 'two@example.com', '2 Road', 10),
                                   (2, 3, 'Three Person', 'three@example.com', '3 Road', 20);
         INSERT INTO order_lines VALUES (1, 1, 'A'), (2, 2, 'B');
         INSERT INTO sessions VALUES (1, 2);
         SELECT forget.register_subject('user', 'users');
         SELECT forget.mask('orders', 'billing_name', $$'Deleted customer'$$);
         SELECT forget.mask('orders', 'email', 'NULL');
         SELECT forget.mask('orders', 'address', 'NULL');",
    )
    .unwrap();
    assert_eq!(
        sqlstate(c.batch_execute(
            "SELECT forget.set_policy('sessions', 'user_id', 'delete', 'anonymize')"
        )),
        "22023",
        "a NOT NULL reference cannot be set to NULL"
    );
    c.batch_execute("SELECT forget.set_policy('orders', 'user_id', 'delete', 'anonymize')")
        .unwrap();
    let report: Vec<String> = c
        .query(
            "SELECT tbl::text || ' ' || operation || ' ' || rows FROM forget.delete_client(2, dry_run => true) ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        report.contains(&"orders anonymize 1".to_string()),
        "{report:?}"
    );
    assert!(
        !report.iter().any(|r| r.starts_with("order_lines")),
        "{report:?}"
    );
    let before = snapshot(&mut c, "public");
    c.batch_execute("SELECT * FROM forget.delete_client(2, grace => '30 days')")
        .unwrap();
    let kept = c
        .query_one(
            "SELECT user_id, billing_name, email, address, amount::text FROM orders WHERE id = 1",
            &[],
        )
        .unwrap();
    assert_eq!(kept.get::<_, Option<i64>>(0), None, "unlinked");
    assert_eq!(
        kept.get::<_, Option<String>>(1).as_deref(),
        Some("Deleted customer")
    );
    assert_eq!(kept.get::<_, Option<String>>(2), None);
    assert_eq!(kept.get::<_, Option<String>>(3), None);
    assert_eq!(kept.get::<_, String>(4), "10", "the financial record stays");
    assert_eq!(
        count(&mut c, "SELECT 1 FROM order_lines WHERE order_id = 1"),
        1
    );
    assert_eq!(count(&mut c, "SELECT 1 FROM users WHERE id = 2"), 0);
    assert_eq!(count(&mut c, "SELECT 1 FROM sessions"), 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM orders WHERE id = 2 AND user_id = 3 AND email = 'three@example.com'"
        ),
        1,
        "another user's order is untouched"
    );
    // What the locate of the deleted email finds: only the recovery data.
    let found = texts(
        &mut c,
        "SELECT tbl::text FROM forget.locate(ARRAY['two@example.com']) ORDER BY 1",
    );
    assert!(found.iter().all(|t| t.starts_with("forget.")), "{found:?}");
    c.batch_execute("SELECT * FROM forget.restore_client(2)")
        .unwrap();
    assert_eq!(
        snapshot(&mut c, "public"),
        before,
        "restore puts everything back"
    );
    assert!(audit_is_intact(&mut c));
}

/// locate reads every table the caller may read, often as a superuser: a
/// role's own type with its own cast to text must not get its function run
/// by the caller (values are printed by their type's output function).
#[test]
fn locate_runs_no_code_of_the_roles_that_own_the_tables() {
    let db = "e2e_configuration_locate_attack";
    let mut c = billing_db(db);
    c.batch_execute(
        "DROP ROLE IF EXISTS locate_mallory; CREATE ROLE locate_mallory LOGIN;
         GRANT CREATE ON SCHEMA public TO locate_mallory;
         GRANT CREATE ON DATABASE e2e_configuration_locate_attack TO locate_mallory;",
    )
    .unwrap();
    let mut mallory = connect_as(db, "locate_mallory");
    mallory
        .batch_execute(
            "CREATE TYPE public.sneaky AS (a text);
             CREATE FUNCTION public.sneaky_text(public.sneaky[]) RETURNS text LANGUAGE sql
                 AS $$ SELECT pg_catalog.set_config('mallory.ran_as', current_user, false) $$;
             CREATE CAST (public.sneaky[] AS text) WITH FUNCTION public.sneaky_text(public.sneaky[]);
             CREATE TABLE public.sneaky_rows (v public.sneaky[]);
             INSERT INTO public.sneaky_rows VALUES (ARRAY[ROW('needle')::public.sneaky]);
             GRANT SELECT ON public.sneaky_rows TO PUBLIC;",
        )
        .unwrap();
    let found = texts(
        &mut c,
        "SELECT tbl::text || '.' || col FROM forget.locate(ARRAY['needle'])",
    );
    assert_eq!(
        found,
        vec!["sneaky_rows.v".to_string()],
        "found by its printed value"
    );
    let ran: Option<String> = c
        .query_one("SELECT current_setting('mallory.ran_as', true)", &[])
        .unwrap()
        .get(0);
    assert!(
        ran.as_deref().unwrap_or("").is_empty(),
        "the role's cast ran as {ran:?}"
    );
    // Row level security policies are the owner's code too: a caller they
    // apply to does not search such a table (superusers skip policies).
    // Tables that cannot be searched (a nondeterministic collation, an
    // unpopulated materialized view, a schema without USAGE) break nothing.
    c.batch_execute(
        "DROP ROLE IF EXISTS locate_dba; CREATE ROLE locate_dba LOGIN;
         GRANT EXECUTE ON FUNCTION forget.locate(text[], text) TO locate_dba;
         GRANT USAGE ON SCHEMA forget TO locate_dba;",
    )
    .unwrap();
    mallory
        .batch_execute(
            "CREATE FUNCTION public.spy() RETURNS boolean LANGUAGE sql
                 AS $$ SELECT pg_catalog.set_config('mallory.policy_ran', current_user, false) IS NOT NULL $$;
             CREATE TABLE public.bait (t text); INSERT INTO public.bait VALUES ('needle');
             ALTER TABLE public.bait ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON public.bait USING (public.spy());
             GRANT SELECT ON public.bait TO PUBLIC;
             CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
             CREATE TABLE public.folded (t text COLLATE public.ci); INSERT INTO public.folded VALUES ('NEEDLE');
             GRANT SELECT ON public.folded TO PUBLIC;
             CREATE MATERIALIZED VIEW public.later AS SELECT 'needle'::text AS t WITH NO DATA;
             CREATE SCHEMA hidden; CREATE TABLE hidden.rows (t text); GRANT SELECT ON hidden.rows TO PUBLIC;",
        )
        .unwrap();
    let mut dba = connect_as(db, "locate_dba");
    let seen = texts(
        &mut dba,
        "SELECT tbl::text || '.' || col FROM forget.locate(ARRAY['needle']) ORDER BY 1",
    );
    let ran: Option<String> = dba
        .query_one("SELECT current_setting('mallory.policy_ran', true)", &[])
        .unwrap()
        .get(0);
    assert!(
        ran.as_deref().unwrap_or("").is_empty(),
        "the policy ran as {ran:?}"
    );
    assert!(!seen.contains(&"bait.t".to_string()), "{seen:?}");
    assert!(seen.contains(&"folded.t".to_string()), "{seen:?}");
    let as_superuser = texts(
        &mut c,
        "SELECT tbl::text || '.' || col FROM forget.locate(ARRAY['needle']) ORDER BY 1",
    );
    assert!(
        as_superuser.contains(&"bait.t".to_string()),
        "{as_superuser:?}"
    );
    let ran: Option<String> = c
        .query_one("SELECT current_setting('mallory.policy_ran', true)", &[])
        .unwrap()
        .get(0);
    assert!(
        ran.as_deref().unwrap_or("").is_empty(),
        "the policy ran as {ran:?}"
    );
}

/// Issue 20, input 1: an id inside an array. The link is accepted, export
/// includes the rows, a delete removes that element and keeps the row (the
/// other ids stay, in their order), and a restore puts it back.
#[test]
fn an_array_link_reaches_rows_that_list_the_subject() {
    let db = "e2e_configuration_array_link";
    let mut c = fresh_db(db);
    c.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);
         CREATE TABLE invitations (id bigint PRIMARY KEY, title text, invitee_ids bigint[] NOT NULL);
         INSERT INTO users VALUES (2, 'two@example.com'), (3, 'three@example.com'), (4, 'four@example.com');
         INSERT INTO invitations VALUES (1, 'party', '{3,2,4}'), (2, 'lunch', '{3}'), (3, 'solo', '{2}');
         SELECT forget.register_subject('user', 'users');
         SELECT forget.add_link('invitations', 'invitee_ids', 'users');",
    )
    .unwrap();
    let exported: String = c
        .query_one(
            "SELECT (forget.export_client(2)->'data'->'public.invitations')::text",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        exported.contains("party") && exported.contains("solo") && !exported.contains("lunch"),
        "{exported}"
    );
    let before = snapshot(&mut c, "public");
    let report = texts(
        &mut c,
        "SELECT tbl::text || ' ' || operation || ' ' || rows FROM forget.delete_client(2, grace => '30 days') ORDER BY 1",
    );
    assert!(
        report.contains(&"invitations nullify 2".to_string()),
        "{report:?}"
    );
    let lists = texts(
        &mut c,
        "SELECT id || '=' || invitee_ids::text FROM invitations ORDER BY id",
    );
    assert_eq!(
        lists,
        vec!["1={3,4}", "2={3}", "3={}"],
        "the element goes, the rows and the other ids stay"
    );
    assert_eq!(count(&mut c, "SELECT 1 FROM users WHERE id = 2"), 0);
    c.batch_execute("SELECT * FROM forget.restore_client(2)")
        .unwrap();
    assert_eq!(
        snapshot(&mut c, "public"),
        before,
        "restore puts the elements back"
    );
    // A column of another type is still refused.
    assert_eq!(
        sqlstate(c.batch_execute(
            "CREATE TABLE notes (id int PRIMARY KEY, tags text[]);
             SELECT forget.add_link('notes', 'tags', 'users');"
        )),
        "42846"
    );
    assert!(audit_is_intact(&mut c));
}

/// A connection keeps the graphs and plans it built: a configuration change
/// made in a transaction or savepoint that rolls back must not stay in them
/// (a link rolled back must not delete anything afterwards).
#[test]
fn a_configuration_change_rolled_back_leaves_nothing_in_the_connections_cache() {
    let mut c = fresh_db("e2e_config_rolled_back");
    c.batch_execute(
        "CREATE TABLE clients (id int PRIMARY KEY, name text);
         CREATE TABLE notes (id int PRIMARY KEY, client_ref int, body text);
         INSERT INTO clients SELECT g, 'c' || g FROM generate_series(1, 4) g;
         INSERT INTO notes SELECT g, g, 'note' FROM generate_series(1, 4) g;
         SELECT forget.register_subject('client', 'clients');",
    )
    .unwrap();
    let tables = |c: &mut postgres::Client, key: i32| -> Vec<String> {
        c.query(
            "SELECT tbl::text FROM forget.delete_client($1::int, dry_run => true) ORDER BY 1",
            &[&key],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert_eq!(tables(&mut c, 1), ["clients"]);
    // In a transaction that rolls back.
    c.batch_execute("BEGIN; SELECT forget.add_link('notes', 'client_ref', 'clients', 'id')")
        .unwrap();
    assert_eq!(tables(&mut c, 1), ["clients", "notes"], "seen inside");
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(tables(&mut c, 1), ["clients"], "gone after ROLLBACK");
    // In a savepoint rolled back, the transaction going on.
    c.batch_execute(
        "BEGIN; SAVEPOINT s; SELECT forget.add_link('notes', 'client_ref', 'clients', 'id')",
    )
    .unwrap();
    assert_eq!(tables(&mut c, 2), ["clients", "notes"]);
    c.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(tables(&mut c, 2), ["clients"], "gone after ROLLBACK TO");
    c.batch_execute("COMMIT").unwrap();
    // The same with a table's DDL: a foreign key added and rolled back.
    c.batch_execute(
        "BEGIN; ALTER TABLE notes ADD FOREIGN KEY (client_ref) REFERENCES clients ON DELETE CASCADE",
    )
    .unwrap();
    assert_eq!(tables(&mut c, 3), ["clients", "notes"]);
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(tables(&mut c, 3), ["clients"]);
    // A REPEATABLE READ transaction reads the catalog in its snapshot: what
    // it cached from it does not outlive it.
    let mut other = connect("e2e_config_rolled_back");
    assert_eq!(tables(&mut other, 3), ["clients"]);
    other
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM clients")
        .unwrap();
    c.batch_execute("SELECT forget.add_link('notes', 'client_ref', 'clients', 'id')")
        .unwrap();
    other.batch_execute("SELECT count(*) FROM notes").unwrap();
    assert_eq!(tables(&mut other, 3), ["clients"], "its snapshot");
    other.batch_execute("COMMIT").unwrap();
    assert_eq!(tables(&mut other, 3), ["clients", "notes"], "after it");
    c.batch_execute("SELECT forget.drop_link('notes', 'client_ref')")
        .unwrap();
    // And the delete itself takes nothing the rolled-back link reached.
    c.query("SELECT * FROM forget.delete_client(1)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM notes WHERE client_ref = 1"), 1);
    assert_eq!(count(&mut c, "SELECT * FROM clients WHERE id = 1"), 0);
}
