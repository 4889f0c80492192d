//! anonymize_client, masks, export_client and check() (SPEC.md problems 2, 3).

mod common;
use common::*;

#[test]
fn anonymize_keeps_financial_records_and_removes_identity() {
    let mut c = billing_db("e2e_anon_billing");
    let before = snapshot(&mut c, "billing");
    let done = c.query("SELECT tbl::text, operation, rows FROM forget.anonymize_client(4, reason => 'closed', actor => 'bob')", &[]).unwrap();
    let ops: Vec<(String, String, i64)> = done
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for expected in [
        ("billing.clients", "anonymize", 1),
        ("billing.contacts", "anonymize", 2),
        ("billing.users", "anonymize", 1),
        ("billing.payment_accounts", "delete", 1),
        ("billing.email_log", "delete", 2),
        ("billing.contact_changes", "delete", 1),
        ("billing.auth_log", "delete", 2),
    ] {
        assert!(
            ops.contains(&(expected.0.into(), expected.1.into(), expected.2)),
            "{expected:?} in {ops:?}"
        );
    }
    let row = c.query_one("SELECT firstname, lastname, email, phonenumber, status, address1 FROM billing.clients WHERE id = 4", &[]).unwrap();
    assert_eq!(row.get::<_, String>(0), "Anonymous");
    assert_eq!(
        row.get::<_, String>(1),
        "Client_4",
        "format('Client_%s', id) masks see the row"
    );
    assert!(row.get::<_, String>(2).ends_with("@anonymized.invalid"));
    assert_eq!(row.get::<_, Option<String>>(3), None);
    assert_eq!(
        row.get::<_, String>(4),
        "Inactive",
        "marked inactive through active_column"
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.invoices WHERE client_id = 4"),
        3
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM billing.transactions WHERE client_id = 4"
        ),
        3
    );
    for gone in ["payment_accounts", "email_log", "contact_changes"] {
        assert_eq!(
            count(
                &mut c,
                &format!("SELECT * FROM billing.{gone} WHERE client_id = 4")
            ),
            0,
            "{gone}"
        );
    }
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.auth_log WHERE user_id = 4"),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM billing.contacts WHERE client_id = 4 AND email LIKE '%@example.com'"
        ),
        0
    );
    // Nothing else touched.
    let after = snapshot(&mut c, "billing");
    for (table, rows) in &before {
        let changed = rows.iter().filter(|r| !after[table].contains(r)).count();
        let allowed = match table.as_str() {
            "billing.clients"
            | "billing.users"
            | "billing.payment_accounts"
            | "billing.contact_changes" => 1,
            "billing.contacts" | "billing.email_log" | "billing.auth_log" => 2,
            _ => 0,
        };
        assert_eq!(changed, allowed, "rows changed in {table}");
    }
    let audit: String = c
        .query_one("SELECT action FROM forget.audit", &[])
        .unwrap()
        .get(0);
    assert_eq!(audit, "anonymize");
    // Same rules as delete.
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.anonymize_client(1)", &[])),
        "55000"
    );
    assert!(
        message(c.query("SELECT * FROM forget.anonymize_client(1)", &[]))
            .starts_with("cannot anonymize client 1:")
    );
}

#[test]
fn anonymized_emails_stay_unique_over_thousands_of_rows_at_the_configured_domain() {
    let mut c = fresh_db("e2e_anon_unique");
    c.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE, active boolean NOT NULL DEFAULT true);
         CREATE TABLE aliases (id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, email text NOT NULL UNIQUE, nick text UNIQUE);
         CREATE INDEX ON aliases (account_id);
         INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');
         INSERT INTO aliases SELECT g, 1 + (g % 2), 'alias' || g || '@example.com', 'nick' || g FROM generate_series(1, 6000) g;
         SELECT forget.register_subject('account', 'accounts', active_column => 'active');
         SELECT forget.mask('accounts', 'email', 'forget.random_email()');
         SELECT forget.mask('aliases', 'email', 'forget.random_email()');
         SELECT forget.mask('aliases', 'nick', 'forget.pseudonym(nick, ''salt'')');
         SELECT forget.set_policy('aliases', 'account_id', 'anonymize', 'anonymize');",
    )
    .unwrap();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL forget.anonymous_email_domain = 'erased.example'")
        .unwrap();
    tx.query("SELECT * FROM forget.anonymize_client(1)", &[])
        .unwrap();
    tx.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM aliases WHERE email LIKE '%@erased.example'"
        ),
        6000
    );
    assert_eq!(count(&mut c, "SELECT DISTINCT email FROM aliases"), 6000);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM aliases WHERE nick ~ '^[0-9a-f]{64}$'"
        ),
        6000
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM accounts WHERE NOT active AND email LIKE '%@erased.example'"
        ),
        2
    );
}

#[test]
fn mask_helpers_do_what_they_say() {
    let mut c = fresh_db("e2e_anon_helpers");
    let row = c
        .query_one(
            "SELECT forget.keep_prefix('Johnson', 2), forget.keep_suffix('DE89370400440532013000', 4),
                    length(forget.random_string(20)), forget.pseudonym('x', 's') = forget.pseudonym('x', 's'),
                    forget.pseudonym('x', 's') <> forget.pseudonym('x', 't'), forget.random_email() <> forget.random_email()",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Jo*****");
    assert_eq!(row.get::<_, String>(1), "******************3000");
    assert_eq!(row.get::<_, i32>(2), 20);
    assert!(row.get::<_, bool>(3) && row.get::<_, bool>(4) && row.get::<_, bool>(5));
}

#[test]
fn a_dry_run_anonymize_changes_nothing() {
    let mut c = billing_db("e2e_anon_dry");
    let before = snapshot(&mut c, "billing");
    let plan = c
        .query(
            "SELECT * FROM forget.anonymize_client(5, dry_run => true)",
            &[],
        )
        .unwrap();
    assert!(!plan.is_empty());
    assert_eq!(snapshot(&mut c, "billing"), before);
}

#[test]
fn export_returns_every_reached_row_grouped_by_table() {
    let mut c = billing_db("e2e_export");
    let doc: String = c
        .query_one("SELECT forget.export_client(6)::text", &[])
        .unwrap()
        .get(0);
    for needle in [
        "\"subject\": \"client\"",
        "\"key\": \"6\"",
        "\"exported_at\"",
        "client6@example.com",
        "billing.invoice_items",
        "billing.auth_log",
        "billing.orders",
    ] {
        assert!(doc.contains(needle), "export has {needle}");
    }
    let per_table: Vec<(String, i32)> = c
        .query("SELECT key, jsonb_array_length(value) FROM jsonb_each(forget.export_client(6)->'data') ORDER BY key", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(per_table.contains(&("billing.invoice_items".into(), 6)));
    assert!(per_table.contains(&("billing.contacts".into(), 2)));
    assert!(!doc.contains("client7@example.com"), "nobody else's data");
    c.batch_execute("DELETE FROM billing.notes WHERE client_id = 6")
        .unwrap();
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM jsonb_object_keys(forget.export_client(6)->'data')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        tables as usize,
        per_table.len() - 1,
        "tables without rows are left out"
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.clients WHERE id = 6"),
        1,
        "export changes nothing"
    );
}

#[test]
fn the_doctor_names_missing_indexes_personal_columns_keep_edges_and_broken_masks() {
    let mut c = billing_db("e2e_doctor");
    c.batch_execute(
        "DROP INDEX billing.notes_client_id_idx;
         ALTER TABLE billing.clients ADD COLUMN birth_date date, ADD COLUMN nickname text;
         SELECT forget.mask('billing.clients', 'nickname', 'upper(nickname)');
         ALTER TABLE billing.clients DROP COLUMN nickname;
         SELECT forget.set_policy('billing.client_settings', 'client_id', 'delete', 'keep');",
    )
    .unwrap();
    let findings: Vec<(String, String, String, String)> = c
        .query("SELECT * FROM forget.check()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let has = |object: &str, hint: &str| {
        findings
            .iter()
            .any(|f| f.1.contains(object) && f.3.contains(hint))
    };
    assert!(
        has(
            "billing.notes(client_id)",
            r#"CREATE INDEX ON "billing"."notes" ("client_id");"#
        ),
        "{findings:#?}"
    );
    assert!(
        has("billing.clients.birth_date", "forget.mask("),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.1.contains("mask billing.clients.nickname") && f.0 == "error"),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.1.contains("billing.client_settings") && f.2.contains("fail")),
        "{findings:#?}"
    );
    assert!(
        !findings
            .iter()
            .any(|f| f.1.contains("billing.invoices(client_id)")),
        "indexed columns are fine"
    );
}
