//! delete_client end to end on the billing example (SPEC.md problem 1).

mod common;
use common::*;
use std::collections::BTreeMap;

/// The rows of client `id` in each billing table, found by hand-written
/// joins (independent of pg_forget's graph).
fn rows_of_client(c: &mut postgres::Client, id: i64) -> BTreeMap<String, Vec<String>> {
    let queries = [
        ("billing.clients", "SELECT t::text FROM billing.clients t WHERE id = $1"),
        ("billing.users", "SELECT t::text FROM billing.users t WHERE id = (SELECT user_id FROM billing.clients WHERE id = $1)"),
        ("billing.auth_log", "SELECT t::text FROM billing.auth_log t WHERE user_id = (SELECT user_id FROM billing.clients WHERE id = $1)"),
        ("billing.contacts", "SELECT t::text FROM billing.contacts t WHERE client_id = $1"),
        ("billing.invoices", "SELECT t::text FROM billing.invoices t WHERE client_id = $1"),
        ("billing.invoice_items", "SELECT t::text FROM billing.invoice_items t JOIN billing.invoices i ON i.id = t.invoice_id WHERE i.client_id = $1"),
        ("billing.recurring_invoices", "SELECT t::text FROM billing.recurring_invoices t WHERE client_id = $1"),
        ("billing.services", "SELECT t::text FROM billing.services t WHERE client_id = $1"),
        ("billing.service_fields", "SELECT t::text FROM billing.service_fields t JOIN billing.services s ON s.id = t.service_id WHERE s.client_id = $1"),
        ("billing.transactions", "SELECT t::text FROM billing.transactions t WHERE client_id = $1 OR invoice_id IN (SELECT id FROM billing.invoices WHERE client_id = $1)"),
        ("billing.payment_accounts", "SELECT t::text FROM billing.payment_accounts t WHERE client_id = $1"),
        ("billing.email_log", "SELECT t::text FROM billing.email_log t WHERE client_id = $1"),
        ("billing.contact_changes", "SELECT t::text FROM billing.contact_changes t WHERE client_id = $1"),
        ("billing.client_settings", "SELECT t::text FROM billing.client_settings t WHERE client_id = $1"),
        ("billing.custom_field_values", "SELECT t::text FROM billing.custom_field_values t WHERE client_id = $1"),
        ("billing.notes", "SELECT t::text FROM billing.notes t WHERE client_id = $1"),
        ("billing.restricted_packages", "SELECT t::text FROM billing.restricted_packages t WHERE client_id = $1"),
        ("billing.tickets", "SELECT t::text FROM billing.tickets t WHERE userid = $1"),
        ("billing.ticket_replies", "SELECT t::text FROM billing.ticket_replies t JOIN billing.tickets k ON k.id = t.tid WHERE k.userid = $1"),
        ("billing.orders", "SELECT t::text FROM billing.orders t WHERE userid = $1::bigint::text"),
    ];
    queries
        .iter()
        .map(|(t, q)| {
            (
                t.to_string(),
                c.query(*q, &[&id])
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn delete_removes_every_item_of_the_list_and_touches_nothing_else() {
    let mut c = billing_db("e2e_delete_all");
    let before = snapshot(&mut c, "billing");
    let theirs = rows_of_client(&mut c, 2);
    for (t, rows) in &theirs {
        assert!(!rows.is_empty(), "the example gives client 2 rows in {t}");
    }
    let done = c.query("SELECT tbl::text, operation, rows FROM forget.delete_client(2, reason => 'GDPR', actor => 'alice')", &[]).unwrap();
    for r in &done {
        let t: String = r.get(0);
        let n: i64 = r.get(2);
        assert_eq!(r.get::<_, String>(1), "delete");
        assert_eq!(n as usize, theirs[&t].len(), "rows reported for {t}");
    }
    assert_eq!(done.len(), theirs.len(), "one step per table of the list");
    let after = snapshot(&mut c, "billing");
    for (table, rows) in &before {
        let gone: Vec<&String> = rows.iter().filter(|r| !after[table].contains(r)).collect();
        let expected: Vec<&String> = theirs
            .get(table)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let mut gone_sorted = gone.clone();
        gone_sorted.sort();
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        assert_eq!(
            gone_sorted, expected_sorted,
            "exactly client 2's rows left {table}"
        );
        assert!(
            after[table].iter().all(|r| rows.contains(r)),
            "no row of {table} was changed or added"
        );
    }
    // "There should be no record of the client": the audit holds counts only.
    let audit = c
        .query_one(
            "SELECT action, subject_key, actor, reason, rows::text FROM forget.audit",
            &[],
        )
        .unwrap();
    assert_eq!(audit.get::<_, String>(0), "delete");
    assert_eq!(audit.get::<_, String>(1), "2");
    assert_eq!(audit.get::<_, String>(2), "alice");
    let rows: String = audit.get(4);
    assert!(
        !rows.contains("client2@") && rows.contains("\"billing.invoice_items\": 6"),
        "{rows}"
    );
    assert!(audit_is_intact(&mut c));
}

#[test]
fn a_dry_run_returns_the_plan_with_counts_and_changes_nothing() {
    let mut c = billing_db("e2e_delete_dry");
    let before = snapshot(&mut c, "billing");
    let plan = c
        .query(
            "SELECT tbl::text, operation, rows FROM forget.delete_client(3, dry_run => true)",
            &[],
        )
        .unwrap();
    let real_counts: i64 = plan.iter().map(|r| r.get::<_, i64>(2)).sum();
    assert!(real_counts > 20);
    assert_eq!(snapshot(&mut c, "billing"), before);
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), 0);
    let done = c
        .query(
            "SELECT tbl::text, operation, rows FROM forget.delete_client(3)",
            &[],
        )
        .unwrap();
    let plan_rows: Vec<(String, String, i64)> = plan
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let done_rows: Vec<(String, String, i64)> = done
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(plan_rows, done_rows, "the dry run predicted the delete");
}

#[test]
fn rules_report_every_blocker_and_block_the_delete() {
    let mut c = billing_db("e2e_delete_rules");
    let report = c
        .query(
            "SELECT rule, ok, blocking, message FROM forget.eligibility(1) ORDER BY rule",
            &[],
        )
        .unwrap();
    assert_eq!(report.len(), 3);
    assert!(report
        .iter()
        .all(|r| !r.get::<_, bool>(1) && r.get::<_, i64>(2) == 1));
    let ok = c
        .query("SELECT bool_and(ok) FROM forget.eligibility(2)", &[])
        .unwrap();
    assert!(ok[0].get::<_, bool>(0));
    let before = snapshot(&mut c, "billing");
    let err = c.query("SELECT * FROM forget.delete_client(1)", &[]);
    let msg = message(c.query("SELECT * FROM forget.delete_client(1)", &[]));
    assert_eq!(sqlstate(err), "55000");
    assert!(msg.starts_with("cannot delete client 1:"), "{msg}");
    for m in [
        "client has open invoices",
        "client has recurring invoices",
        "client has active services",
    ] {
        assert!(msg.contains(m), "{msg} names {m}");
    }
    // Fields an application maps without parsing the message: CONSTRAINT
    // is the first failing rule, DETAIL one failing rule per line, HINT
    // the eligibility call, which lists the same rules as blocking.
    let e = common::db_error(c.query("SELECT * FROM forget.delete_client(1)", &[]));
    assert_eq!(e.constraint(), Some("active_services"));
    assert_eq!(
        e.detail(),
        Some(
            "active_services: client has active services\n\
             open_invoices: client has open invoices\n\
             recurring_invoices: client has recurring invoices"
        )
    );
    let hint = e.hint().expect("a hint").to_string();
    assert_eq!(
        hint,
        "SELECT * FROM forget.eligibility(1, 'delete', 'client');"
    );
    let blocking: Vec<String> = c
        .query(hint.trim_end_matches(';'), &[])
        .unwrap()
        .iter()
        .filter(|r| !r.get::<_, bool>("ok"))
        .map(|r| r.get("rule"))
        .collect();
    assert_eq!(
        blocking,
        ["active_services", "open_invoices", "recurring_invoices"]
    );
    assert_eq!(snapshot(&mut c, "billing"), before);
}

#[test]
fn hooks_run_in_the_same_transaction_and_a_raising_hook_aborts_everything() {
    let mut c = billing_db("e2e_delete_hooks");
    c.batch_execute(
        "CREATE TABLE public.hook_calls (event text, subject text, key text, context jsonb);
         CREATE FUNCTION public.record_before(s text, k text, ctx jsonb) RETURNS void LANGUAGE sql
           AS $$ INSERT INTO public.hook_calls VALUES ('before', s, k, ctx) $$;
         CREATE FUNCTION public.record_after(s text, k text, ctx jsonb) RETURNS void LANGUAGE sql
           AS $$ INSERT INTO public.hook_calls VALUES ('after', s, k, ctx) $$;
         SELECT forget.on('before_delete', 'public.record_before(text,text,jsonb)');
         SELECT forget.on('after_delete', 'public.record_after(text,text,jsonb)');",
    )
    .unwrap();
    c.query(
        "SELECT * FROM forget.delete_client(4, reason => 'closing')",
        &[],
    )
    .unwrap();
    let calls = c
        .query(
            "SELECT event, subject, key, context FROM public.hook_calls ORDER BY event DESC",
            &[],
        )
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].get::<_, String>(0), "before");
    assert_eq!(calls[0].get::<_, String>(2), "4");
    let after: String = c.query_one("SELECT context->'rows'->>'billing.invoices' FROM public.hook_calls WHERE event = 'after'", &[]).unwrap().get(0);
    assert_eq!(after, "3");

    c.batch_execute(
        "CREATE FUNCTION public.refuse(s text, k text, ctx jsonb) RETURNS void LANGUAGE plpgsql
           AS $$ BEGIN RAISE EXCEPTION 'plugin refuses to let % % go', s, k USING ERRCODE = 'P0001'; END $$;
         SELECT forget.on('after_delete', 'public.refuse(text,text,jsonb)');",
    )
    .unwrap();
    let before = snapshot(&mut c, "billing");
    let audit_before = count(&mut c, "SELECT * FROM forget.audit");
    let result = c.query("SELECT * FROM forget.delete_client(5)", &[]);
    assert_eq!(
        message(c.query("SELECT * FROM forget.delete_client(5)", &[])),
        "plugin refuses to let client 5 go"
    );
    assert_eq!(sqlstate(result), "P0001");
    assert_eq!(
        snapshot(&mut c, "billing"),
        before,
        "the delete was rolled back with the hook"
    );
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), audit_before);
}

#[test]
fn every_completed_delete_notifies_at_commit() {
    let mut listener = billing_db("e2e_delete_notify");
    listener.batch_execute("LISTEN forget").unwrap();
    let mut c = connect("e2e_delete_notify");
    c.query("SELECT * FROM forget.delete_client(6)", &[])
        .unwrap();
    listener.batch_execute("SELECT 1").unwrap();
    let mut notes: Vec<postgres::Notification> = Vec::new();
    let mut pending = listener.notifications();
    let mut iter = pending.iter();
    while let Ok(Some(n)) = postgres::fallible_iterator::FallibleIterator::next(&mut iter) {
        notes.push(n);
    }
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].channel(), "forget");
    assert!(
        notes[0].payload().contains("\"action\" : \"delete\"")
            && notes[0].payload().contains("\"key\" : \"6\""),
        "{}",
        notes[0].payload()
    );
}

#[test]
fn audit_tampering_is_detected() {
    let mut c = billing_db("e2e_audit_tamper");
    for k in [2, 3, 4] {
        c.query(
            "SELECT * FROM forget.delete_client($1::bigint)",
            &[&(k as i64)],
        )
        .unwrap();
    }
    assert!(audit_is_intact(&mut c));
    c.batch_execute("BEGIN; UPDATE forget.audit SET actor = 'mallory' WHERE subject_key = '3'")
        .unwrap();
    assert!(!audit_is_intact(&mut c), "changed row");
    c.batch_execute("ROLLBACK; BEGIN; DELETE FROM forget.audit WHERE subject_key = '3'")
        .unwrap();
    assert!(!audit_is_intact(&mut c), "removed middle row");
    c.batch_execute("ROLLBACK; BEGIN; DELETE FROM forget.audit WHERE subject_key = '4'")
        .unwrap();
    assert!(!audit_is_intact(&mut c), "removed newest row");
    c.batch_execute("ROLLBACK").unwrap();
    assert!(audit_is_intact(&mut c));
}

#[test]
fn cycles_self_references_and_composite_keys_terminate_and_delete_correctly() {
    let mut c = fresh_db("e2e_delete_shapes");
    c.batch_execute(
        "CREATE TABLE people (id int PRIMARY KEY, name text);
         CREATE TABLE teams (id int, grp int, owner int NOT NULL REFERENCES people, PRIMARY KEY (id, grp));
         CREATE TABLE memberships (team_id int, team_grp int, note text,
             FOREIGN KEY (team_id, team_grp) REFERENCES teams ON DELETE CASCADE);
         CREATE TABLE posts (id int PRIMARY KEY, author int NOT NULL REFERENCES people);
         CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts, reply_to int REFERENCES comments);
         CREATE TABLE a (id int PRIMARY KEY, person int REFERENCES people, b_id int);
         CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a);
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b ON DELETE SET NULL;
         INSERT INTO people VALUES (1, 'x'), (2, 'y');
         INSERT INTO teams VALUES (1, 1, 1), (2, 1, 2);
         INSERT INTO memberships VALUES (1, 1, 'mine'), (2, 1, 'theirs');
         INSERT INTO posts VALUES (1, 1), (2, 2);
         INSERT INTO comments VALUES (1, 1, NULL), (2, NULL, 1), (3, NULL, 2), (4, 2, NULL), (5, NULL, 4);
         INSERT INTO a VALUES (1, 1, NULL), (2, 2, NULL);
         INSERT INTO b VALUES (1, 1), (2, 2);
         UPDATE a SET b_id = id;
         SELECT forget.register_subject('person', 'people');",
    )
    .unwrap();
    c.query("SELECT * FROM forget.delete_client(1)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM people"), 1);
    assert_eq!(count(&mut c, "SELECT * FROM memberships"), 1);
    let comments: Vec<i32> = c
        .query("SELECT id FROM comments ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        comments,
        vec![4, 5],
        "the whole reply thread under post 1 is gone"
    );
    assert_eq!(count(&mut c, "SELECT * FROM a"), 1);
    assert_eq!(count(&mut c, "SELECT * FROM b"), 1);
}

#[test]
fn cached_plans_follow_schema_and_configuration_changes_in_the_same_session() {
    let mut c = billing_db("e2e_delete_cache");
    c.query("SELECT * FROM forget.delete_client(2)", &[])
        .unwrap();
    // A new table referencing clients: the next delete, same session, reaches it.
    c.batch_execute(
        "CREATE TABLE billing.loyalty (id serial PRIMARY KEY, client_id bigint NOT NULL REFERENCES billing.clients);
         INSERT INTO billing.loyalty (client_id) VALUES (3), (4);",
    )
    .unwrap();
    let done = c
        .query(
            "SELECT rows FROM forget.delete_client(3) WHERE tbl = 'billing.loyalty'::regclass",
            &[],
        )
        .unwrap();
    assert_eq!(done.len(), 1, "the new table is in the plan");
    assert_eq!(count(&mut c, "SELECT * FROM billing.loyalty"), 1);
    // A new rule takes effect at once.
    c.batch_execute("SELECT forget.add_rule('loyal', 'SELECT 1 FROM billing.loyalty WHERE client_id = $1', 'client is loyal')").unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(4)", &[])),
        "55000"
    );
    // A new policy too: keep the loyalty rows' link by nullifying it.
    c.batch_execute(
        "ALTER TABLE billing.loyalty ALTER COLUMN client_id DROP NOT NULL;
         SELECT forget.set_policy('billing.loyalty', 'client_id', 'delete', 'nullify');
         DELETE FROM forget.rules WHERE name = 'loyal';",
    )
    .unwrap();
    c.query("SELECT * FROM forget.delete_client(4)", &[])
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM billing.loyalty WHERE client_id IS NULL"
        ),
        1
    );
}
