//! Production behaviour of SPEC.md "Behaviour that must hold": partitions and
//! inheritance, generated columns, repeated soft actions, remnants after a
//! delete, grace bounds, backups (pg_dump/pg_restore) and upgrades from 0.1.0.

mod common;
use common::*;
use postgres::Client;
use std::collections::BTreeMap;
use std::process::Command;

type Snapshot = BTreeMap<String, Vec<String>>;

fn market_db(name: &str) -> Client {
    let c = fresh_db(name);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(name, &format!("examples/marketplace/{f}"), &[]);
    }
    c
}

/// Rows of `(export key, id, customer_id)` of an export, sorted.
fn exported(c: &mut Client, call: &str) -> Vec<(String, i64, Option<String>)> {
    c.query(
        &format!(
            "SELECT e.key, (r->>'id')::bigint, r->>'customer_id'
               FROM jsonb_each(({call})->'data') e(key, rows), jsonb_array_elements(e.rows) r
              WHERE e.key NOT IN ('public.customer')
              ORDER BY 1, 2"
        ),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Rows of `table` as text (ONLY: without the rows of child tables).
fn rows_only(c: &mut Client, table: &str) -> Vec<String> {
    c.query(
        &format!("SELECT t::text FROM ONLY {table} t ORDER BY 1"),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn ids(c: &mut Client, sql: &str) -> Vec<i64> {
    c.query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn sum_rows(c: &mut Client, call: &str, like: &str) -> i64 {
    c.query_one(
        &format!(
            "SELECT coalesce(sum(rows), 0)::bigint FROM ({call}) d WHERE d.tbl::text LIKE '{like}'"
        ),
        &[],
    )
    .unwrap()
    .get(0)
}

// ---------------------------------------------------------------- partitions

#[derive(Clone, Copy, PartialEq)]
enum Edge {
    Fk,
    FkSetNull,
    Link,
}

/// customer 1, 2, 3; payment partitioned by year; in each partition the rows
/// of customers 1 and 2 sit at the same ctids: in payment_2023 (0,1) is
/// customer 1's, in payment_2024 (0,1) is customer 2's, and so on.
fn partitioned_db(name: &str, edge: Edge, active: bool) -> Client {
    let mut c = fresh_db(name);
    let reference = match edge {
        Edge::Fk => "bigint NOT NULL REFERENCES customer",
        Edge::FkSetNull => "bigint REFERENCES customer ON DELETE SET NULL",
        Edge::Link => "bigint NOT NULL",
    };
    c.batch_execute(&format!(
        "CREATE TABLE customer (id bigint PRIMARY KEY, name text, active boolean NOT NULL DEFAULT true);
         CREATE TABLE payment (id bigint, customer_id {reference}, paid_on date, amount int,
                               PRIMARY KEY (id, paid_on)) PARTITION BY RANGE (paid_on);
         CREATE INDEX ON payment (customer_id);
         CREATE TABLE payment_2023 PARTITION OF payment FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
         CREATE TABLE payment_2024 PARTITION OF payment FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE payment_2025 PARTITION OF payment FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         INSERT INTO customer (id, name) VALUES (1, 'Alice'), (2, 'Bob'), (3, 'Carol');
         INSERT INTO payment VALUES (1, 1, '2023-02-01', 11), (2, 2, '2023-03-01', 12), (3, 1, '2023-04-01', 13), (4, 3, '2023-05-01', 14);
         INSERT INTO payment VALUES (5, 2, '2024-02-01', 15), (6, 1, '2024-03-01', 16), (7, 2, '2024-04-01', 17), (8, 3, '2024-05-01', 18);
         INSERT INTO payment VALUES (9, 1, '2025-02-01', 19), (10, 2, '2025-03-01', 20), (11, 2, '2025-04-01', 21);"
    ))
    .unwrap();
    if active {
        c.batch_execute(
            "SELECT forget.register_subject('customer', 'customer', active_column => 'active')",
        )
        .unwrap();
    } else {
        c.batch_execute("SELECT forget.register_subject('customer', 'customer')")
            .unwrap();
    }
    if edge == Edge::Link {
        c.batch_execute("SELECT forget.add_link('payment', 'customer_id', 'customer')")
            .unwrap();
    }
    // the arrangement the test relies on: same ctid, different customers
    let collide = count(
        &mut c,
        "SELECT 1 FROM payment_2023 a JOIN payment_2024 b ON a.ctid = b.ctid
          WHERE a.customer_id = 1 AND b.customer_id = 2",
    );
    assert!(collide >= 1, "ctids must collide across partitions");
    c
}

const C1_PAYMENTS: [i64; 4] = [1, 3, 6, 9];
const C2_PAYMENTS: [i64; 5] = [2, 5, 7, 10, 11];

fn partitioned_delete_export_restore(db: &str, edge: Edge) {
    let mut c = partitioned_db(db, edge, false);
    let before = snapshot(&mut c, "public");
    let others_before: Vec<String> = texts(
        &mut c,
        "SELECT p::text FROM payment p WHERE customer_id IS DISTINCT FROM 1 ORDER BY 1",
    );

    // dry run: exactly customer 1's payments, nothing changed
    let dry = sum_rows(
        &mut c,
        "SELECT * FROM forget.delete_client(1, dry_run => true)",
        "payment%",
    );
    assert_eq!(
        dry,
        C1_PAYMENTS.len() as i64,
        "dry run counts customer 1's payments"
    );
    assert_eq!(
        snapshot(&mut c, "public"),
        before,
        "a dry run changes nothing"
    );

    // export of customer 2: all of its payments, nothing of anyone else
    let exp = exported(&mut c, "SELECT forget.export_client(2)");
    let exp_ids: Vec<i64> = exp.iter().map(|r| r.1).collect();
    assert_eq!(exp_ids, C2_PAYMENTS.to_vec(), "export of 2: {exp:?}");
    assert!(
        exp.iter().all(|r| r.2.as_deref() == Some("2")),
        "export of 2 holds another customer's rows: {exp:?}"
    );

    // the delete: customer 1's payments and nothing else
    let done = sum_rows(&mut c, "SELECT * FROM forget.delete_client(1)", "payment%");
    assert_eq!(done, C1_PAYMENTS.len() as i64);
    assert_eq!(
        count(&mut c, "SELECT * FROM payment WHERE customer_id = 1"),
        0
    );
    let others_after: Vec<String> = texts(&mut c, "SELECT p::text FROM payment p ORDER BY 1");
    assert_eq!(
        others_after, others_before,
        "other customers' payments unchanged"
    );
    assert_eq!(
        ids(&mut c, "SELECT id FROM customer ORDER BY 1"),
        vec![2, 3]
    );

    // soft delete of customer 2 then restore: byte for byte
    let before2 = snapshot(&mut c, "public");
    let soft = sum_rows(
        &mut c,
        "SELECT * FROM forget.delete_client(2, grace => '1 day')",
        "payment%",
    );
    assert_eq!(soft, C2_PAYMENTS.len() as i64);
    assert_eq!(
        ids(&mut c, "SELECT id FROM payment ORDER BY 1"),
        vec![4, 8],
        "only customer 3's payments remain"
    );
    c.query("SELECT * FROM forget.restore_client(2)", &[])
        .unwrap();
    assert_eq!(
        snapshot(&mut c, "public"),
        before2,
        "restored byte for byte"
    );
    assert!(audit_is_intact(&mut c));
}

#[test]
fn partitioned_table_with_foreign_key_is_addressed_per_partition() {
    partitioned_delete_export_restore("e2e_prod_part_fk", Edge::Fk);
}

#[test]
fn partitioned_table_with_declared_link_is_addressed_per_partition() {
    partitioned_delete_export_restore("e2e_prod_part_link", Edge::Link);
}

#[test]
fn partitioned_set_null_nullifies_only_the_subjects_rows() {
    let mut c = partitioned_db("e2e_prod_part_setnull", Edge::FkSetNull, false);
    let others_before: Vec<String> = texts(
        &mut c,
        "SELECT p::text FROM payment p WHERE customer_id <> 1 ORDER BY 1",
    );
    let dry = sum_rows(
        &mut c,
        "SELECT * FROM forget.delete_client(1, dry_run => true)",
        "payment%",
    );
    assert_eq!(dry, C1_PAYMENTS.len() as i64);
    c.query("SELECT * FROM forget.delete_client(1)", &[])
        .unwrap();
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM payment WHERE customer_id IS NULL ORDER BY 1"
        ),
        C1_PAYMENTS.to_vec(),
        "exactly customer 1's payments nullified"
    );
    let others_after: Vec<String> = texts(
        &mut c,
        "SELECT p::text FROM payment p WHERE customer_id IS NOT NULL ORDER BY 1",
    );
    assert_eq!(others_after, others_before);
    assert_eq!(
        count(&mut c, "SELECT * FROM payment"),
        11,
        "nothing deleted"
    );
}

#[test]
fn partitioned_anonymize_policy_masks_only_the_subjects_rows() {
    let mut c = partitioned_db("e2e_prod_part_anon", Edge::Fk, true);
    c.batch_execute(
        "SELECT forget.mask('payment', 'amount', '0');
         SELECT forget.set_policy('payment', 'customer_id', 'anonymize', 'anonymize');",
    )
    .unwrap();
    let others_before: Vec<String> = texts(
        &mut c,
        "SELECT p::text FROM payment p WHERE customer_id IS DISTINCT FROM 1 ORDER BY 1",
    );
    c.query("SELECT * FROM forget.anonymize_client(1)", &[])
        .unwrap();
    assert_eq!(
        ids(&mut c, "SELECT id FROM payment WHERE amount = 0 ORDER BY 1"),
        C1_PAYMENTS.to_vec(),
        "exactly customer 1's payments masked"
    );
    let others_after: Vec<String> = texts(
        &mut c,
        "SELECT p::text FROM payment p WHERE id <> ALL ('{1,3,6,9}') ORDER BY 1",
    );
    assert_eq!(
        others_after, others_before,
        "other customers' payments unchanged"
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM payment"),
        11,
        "nothing deleted"
    );
}

// --------------------------------------------------------------- inheritance

#[test]
fn inherited_tables_are_addressed_per_table() {
    let mut c = fresh_db("e2e_prod_inherit");
    c.batch_execute(
        "CREATE TABLE customer (id bigint PRIMARY KEY, name text);
         CREATE TABLE note (id bigint PRIMARY KEY, customer_id bigint, body text);
         CREATE TABLE special_note (extra text) INHERITS (note);
         INSERT INTO customer VALUES (1, 'Alice'), (2, 'Bob'), (3, 'Carol');
         INSERT INTO note VALUES (1, 1, 'n1'), (2, 2, 'n2'), (3, 1, 'n3'), (4, 3, 'n4');
         INSERT INTO special_note VALUES (10, 2, 's10', 'x10'), (11, 1, 's11', 'x11'), (12, 2, 's12', 'x12'), (13, 3, 's13', 'x13');
         SELECT forget.register_subject('customer', 'customer');
         SELECT forget.add_link('note', 'customer_id', 'customer');",
    )
    .unwrap();
    assert!(
        count(
            &mut c,
            "SELECT 1 FROM ONLY note a JOIN special_note b ON a.ctid = b.ctid WHERE a.customer_id = 1 AND b.customer_id = 2"
        ) >= 1,
        "ctids collide between parent and child"
    );

    // export of 1: its parent rows and its child row (with extra), no one else's
    let exp = exported(&mut c, "SELECT forget.export_client(1)");
    let mut exp_ids: Vec<i64> = exp.iter().map(|r| r.1).collect();
    exp_ids.sort();
    assert_eq!(exp_ids, vec![1, 3, 11], "each row exactly once: {exp:?}");
    assert!(exp.iter().all(|r| r.2.as_deref() == Some("1")), "{exp:?}");
    let child = c
        .query(
            "SELECT r->>'extra' FROM jsonb_array_elements(forget.export_client(1)->'data'->'public.special_note') r",
            &[],
        )
        .unwrap();
    assert_eq!(
        child
            .iter()
            .map(|r| r.get::<_, Option<String>>(0))
            .collect::<Vec<_>>(),
        vec![Some("x11".to_string())],
        "the child row under public.special_note with its extra column"
    );

    // soft delete of 2 + restore: both tables byte for byte
    let before = snapshot(&mut c, "public");
    let parent_before = rows_only(&mut c, "note");
    c.query(
        "SELECT * FROM forget.delete_client(2, grace => '1 day')",
        &[],
    )
    .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM note WHERE customer_id = 2"), 0);
    assert_eq!(count(&mut c, "SELECT * FROM note"), 5);
    c.query("SELECT * FROM forget.restore_client(2)", &[])
        .unwrap();
    assert_eq!(snapshot(&mut c, "public"), before);
    assert_eq!(
        rows_only(&mut c, "note"),
        parent_before,
        "child rows not put into the parent"
    );

    // hard delete of 1: only its rows, in both tables
    let parent_before = rows_only(&mut c, "note");
    let child_before = rows_only(&mut c, "special_note");
    c.query("SELECT * FROM forget.delete_client(1)", &[])
        .unwrap();
    assert_eq!(
        ids(&mut c, "SELECT id FROM ONLY note ORDER BY 1"),
        vec![2, 4]
    );
    assert_eq!(
        ids(&mut c, "SELECT id FROM special_note ORDER BY 1"),
        vec![10, 12, 13]
    );
    let keep = |v: Vec<String>, gone: &[&str]| -> Vec<String> {
        v.into_iter()
            .filter(|r| !gone.iter().any(|g| r.starts_with(g)))
            .collect()
    };
    assert_eq!(
        rows_only(&mut c, "note"),
        keep(parent_before, &["(1,", "(3,"])
    );
    assert_eq!(
        rows_only(&mut c, "special_note"),
        keep(child_before, &["(11,"])
    );
}

// --------------------------------------------------------- generated columns

#[test]
fn restore_puts_back_rows_with_generated_columns() {
    let mut c = fresh_db("e2e_prod_generated");
    c.batch_execute(
        "CREATE TABLE customer (id bigint PRIMARY KEY, name text);
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customer,
                              amount int NOT NULL, total int GENERATED ALWAYS AS (amount * 2) STORED);
         CREATE INDEX ON orders (customer_id);
         INSERT INTO customer VALUES (1, 'Alice'), (2, 'Bob');
         INSERT INTO orders (id, customer_id, amount) VALUES (1, 1, 10), (2, 2, 20), (3, 1, 30);
         SELECT forget.register_subject('customer', 'customer');",
    )
    .unwrap();
    let before = snapshot(&mut c, "public");
    c.query(
        "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        &[],
    )
    .unwrap();
    assert_eq!(ids(&mut c, "SELECT id FROM orders ORDER BY 1"), vec![2]);
    c.query("SELECT * FROM forget.restore_client(1)", &[])
        .unwrap();
    assert_eq!(snapshot(&mut c, "public"), before);
    assert_eq!(
        count(&mut c, "SELECT * FROM orders WHERE total = amount * 2"),
        3
    );
}

// ---------------------------------------------------- repeated soft actions

#[test]
fn a_second_soft_action_is_refused_and_restore_brings_back_the_original() {
    let mut c = market_db("e2e_prod_repeat");
    let before = snapshot(&mut c, "market");
    c.query(
        "SELECT * FROM forget.anonymize_client(7, grace => '1 day')",
        &[],
    )
    .unwrap();
    let anonymized = snapshot(&mut c, "market");
    assert_ne!(anonymized, before);

    let again = "SELECT * FROM forget.anonymize_client(7, grace => '1 day')";
    let msg = message(c.query(again, &[]));
    assert_eq!(sqlstate(c.query(again, &[])), "55000");
    assert!(msg.contains("pending deletion"), "{msg}");
    let e = common::db_error(c.query(again, &[]));
    assert_eq!(e.constraint(), Some("pending_deletion"));
    assert_eq!(snapshot(&mut c, "market"), anonymized);

    let del = "SELECT * FROM forget.delete_client(7, grace => '1 day')";
    let msg = message(c.query(del, &[]));
    assert_eq!(sqlstate(c.query(del, &[])), "55000");
    assert!(msg.contains("pending deletion"), "{msg}");
    assert_eq!(snapshot(&mut c, "market"), anonymized);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE original_key = '7' AND state = 'retained'"
        ),
        1
    );

    c.query("SELECT * FROM forget.restore_client(7)", &[])
        .unwrap();
    assert_eq!(
        snapshot(&mut c, "market"),
        before,
        "the original values, not the anonymized ones"
    );
}

#[test]
fn a_hard_delete_purges_a_retained_anonymization() {
    let mut c = market_db("e2e_prod_repeat_purge");
    c.query(
        "SELECT * FROM forget.anonymize_client(8, grace => '1 day')",
        &[],
    )
    .unwrap();
    c.query("SELECT * FROM forget.delete_client(8)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM market.users WHERE id = 8"), 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE original_key = '8'"
        ),
        0
    );
    assert_eq!(count(&mut c, "SELECT * FROM forget.undo"), 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE action = 'purge' AND subject_key = '8'"
        ),
        1
    );
    assert!(audit_is_intact(&mut c));
}

// ---------------------------------------------------------------- remnants

#[test]
fn a_hard_delete_leaves_only_audit_rows() {
    let mut c = billing_db("e2e_prod_remnants");
    c.batch_execute(
        "SELECT forget.add_cleanup_condition('only5', 's.id = 5');
         SELECT forget.set_cleanup(true, minimize_when => 'true');",
    )
    .unwrap();
    let r = c
        .query_one("SELECT minimized FROM forget.people_cleanup()", &[])
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 1);
    c.query("SELECT forget.deactivate(5, 'admin', 'reason text')", &[])
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.deactivations WHERE key = '5'"),
        1
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.minimized WHERE key = '5'"),
        1
    );
    c.query("SELECT * FROM forget.delete_client(5)", &[])
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.deactivations WHERE key = '5'"),
        0
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.minimized WHERE key = '5'"),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE original_key = '5'"
        ),
        0
    );
    assert!(count(&mut c, "SELECT * FROM forget.audit WHERE subject_key = '5'") >= 3);
    assert!(audit_is_intact(&mut c));
}

// ------------------------------------------------------------- grace bounds

#[test]
fn grace_periods_out_of_bounds_are_refused() {
    let mut c = billing_db("e2e_prod_grace");
    let before = snapshot(&mut c, "billing");
    let forget_before = snapshot(&mut c, "forget");
    for g in ["-1 day", "0", "-00:00:01"] {
        assert_eq!(
            sqlstate(c.query(
                &format!("SELECT * FROM forget.delete_client(6, grace => '{g}')"),
                &[]
            )),
            "22023",
            "grace {g}"
        );
        assert_eq!(
            sqlstate(c.query(
                &format!("SELECT * FROM forget.anonymize_client(6, grace => '{g}')"),
                &[]
            )),
            "22023",
            "anonymize grace {g}"
        );
    }
    c.batch_execute("SET forget.grace_period = '-5 days'")
        .unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(6)", &[])),
        "22023",
        "negative forget.grace_period"
    );
    c.batch_execute("RESET forget.grace_period; SET forget.max_grace_period = '30 days'")
        .unwrap();
    assert_eq!(
        sqlstate(c.query(
            "SELECT * FROM forget.delete_client(6, grace => '1000 years')",
            &[]
        )),
        "22023"
    );
    assert_eq!(snapshot(&mut c, "billing"), before, "nothing changed");
    assert_eq!(
        snapshot(&mut c, "forget"),
        forget_before,
        "nothing recorded"
    );
    c.query(
        "SELECT * FROM forget.delete_client(6, grace => '10 days')",
        &[],
    )
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE original_key = '6' AND state = 'retained'"
        ),
        1
    );
}

// ------------------------------------------------------------------ backups

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pg(tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.args(["-h", "127.0.0.1", "-p", &port(), "-U", "postgres"]);
    cmd
}

fn config(c: &mut Client) -> Vec<Vec<String>> {
    [
        "forget.subjects",
        "forget.rules",
        "forget.masks",
        "forget.links",
        "forget.policies",
    ]
    .iter()
    .map(|t| {
        c.query(&format!("SELECT t::text FROM {t} t ORDER BY 1"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
    .collect()
}

fn check_copy(copy: &str, original: &mut Client, data: &Snapshot, kind: &str) {
    let mut c = connect(copy);
    assert_eq!(config(&mut c), config(original), "{kind}: configuration");
    assert_eq!(&snapshot(&mut c, "billing"), data, "{kind}: data");
    for t in [
        "forget.audit",
        "forget.deactivations",
        "forget.deleted_clients",
        "forget.undo",
    ] {
        assert_eq!(
            count(&mut c, &format!("SELECT * FROM {t}")),
            count(original, &format!("SELECT * FROM {t}")),
            "{kind}: {t}"
        );
    }
    assert!(audit_is_intact(&mut c), "{kind}: audit verifies");
    let audit = count(&mut c, "SELECT * FROM forget.audit");
    c.query("SELECT * FROM forget.delete_client(7)", &[])
        .unwrap_or_else(|e| panic!("{kind}: delete in the copy: {e:?}"));
    assert!(
        audit_is_intact(&mut c),
        "{kind}: audit verifies after a new delete"
    );
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), audit + 1);
    c.query("SELECT * FROM forget.restore_client(3)", &[])
        .unwrap_or_else(|e| panic!("{kind}: restore in the copy: {e:?}"));
    assert_eq!(
        count(&mut c, "SELECT * FROM billing.clients WHERE id = 3"),
        1
    );
    assert!(
        audit_is_intact(&mut c),
        "{kind}: audit verifies after a restore"
    );
    c.query("SELECT forget.reactivate(4, 'admin')", &[])
        .unwrap_or_else(|e| panic!("{kind}: reactivate in the copy: {e:?}"));
    assert!(audit_is_intact(&mut c));
}

#[test]
fn dumps_restore_without_errors_and_keep_working() {
    let db = "e2e_prod_backup";
    let mut c = billing_db(db);
    c.query(
        "SELECT * FROM forget.delete_client(3, grace => '30 days')",
        &[],
    )
    .unwrap();
    c.query("SELECT forget.deactivate(4, 'admin', 'left')", &[])
        .unwrap();
    c.query("SELECT * FROM forget.delete_client(5)", &[])
        .unwrap();
    let data = snapshot(&mut c, "billing");
    let dir = std::env::temp_dir().join("e2e_prod_backup");
    std::fs::create_dir_all(&dir).unwrap();

    // custom format, pg_restore
    let custom = dir.join("dump.custom");
    run(pg("pg_dump").args(["-Fc", "-d", db, "-f"]).arg(&custom));
    restore_custom(&custom, "e2e_prod_backup_custom");
    check_copy("e2e_prod_backup_custom", &mut c, &data, "pg_restore");

    // plain format, psql
    let plain = dir.join("dump.sql");
    run(pg("pg_dump").args(["-d", db, "-f"]).arg(&plain));
    empty_db("e2e_prod_backup_plain");
    run(pg("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "e2e_prod_backup_plain",
            "-f",
        ])
        .arg(&plain));
    check_copy("e2e_prod_backup_plain", &mut c, &data, "psql");
}

// ----------------------------------------------------------------- upgrades

fn table_counts(c: &mut Client) -> BTreeMap<String, i64> {
    let tables: Vec<String> = texts(c, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'forget' ORDER BY 1");
    tables
        .into_iter()
        .map(|t| {
            let n = count(c, &format!("SELECT * FROM {t}"));
            (t, n)
        })
        .collect()
}

fn detached_schema_dump(db: &str) -> String {
    let mut c = connect(db);
    let stmts: Vec<String> = texts(
        &mut c,
        "SELECT format('ALTER EXTENSION pg_forget DROP %s %s;', o.type, o.identity)
               FROM pg_depend d, pg_identify_object(d.classid, d.objid, d.objsubid) o
              WHERE d.refclassid = 'pg_extension'::regclass
                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_forget')
                AND d.deptype = 'e'",
    );
    c.batch_execute(&stmts.join("\n")).unwrap();
    drop(c);
    let out = run(pg("pg_dump").args(["--schema-only", "-n", "forget", "-d", db]));
    out.lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_upgrade_from_0_1_0_keeps_the_data_and_equals_a_fresh_install() {
    let db = "e2e_prod_upgrade";
    empty_db(db);
    {
        let mut c = connect(db);
        c.batch_execute("CREATE EXTENSION pg_forget VERSION '0.1.0'")
            .unwrap();
    }
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(db, &format!("examples/billing/{f}"), &[("clients", "20")]);
    }
    let before;
    {
        let mut c = connect(db);
        c.query(
            "SELECT * FROM forget.delete_client(3, grace => '30 days')",
            &[],
        )
        .unwrap();
        c.query("SELECT * FROM forget.delete_client(4)", &[])
            .unwrap();
        c.query("SELECT forget.deactivate(5, 'admin', 'left')", &[])
            .unwrap();
        c.query("SELECT * FROM forget.anonymize_client(6)", &[])
            .unwrap();
        // A role that may run the cleanup as 0.1.0 documented it.
        c.batch_execute(
            "DROP ROLE IF EXISTS upgrade_cleaner; CREATE ROLE upgrade_cleaner;
             DO $$ DECLARE f regprocedure; BEGIN
                 FOR f IN SELECT oid FROM pg_proc WHERE proname IN ('_cleanup_batch', 'people_cleanup')
                                                     AND pronamespace = 'forget'::regnamespace LOOP
                     EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO upgrade_cleaner', f);
                 END LOOP;
             END $$;
             GRANT EXECUTE ON PROCEDURE forget.run_people_cleanup TO upgrade_cleaner;",
        )
        .unwrap();
        before = table_counts(&mut c);
        for t in [
            "forget.audit",
            "forget.undo",
            "forget.deleted_clients",
            "forget.deactivations",
        ] {
            assert!(before[t] > 0, "{t} holds rows before the upgrade");
        }
    }
    {
        let mut c = connect(db);
        c.batch_execute("ALTER EXTENSION pg_forget UPDATE").unwrap();
        let v: String = c
            .query_one(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_forget'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(v, "0.2.0");
        let after = table_counts(&mut c);
        for (t, n) in &before {
            assert_eq!(after.get(t), Some(n), "{t} kept its rows");
        }
        assert!(audit_is_intact(&mut c), "audit verifies after the upgrade");
        c.query("SELECT * FROM forget.restore_client(3)", &[])
            .unwrap();
        assert_eq!(
            count(&mut c, "SELECT * FROM billing.clients WHERE id = 3"),
            1
        );
        c.query("SELECT * FROM forget.delete_client(7)", &[])
            .unwrap();
        assert!(audit_is_intact(&mut c));
        // It still may: what the procedure calls at its end came with the
        // batch it could already call.
        let may: bool = c
            .query_one(
                "SELECT has_function_privilege('upgrade_cleaner', 'forget_internal._finish_cleanup_run()', 'EXECUTE')",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(may, "the upgrade gives what run_people_cleanup now needs");
        c.batch_execute(
            "REVOKE ALL ON ALL ROUTINES IN SCHEMA forget, forget_internal FROM upgrade_cleaner;
             DROP ROLE upgrade_cleaner;",
        )
        .unwrap();
    }

    // schema of the upgraded installation == schema of a fresh one
    let a = "e2e_prod_upgrade_a";
    let b = "e2e_prod_upgrade_b";
    {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {a} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {a} TEMPLATE {db}"))
            .unwrap();
    }
    drop(fresh_db(b));
    let dump_a = detached_schema_dump(a);
    let dump_b = detached_schema_dump(b);
    if dump_a != dump_b {
        let dir = std::env::temp_dir().join("e2e_prod_upgrade");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("upgraded.sql"), &dump_a).unwrap();
        std::fs::write(dir.join("fresh.sql"), &dump_b).unwrap();
        let diff = Command::new("diff")
            .arg("-u")
            .arg(dir.join("upgraded.sql"))
            .arg(dir.join("fresh.sql"))
            .output()
            .unwrap();
        panic!(
            "upgraded schema differs from a fresh install:\n{}",
            String::from_utf8_lossy(&diff.stdout)
        );
    }
}

// ------------------------------------------------------------ masks, check()

#[test]
fn masks_that_cannot_work_are_refused_naming_the_column() {
    let mut c = fresh_db("e2e_prod_masks");
    c.batch_execute(
        "CREATE TABLE people (id bigint PRIMARY KEY, first_name text NOT NULL, nick text UNIQUE,
                              age int, twice bigint GENERATED ALWAYS AS (id * 2) STORED, note text);
         INSERT INTO people VALUES (1, 'Ann', 'a', 30), (2, 'Bob', 'b', 40);
         SELECT forget.register_subject('person', 'people');",
    )
    .unwrap();
    for (col, expr, says) in [
        ("first_name", "NULL", "NOT NULL"),
        ("first_name", "nullif(first_name, 'Ann')", "NOT NULL"),
        ("nick", "'same'", "unique"),
        ("twice", "0", "generated"),
        ("age", "'not a number'", "age"),
        ("age", "now()", "age"),
        ("missing", "NULL", "missing"),
    ] {
        let result = c.query(
            "SELECT forget.mask('people', $1::text::name, $2)",
            &[&col, &expr],
        );
        let text = message(c.query(
            "SELECT forget.mask('people', $1::text::name, $2)",
            &[&col, &expr],
        ));
        assert_eq!(sqlstate(result), "22023", "mask {col} = {expr}");
        assert!(text.contains(col), "{text} names the column");
        assert!(text.contains(says), "{text} says why ({says})");
    }
    assert_eq!(count(&mut c, "SELECT * FROM forget.masks"), 0);
    // What can work is accepted: a non-NULL text, a unique-safe value.
    for (col, expr) in [
        ("first_name", "'Anonymous'"),
        ("nick", "forget.random_string()"),
        ("note", "NULL"),
    ] {
        c.query(
            "SELECT forget.mask('people', $1::text::name, $2)",
            &[&col, &expr],
        )
        .unwrap_or_else(|e| panic!("mask {col} = {expr}: {e:?}"));
    }
    c.query("SELECT * FROM forget.anonymize_client(1)", &[])
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
}

#[test]
fn every_check_hint_is_a_statement_that_works_when_run() {
    let mut c = fresh_db("e2e_prod_hints");
    c.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, first_name text NOT NULL, last_name varchar(40),
                             email text UNIQUE, email_valid boolean NOT NULL DEFAULT false,
                             email_confirmed_at timestamptz, phone text NOT NULL UNIQUE, birth_date date NOT NULL,
                             last_ip inet);
         INSERT INTO users VALUES (1, 'Ann', 'A', 'ann@x', true, now(), '+1', '1980-01-01', '10.0.0.1'),
                                  (2, 'Bob', 'B', 'bob@x', false, NULL, '+2', '1990-01-01', NULL);
         SELECT forget.register_subject('user', 'users');",
    )
    .unwrap();
    let findings: Vec<(String, String)> = c
        .query(
            "SELECT object, hint FROM forget.check() WHERE problem LIKE 'looks personal%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let objects: Vec<&str> = findings.iter().map(|(o, _)| o.as_str()).collect();
    for col in [
        "first_name",
        "last_name",
        "email",
        "phone",
        "birth_date",
        "last_ip",
    ] {
        assert!(
            objects.contains(&format!("public.users.{col}").as_str()),
            "{col} in {objects:?}"
        );
    }
    for col in ["email_valid", "email_confirmed_at"] {
        assert!(
            !objects.contains(&format!("public.users.{col}").as_str()),
            "{col} is not personal data"
        );
    }
    for (object, hint) in &findings {
        assert!(hint.starts_with("SELECT forget.mask("), "{object}: {hint}");
        c.batch_execute(hint)
            .unwrap_or_else(|e| panic!("{object}: the hint {hint} fails: {e:?}"));
    }
    c.query("SELECT * FROM forget.anonymize_client(1)", &[])
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.check() WHERE problem LIKE 'looks personal%'"
        ),
        0
    );
}

#[test]
fn check_names_a_partition_its_siblings_reference_does_not_cover() {
    let mut c = fresh_db("e2e_prod_partition_check");
    c.batch_execute(
        "CREATE TABLE customer (id bigint PRIMARY KEY);
         CREATE TABLE payment (id bigint, customer_id bigint, paid_on date, PRIMARY KEY (id, paid_on))
             PARTITION BY RANGE (paid_on);
         CREATE TABLE payment_1 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
         CREATE TABLE payment_2 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
         CREATE TABLE payment_3 PARTITION OF payment FOR VALUES FROM ('2022-03-01') TO ('2022-04-01');
         ALTER TABLE ONLY payment_1 ADD FOREIGN KEY (customer_id) REFERENCES customer;
         ALTER TABLE ONLY payment_2 ADD FOREIGN KEY (customer_id) REFERENCES customer;
         INSERT INTO customer VALUES (1), (2);
         INSERT INTO payment VALUES (1, 1, '2022-01-05'), (2, 1, '2022-02-05'), (3, 1, '2022-03-05'),
                                    (4, 2, '2022-03-06');
         SELECT forget.register_subject('customer', 'customer');",
    )
    .unwrap();
    let found: Vec<(String, String)> = c
        .query(
            "SELECT object, hint FROM forget.check() WHERE problem LIKE 'a partition without%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "public.payment_3(customer_id)");
    assert!(found[0].1.contains("forget.add_link"), "{}", found[0].1);
    c.batch_execute(&found[0].1).unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.check() WHERE problem LIKE 'a partition without%'"
        ),
        0
    );
    c.query("SELECT * FROM forget.delete_client(1)", &[])
        .unwrap();
    assert_eq!(ids(&mut c, "SELECT id FROM payment ORDER BY id"), vec![4]);
}

// ------------------------------------------------------------------ dropping

#[test]
fn drop_extension_refuses_while_records_would_be_lost() {
    let mut c = billing_db("e2e_prod_drop");
    // Nothing recorded yet: it drops (and is installed again).
    c.batch_execute("DROP EXTENSION pg_forget; CREATE EXTENSION pg_forget")
        .unwrap();
    for f in ["config.sql"] {
        psql_file(
            "e2e_prod_drop",
            &format!("examples/billing/{f}"),
            &[("clients", "20")],
        );
    }
    c.query(
        "SELECT * FROM forget.delete_client(3, grace => '30 days')",
        &[],
    )
    .unwrap();
    let refused = c.batch_execute("DROP EXTENSION pg_forget CASCADE");
    let text = message(c.batch_execute("DROP EXTENSION pg_forget CASCADE"));
    assert_eq!(sqlstate(refused), "2BP01");
    assert!(
        text.contains("1 audit rows") && text.contains("1 retained recovery records"),
        "{text}"
    );
    assert_eq!(
        sqlstate(c.batch_execute("DROP SCHEMA forget CASCADE")),
        "2BP01"
    );
    // Dropping something else is not affected.
    c.batch_execute("CREATE SCHEMA scratch; DROP SCHEMA scratch; CREATE EXTENSION pg_trgm; DROP EXTENSION pg_trgm")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM pg_extension WHERE extname = 'pg_forget'"
        ),
        1
    );
    c.batch_execute("SET forget.allow_drop = on; DROP EXTENSION pg_forget CASCADE")
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM pg_extension WHERE extname = 'pg_forget'"
        ),
        0
    );
}

// -------------------------------------------------------------------- replay

#[test]
fn erasures_replayed_on_an_older_backup_are_gone_again() {
    let db = "e2e_prod_replay";
    let mut c = billing_db(db);
    let dir = std::env::temp_dir().join("e2e_prod_replay");
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("before.custom");
    run(pg("pg_dump").args(["-Fc", "-d", db, "-f"]).arg(&dump));
    // Erasures after the backup: a delete, an anonymization, a soft delete
    // purged when its window ended, a soft delete restored (not an erasure).
    c.batch_execute(
        "SELECT * FROM forget.delete_client(3);
         SELECT * FROM forget.delete_client(5);
         SELECT * FROM forget.anonymize_client(6);
         SELECT * FROM forget.delete_client(7, grace => '1 day');
         UPDATE forget.deleted_clients SET retention_until = now() - interval '1 second' WHERE original_key = '7';
         SELECT forget.purge_expired();
         SELECT * FROM forget.delete_client(8, grace => '1 day');
         SELECT * FROM forget.restore_client(8);",
    )
    .unwrap();
    let log: serde_json::Value = c
        .query_one("SELECT forget.erasure_log()::text", &[])
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .unwrap();
    let entries = log.as_array().unwrap();
    let keys: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("delete", "3"),
            ("delete", "5"),
            ("anonymize", "6"),
            ("delete", "7"),
            ("purge", "7")
        ],
        "the restored subject is no erasure"
    );
    for e in entries {
        assert_eq!(
            e.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["action", "at", "audit_id", "key", "subject"],
            "no personal data in the log"
        );
    }
    let later = c.query_one("SELECT forget.erasure_log(now() - interval '1 hour')::text = forget.erasure_log()::text, forget.erasure_log(now() + interval '1 hour')::text", &[]).unwrap();
    assert!(later.get::<_, bool>(0));
    assert_eq!(later.get::<_, String>(1), "[]");

    // The older backup, restored.
    let copy = "e2e_prod_replay_copy";
    restore_custom(&dump, copy);
    let mut r = connect(copy);
    // Client 5 has an open invoice in this copy: a rule blocks its replay.
    r.batch_execute("UPDATE billing.invoices SET status = 'Unpaid' WHERE client_id = 5")
        .unwrap();
    let before = snapshot(&mut r, "billing");
    let outcomes = |r: &mut Client, dry: bool| -> Vec<(i64, String, String)> {
        r.query(
            "SELECT audit_id, key, outcome FROM forget.replay_erasures($1::text::jsonb, dry_run => $2)",
            &[&log.to_string(), &dry],
        )
        .unwrap()
        .iter()
        .map(|x| (x.get(0), x.get(1), x.get(2)))
        .collect()
    };
    let dry = outcomes(&mut r, true);
    assert_eq!(
        snapshot(&mut r, "billing"),
        before,
        "a dry run changes nothing"
    );
    let done = outcomes(&mut r, false);
    assert_eq!(dry, done);
    let by_key: Vec<(&str, &str)> = done
        .iter()
        .map(|(_, k, o)| (k.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        by_key,
        vec![
            ("3", "replayed"),
            ("5", "blocked"),
            ("6", "replayed"),
            ("7", "replayed"),
            ("7", "already_gone")
        ]
    );
    for (id, key, outcome) in &done {
        let expected = if outcome == "replayed" { 1 } else { 0 };
        assert_eq!(
            count(
                &mut r,
                &format!("SELECT * FROM forget.audit WHERE subject_key = '{key}' AND reason = 'replay of audit {id}'")
            ),
            expected,
            "replay of audit {id} is audited with its id"
        );
    }
    assert_eq!(
        count(&mut r, "SELECT * FROM billing.clients WHERE id IN (3, 7)"),
        0
    );
    assert_eq!(
        count(&mut r, "SELECT * FROM billing.clients WHERE id = 5"),
        1
    );
    assert_eq!(
        count(
            &mut r,
            "SELECT * FROM billing.clients WHERE id = 6 AND firstname = 'Anonymous'"
        ),
        1
    );
    assert!(audit_is_intact(&mut r));
    // Replayed again: what is gone stays gone.
    let again = outcomes(&mut r, false);
    assert!(
        again
            .iter()
            .filter(|(_, k, _)| k == "3" || k == "7")
            .all(|(_, _, o)| o == "already_gone"),
        "{again:?}"
    );
    assert_eq!(
        sqlstate(r.query(
            "SELECT * FROM forget.replay_erasures('{\"not\": \"a log\"}')",
            &[]
        )),
        "22023"
    );
    assert_eq!(
        sqlstate(r.query("SELECT * FROM forget.replay_erasures('[{\"audit_id\": 1, \"action\": \"deactivate\", \"subject\": \"client\", \"key\": \"1\"}]')", &[])),
        "22023"
    );
}

// ------------------------------------------------- found by a review of 0.2.0

#[test]
fn a_replayed_delete_purges_what_the_older_backup_retains() {
    let db = "e2e_prod_replay_retained";
    let mut c = billing_db(db);
    c.batch_execute("SELECT * FROM forget.delete_client(3, grace => '30 days')")
        .unwrap();
    let dir = std::env::temp_dir().join(db);
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("before.custom");
    run(pg("pg_dump").args(["-Fc", "-d", db, "-f"]).arg(&dump));
    c.batch_execute(
        "SELECT * FROM forget.restore_client(3); SELECT * FROM forget.delete_client(3);",
    )
    .unwrap();
    let log: String = c
        .query_one("SELECT forget.erasure_log()::text", &[])
        .unwrap()
        .get(0);
    let copy = "e2e_prod_replay_retained_copy";
    restore_custom(&dump, copy);
    let mut r = connect(copy);
    let outcome: String = r
        .query_one(
            "SELECT outcome FROM forget.replay_erasures($1::text::jsonb)",
            &[&log],
        )
        .unwrap()
        .get(0);
    assert_eq!(outcome, "replayed");
    assert_eq!(
        count(
            &mut r,
            "SELECT * FROM forget.deleted_clients WHERE state = 'retained'"
        ),
        0
    );
    assert_eq!(count(&mut r, "SELECT * FROM forget.undo"), 0);
    assert_eq!(
        sqlstate(r.query("SELECT * FROM forget.restore_client(3)", &[])),
        "55000",
        "the erased client cannot come back"
    );
}

#[test]
fn an_anonymization_without_grace_is_final() {
    let mut c = market_db("e2e_prod_final_anonymize");
    c.batch_execute(
        "SELECT * FROM forget.anonymize_client(5, grace => '30 days');
         SELECT * FROM forget.anonymize_client(5);",
    )
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE state = 'retained'"
        ),
        0
    );
    assert_eq!(count(&mut c, "SELECT * FROM forget.undo"), 0);
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.restore_client(5)", &[])),
        "55000"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE action = 'purge' AND subject_key = '5'"
        ),
        1
    );
}

#[test]
fn masks_are_tried_on_the_tables_rows_and_unique_indexes_are_read_whole() {
    let mut c = fresh_db("e2e_prod_mask_data");
    c.batch_execute(
        "CREATE TABLE acct (id bigint PRIMARY KEY, first_name varchar(3), work_email varchar(10),
                            address text CHECK (address <> 'Anonymous'), login text, label text,
                            UNIQUE (id, label));
         CREATE UNIQUE INDEX acct_login_ci ON acct (lower(login));
         INSERT INTO acct VALUES (1, 'Ann', 'a@x.org', 'Main St 1', 'ann', 'l'), (2, 'Bob', 'b@x.org', 'Side St 2', 'bob', 'l');
         SELECT forget.register_subject('acct', 'acct');",
    )
    .unwrap();
    for (col, expr) in [
        ("first_name", "forget.random_string()"),
        ("work_email", "forget.random_email()"),
        ("address", "'Anonymous'"),
        ("login", "'gone'"),
    ] {
        let result = c.query(
            "SELECT forget.mask('acct', $1::text::name, $2)",
            &[&col, &expr],
        );
        assert_eq!(sqlstate(result), "22023", "mask {col} = {expr}");
    }
    // A constant under UNIQUE (id, label) cannot collide: id is unique.
    c.query("SELECT forget.mask('acct', 'label', $1)", &[&"'x'"])
        .unwrap();
    // Whatever check() suggests works on these rows.
    let hints: Vec<String> = texts(
        &mut c,
        "SELECT hint FROM forget.check() WHERE problem LIKE 'looks personal%'",
    );
    assert!(hints.len() >= 3, "{hints:?}");
    for hint in &hints {
        c.batch_execute(hint)
            .unwrap_or_else(|e| panic!("the hint {hint} fails: {e:?}"));
    }
    c.query("SELECT * FROM forget.anonymize_client(1)", &[])
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
    // An expression index makes a constant unsafe even on an empty table.
    c.batch_execute(
        "CREATE TABLE nick (id bigint PRIMARY KEY, acct_id bigint REFERENCES acct, handle text);
         CREATE UNIQUE INDEX ON nick (lower(handle));",
    )
    .unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT forget.mask('nick', 'handle', $1)", &[&"'gone'"])),
        "22023"
    );
}

#[test]
fn dropping_what_pg_forget_depends_on_with_cascade_is_guarded_too() {
    let mut c = billing_db("e2e_prod_drop_cascade");
    c.query("SELECT * FROM forget.delete_client(3)", &[])
        .unwrap();
    assert_eq!(
        sqlstate(c.batch_execute("DROP EXTENSION plpgsql CASCADE")),
        "2BP01"
    );
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), 1);
}

#[test]
fn a_row_reached_through_two_tables_is_counted_once() {
    let mut c = fresh_db("e2e_prod_count_once");
    c.batch_execute(
        "CREATE TABLE customer (id bigint PRIMARY KEY);
         CREATE TABLE contact (id bigint PRIMARY KEY, customer_id bigint REFERENCES customer ON DELETE CASCADE);
         CREATE TABLE contact_x (extra text) INHERITS (contact);
         ALTER TABLE contact_x ADD FOREIGN KEY (customer_id) REFERENCES customer ON DELETE CASCADE;
         INSERT INTO customer VALUES (1), (2);
         INSERT INTO contact VALUES (1, 1), (2, 2);
         INSERT INTO contact_x VALUES (3, 1, 'x'), (4, 2, 'y');
         SELECT forget.register_subject('customer', 'customer');",
    )
    .unwrap();
    let reported = sum_rows(
        &mut c,
        "SELECT * FROM forget.delete_client(1, dry_run => true)",
        "contact%",
    );
    assert_eq!(reported, 2);
    let done = sum_rows(&mut c, "SELECT * FROM forget.delete_client(1)", "contact%");
    assert_eq!(done, 2);
    assert_eq!(
        ids(&mut c, "SELECT id FROM contact ORDER BY id"),
        vec![2, 4]
    );
    let audited: i64 = c
        .query_one(
            "SELECT sum(value::bigint)::bigint FROM forget.audit, jsonb_each_text(rows) WHERE key LIKE 'public.contact%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(audited, 2);
}

/// A delete of one subject runs each table deleted in one pass as its own
/// statement (up to 8 such tables; more stay in the one action statement).
/// Either way it removes what PostgreSQL's own ON DELETE CASCADE removes on a
/// copy of the schema, and reports, audits and dry-runs the same counts.
#[test]
fn one_pass_deletes_remove_what_a_cascade_removes_and_count_it() {
    for leaves in [3usize, 9] {
        let db = format!("e2e_prod_one_pass_{leaves}");
        let mut c = fresh_db(&db);
        for (schema, cascade) in [("public", ""), ("oracle", " ON DELETE CASCADE")] {
            let mut sql = format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE {schema}.owner (id bigint PRIMARY KEY, code text UNIQUE);
                 INSERT INTO {schema}.owner SELECT g, 'o' || g FROM generate_series(1, 4) g;
                 CREATE TABLE {schema}.orders (id int PRIMARY KEY, owner_id bigint REFERENCES {schema}.owner{cascade});
                 INSERT INTO {schema}.orders SELECT g, g % 4 + 1 FROM generate_series(1, 40) g;
                 CREATE TABLE {schema}.lines (id int PRIMARY KEY, order_id int REFERENCES {schema}.orders{cascade});
                 INSERT INTO {schema}.lines SELECT g, g % 40 + 1 FROM generate_series(1, 200) g;
                 CREATE TABLE {schema}.by_code (owner_code text REFERENCES {schema}.owner (code){cascade});
                 INSERT INTO {schema}.by_code SELECT 'o' || (g % 4 + 1) FROM generate_series(1, 20) g;"
            );
            for t in 0..leaves {
                // An int column referencing the bigint key: the key is cast.
                sql.push_str(&format!(
                    "CREATE TABLE {schema}.leaf{t} (owner_id int NOT NULL REFERENCES {schema}.owner{cascade}, n int);
                     INSERT INTO {schema}.leaf{t} SELECT g % 4 + 1, g FROM generate_series(1, {}) g;",
                    10 + t * 7
                ));
            }
            c.batch_execute(&sql).unwrap();
        }
        c.batch_execute("SELECT forget.register_subject('owner', 'public.owner')")
            .unwrap();
        let result = |c: &mut Client, call: &str| -> Vec<(String, i64)> {
            c.query(
                &format!(
                    "SELECT tbl::text, rows FROM ({call}) d WHERE operation = 'delete' ORDER BY 1"
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        };
        let dry = result(
            &mut c,
            "SELECT * FROM forget.delete_client(2, dry_run => true)",
        );
        let before = row_counts(&mut c, "public");
        let done = result(&mut c, "SELECT * FROM forget.delete_client(2)");
        c.batch_execute("DELETE FROM oracle.owner WHERE id = 2")
            .unwrap();
        assert_eq!(done, dry, "{leaves} leaves");
        let after = row_counts(&mut c, "public");
        let removed: Vec<(String, i64)> = before
            .iter()
            .map(|(t, n)| (t.clone(), n - after[t]))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(removed, done, "{leaves} leaves");
        assert_eq!(
            snapshot(&mut c, "public"),
            renamed(snapshot(&mut c, "oracle"), "oracle", "public")
        );
        let audited: Vec<(String, i64)> = c
            .query(
                "SELECT key, value::bigint FROM forget.audit, jsonb_each_text(rows)
                  WHERE action = 'delete' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let qualified: Vec<(String, i64)> = done
            .iter()
            .map(|(t, n)| (format!("public.{t}"), *n))
            .collect();
        assert_eq!(audited, qualified, "{leaves} leaves");

        // With a grace period: the same rows go as with the cascade, each
        // one copied once, and restore_client puts every one back.
        let kept = snapshot(&mut c, "public");
        let dry = result(
            &mut c,
            "SELECT * FROM forget.delete_client(3, dry_run => true)",
        );
        let done = result(
            &mut c,
            "SELECT * FROM forget.delete_client(3, grace => '1 day')",
        );
        c.batch_execute("DELETE FROM oracle.owner WHERE id = 3")
            .unwrap();
        assert_eq!(done, dry, "{leaves} leaves, grace");
        assert_eq!(
            snapshot(&mut c, "public"),
            renamed(snapshot(&mut c, "oracle"), "oracle", "public"),
            "{leaves} leaves, grace"
        );
        let copied: i64 = c
            .query_one(
                "SELECT count(*) FROM forget.undo WHERE operation = 'insert'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            copied,
            done.iter().map(|(_, n)| n).sum::<i64>(),
            "{leaves} leaves, grace"
        );
        let restored: Vec<(String, i64)> = c
            .query(
                "SELECT tbl::text, rows FROM forget.restore_client(3) WHERE operation = 'insert' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(restored, done, "{leaves} leaves, grace");
        assert_eq!(snapshot(&mut c, "public"), kept, "{leaves} leaves, grace");
    }
}

/// A delete with a grace period keeps each row it deleted once and whole,
/// and only those: a partition reached through its parent's foreign key and
/// its own (with and without a primary key), a table reached by two paths,
/// columns named like the aliases of the statements (`c`, `t`), and a row a
/// BEFORE DELETE trigger keeps. restore_client puts back exactly what was
/// there; the export shows each row as an object, equal rows each.
#[test]
fn what_a_delete_with_grace_keeps_is_each_deleted_row_once_and_whole() {
    for leaves in [0usize, 9] {
        let db = format!("e2e_prod_kept_once_{leaves}");
        let mut c = fresh_db(&db);
        let mut sql = String::from(
            "CREATE TABLE clients (id int PRIMARY KEY);
             INSERT INTO clients VALUES (1), (2);
             CREATE TABLE ev (id int, client_id int REFERENCES clients, kind text, PRIMARY KEY (id, kind)) PARTITION BY LIST (kind);
             CREATE TABLE ev_a PARTITION OF ev FOR VALUES IN ('a');
             ALTER TABLE ev_a ADD CONSTRAINT ev_a_own FOREIGN KEY (client_id) REFERENCES clients;
             INSERT INTO ev VALUES (10, 1, 'a'), (11, 2, 'a');
             CREATE TABLE lg (client_id int REFERENCES clients, owner_id int, kind text) PARTITION BY LIST (kind);
             CREATE TABLE lg_a PARTITION OF lg FOR VALUES IN ('a');
             ALTER TABLE lg_a ADD CONSTRAINT lg_a_own FOREIGN KEY (owner_id) REFERENCES clients;
             INSERT INTO lg VALUES (1, 1, 'a'), (1, 1, 'a'), (2, 2, 'a');
             CREATE TABLE notes (client_id int REFERENCES clients, c text, t jsonb);
             INSERT INTO notes VALUES (1, 'hello', '{\"theme\": \"dark\"}'), (2, 'x', NULL);
             CREATE TABLE tasks (client_id int REFERENCES clients, helper_id int REFERENCES clients, t text, c int);
             INSERT INTO tasks VALUES (1, 1, 'both', 1), (1, 2, 'first', 2), (2, 1, 'second', 3), (2, 2, 'other', 4);
             CREATE TABLE memo (client_id int, v text);
             INSERT INTO memo VALUES (1, 'keep'), (1, 'go'), (2, 'other');
             CREATE FUNCTION keep_memo() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN IF OLD.v = 'keep' THEN RETURN NULL; END IF; RETURN OLD; END $$;
             CREATE TRIGGER keep_memo BEFORE DELETE ON memo FOR EACH ROW EXECUTE FUNCTION keep_memo();",
        );
        // More than 8 tables deleted in one pass: the one statement's path.
        for t in 0..leaves {
            sql.push_str(&format!(
                "CREATE TABLE leaf{t} (client_id int REFERENCES clients, c text); INSERT INTO leaf{t} VALUES (1, 'c{t}');"
            ));
        }
        sql.push_str(
            "SELECT forget.register_subject('client', 'clients');
             SELECT forget.add_link('memo', 'client_id', 'clients');",
        );
        c.batch_execute(&sql).unwrap();
        let kept = snapshot(&mut c, "public");
        let result = |c: &mut Client, call: &str| -> Vec<(String, i64)> {
            c.query(
                &format!("SELECT tbl::text, rows FROM ({call}) d WHERE rows > 0 ORDER BY 1"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        };
        let exported: String = c
            .query_one(
                "SELECT concat_ws(' ', jsonb_typeof(e->'public.notes'->0), e->'public.notes'->0->>'c',
                                  jsonb_typeof(e->'public.tasks'->0), e->'public.tasks'->0->>'t',
                                  jsonb_array_length(e->'public.lg'), e ? 'public.lg_a', e ? 'public.ev_a')
                 FROM (SELECT forget.export_client(1)->'data' e) x",
                &[],
            )
            .unwrap()
            .get(0);
        // Two equal rows of a table without a key are two rows of the export;
        // a partition's rows reached through its partitioned table and on
        // their own are listed once, under the partitioned table.
        assert_eq!(
            exported, "object hello object both 2 f f",
            "{leaves} leaves"
        );
        // Rows each relation holds itself (a partitioned table none).
        let held = |c: &mut Client| -> i64 {
            texts(
                c,
                "SELECT format('%I', tablename) FROM pg_tables WHERE schemaname = 'public'",
            )
            .iter()
            .map(|t| count(c, &format!("SELECT * FROM ONLY {t}")))
            .sum()
        };
        let before = held(&mut c);
        let done = result(
            &mut c,
            "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        );
        let removed = before - held(&mut c);
        let memo = texts(&mut c, "SELECT v FROM memo ORDER BY v");
        assert_eq!(memo, ["keep", "other"], "{leaves} leaves");
        let copies: Vec<(String, i64)> = c
            .query(
                "SELECT tbl::text, count(*) FROM forget.undo WHERE jsonb_typeof(row_data) = 'object' GROUP BY 1 ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let total = |v: &[(String, i64)]| v.iter().map(|(_, n)| n).sum::<i64>();
        assert_eq!(
            total(&copies),
            count(&mut c, "SELECT * FROM forget.undo"),
            "{leaves} leaves: every copy a whole row"
        );
        // Each deleted row once, and none its trigger kept.
        assert_eq!(
            total(&copies),
            removed,
            "{leaves} leaves: {copies:?} {done:?}"
        );
        c.batch_execute("SELECT * FROM forget.restore_client(1)")
            .unwrap();
        assert_eq!(snapshot(&mut c, "public"), kept, "{leaves} leaves");
    }
}

/// Undo data of 0.1.0's format (`undo_format` 1, as upgraded or restored
/// from a 0.1.0 dump) may hold a row twice, reached by two paths: a restore
/// puts it back once, as 0.1.0 did. Records made now are of format 2.
#[test]
fn undo_data_of_0_1_0_holding_a_row_twice_restores_it_once() {
    let mut c = fresh_db("e2e_prod_undo_format");
    c.batch_execute(
        "CREATE TABLE owner (id bigint PRIMARY KEY);
         INSERT INTO owner VALUES (1), (2);
         CREATE TABLE orders (id int PRIMARY KEY, owner_id bigint REFERENCES owner);
         INSERT INTO orders SELECT g, g % 2 + 1 FROM generate_series(1, 10) g;
         SELECT forget.register_subject('owner', 'owner');",
    )
    .unwrap();
    let kept = snapshot(&mut c, "public");
    c.batch_execute("SELECT * FROM forget.delete_client(1, grace => '1 day')")
        .unwrap();
    let format: i16 = c
        .query_one("SELECT undo_format FROM forget.deleted_clients", &[])
        .unwrap()
        .get(0);
    assert_eq!(format, 2);
    // What 0.1.0 could leave: every copy of orders twice.
    c.batch_execute(
        "UPDATE forget.deleted_clients SET undo_format = 1;
         INSERT INTO forget.undo SELECT * FROM forget.undo WHERE tbl = 'orders'::regclass;",
    )
    .unwrap();
    let restored: i64 = c
        .query_one(
            "SELECT rows FROM forget.restore_client(1) WHERE tbl = 'orders'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(restored, 5);
    assert_eq!(snapshot(&mut c, "public"), kept);
}

/// A child column of another type than the key matches the key only where
/// the key survives the cast to it and back (numeric 1.5 is not integer 2,
/// 'abcd' is not varchar(3) 'abc'); a key column with a nondeterministic
/// collation, or of a type with its own equality (citext), matches its
/// children as ON DELETE CASCADE does. Dry run, delete and export agree; PostgreSQL's own cascade
/// on a copy of the schema is the oracle.
#[test]
fn casts_and_collations_reach_only_the_subjects_rows() {
    let mut c = fresh_db("e2e_prod_casts");
    let cases = [
        // (subject table's key type, child column type, keys, children's
        // references, the key to delete)
        ("numeric", "int", "(1.5), (2)", "(2), (2)", "1.5"),
        (
            "text",
            "varchar(3)",
            "('abc'), ('abcd')",
            "('abc'), ('abc')",
            "abcd",
        ),
        (
            "text COLLATE ci",
            "text",
            "('ABC'), ('xyz')",
            "('ABC'), ('abc'), ('xyz')",
            "ABC",
        ),
        // A type whose equality is not pg_catalog's (citext's is
        // case-insensitive, text's is not).
        (
            "citext",
            "citext",
            "('Abc'), ('xyz')",
            "('abc'), ('ABC'), ('xyz')",
            "Abc",
        ),
    ];
    c.batch_execute(
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         CREATE EXTENSION citext",
    )
    .unwrap();
    for (i, (key_type, child_type, keys, children, key)) in cases.iter().enumerate() {
        for (schema, cascade) in [
            (format!("s{i}"), ""),
            (format!("o{i}"), " ON DELETE CASCADE"),
        ] {
            c.batch_execute(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.subject (id {key_type} PRIMARY KEY);
                 INSERT INTO {schema}.subject VALUES {keys};
                 CREATE TABLE {schema}.child (n serial, sid {child_type} REFERENCES {schema}.subject{cascade});
                 INSERT INTO {schema}.child (sid) VALUES {children};
                 CREATE TABLE {schema}.linked (n serial, sid {child_type});
                 INSERT INTO {schema}.linked (sid) SELECT sid FROM {schema}.child;"
            ))
            .unwrap_or_else(|e| panic!("{key_type}: {e}"));
        }
        c.batch_execute(&format!(
            "SELECT forget.register_subject('s{i}', 's{i}.subject');
             SELECT forget.add_link('s{i}.linked', 'sid', 's{i}.subject');
             DELETE FROM o{i}.linked l WHERE EXISTS (SELECT FROM o{i}.subject s WHERE s.id = '{key}' AND l.sid::{key_type} = s.id);"
        ))
        .unwrap();
        let call = |dry: bool| {
            format!(
                "SELECT tbl::text, rows FROM forget.delete_client('{key}'::text, subject => 's{i}', dry_run => {dry}) ORDER BY 1"
            )
        };
        let rows = |c: &mut Client, sql: &str| -> Vec<(String, i64)> {
            c.query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        };
        let exported: i64 = c
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM jsonb_each(forget.export_client('{key}'::text, subject => 's{i}')->'data') e, jsonb_array_elements(e.value) r
                      WHERE e.key <> 's{i}.subject')"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        let dry = rows(&mut c, &call(true));
        let done = rows(&mut c, &call(false));
        assert_eq!(done, dry, "{key_type}");
        c.batch_execute(&format!("DELETE FROM o{i}.subject WHERE id = '{key}'"))
            .unwrap();
        let removed: i64 = done
            .iter()
            .filter(|(t, _)| !t.ends_with("subject"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            exported, removed,
            "{key_type}: export reaches what the delete removes"
        );
        assert_eq!(
            snapshot(&mut c, &format!("s{i}")),
            renamed(
                snapshot(&mut c, &format!("o{i}")),
                &format!("o{i}"),
                &format!("s{i}")
            ),
            "{key_type}: the same rows are left as after ON DELETE CASCADE"
        );
    }
}

/// The same holds for an activity source whose reference has another type
/// than the key: subject 1.5 has no activity of subject 2's.
#[test]
fn an_activity_source_of_another_type_counts_only_the_subjects_rows() {
    let mut c = fresh_db("e2e_prod_activity_cast");
    c.batch_execute(
        "CREATE TABLE subject (id numeric PRIMARY KEY, active bool NOT NULL DEFAULT true);
         CREATE TABLE visits (sid int NOT NULL, at timestamptz NOT NULL);
         INSERT INTO subject (id) VALUES (1.5), (2);
         INSERT INTO visits VALUES (2, '2026-01-01');
         SELECT forget.register_subject('subject', 'subject');
         SELECT forget.add_activity('visits', 'at', via => 'sid');",
    )
    .unwrap();
    let last = |c: &mut Client, key: &str| -> Option<String> {
        c.query_one(
            &format!("SELECT forget.last_activity('{key}'::text)::date::text"),
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(last(&mut c, "2"), Some("2026-01-01".into()));
    assert_eq!(last(&mut c, "1.5"), None);
}

/// A text key parsed into a child column's type matches every spelling of
/// the value ('007' is integer 7, an upper-case UUID is the uuid), as it did
/// before the check against lossy casts; a key column that is not unique,
/// and a subject table whose inheritance child holds the same key, delete
/// what the dry run reports.
#[test]
fn parsed_keys_and_keys_held_twice_reach_what_the_dry_run_reports() {
    let mut c = fresh_db("e2e_prod_parsed_keys");
    c.batch_execute(
        "CREATE TABLE ids (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT '2020-01-01');
         CREATE TABLE by_number (n int);
         CREATE TABLE by_uuid (u uuid);
         CREATE TABLE logins (n int, at timestamptz);
         CREATE TABLE uids (id text PRIMARY KEY);
         INSERT INTO ids (id) VALUES ('007');
         INSERT INTO uids (id) VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11');
         INSERT INTO by_number VALUES (7), (8);
         INSERT INTO by_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
         INSERT INTO logins VALUES (7, '2026-01-01');
         SELECT forget.register_subject('id', 'ids');
         SELECT forget.register_subject('uid', 'uids');
         SELECT forget.add_link('by_number', 'n', 'ids');
         SELECT forget.add_link('by_uuid', 'u', 'uids');
         SELECT forget.add_activity('ids', 'at', subject => 'id');
         SELECT forget.add_activity('logins', 'at', via => 'n', subject => 'id');

         CREATE TABLE clients (id serial PRIMARY KEY, client_no int NOT NULL);
         CREATE TABLE notes (client_no int);
         INSERT INTO clients (client_no) VALUES (1), (1), (2);
         INSERT INTO notes VALUES (1), (2);
         SELECT forget.register_subject('client', 'clients', key_column => 'client_no');
         SELECT forget.add_link('notes', 'client_no', 'clients', 'client_no');

         CREATE TABLE people (id int PRIMARY KEY);
         CREATE TABLE people_archive () INHERITS (people);
         CREATE TABLE pnotes (person_id int);
         INSERT INTO people VALUES (1), (2);
         INSERT INTO people_archive VALUES (1);
         INSERT INTO pnotes VALUES (1), (2);
         SELECT forget.register_subject('person', 'people');
         SELECT forget.add_link('pnotes', 'person_id', 'people');",
    )
    .unwrap();
    let last: Option<String> = c
        .query_one(
            "SELECT forget.last_activity('007'::text, 'id')::date::text",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(last.as_deref(), Some("2026-01-01"));
    let counts = |c: &mut Client, call: &str| -> Vec<(String, i64)> {
        c.query(
            &format!("SELECT tbl::text, rows FROM {call} ORDER BY 1"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    for (key, subject, expected) in [
        ("007", "id", vec![("by_number", 1), ("ids", 1)]),
        (
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "uid",
            vec![("by_uuid", 1), ("uids", 1)],
        ),
        ("1", "client", vec![("clients", 2), ("notes", 1)]),
        ("1", "person", vec![("people", 2), ("pnotes", 1)]),
    ] {
        let expected: Vec<(String, i64)> = expected
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect();
        let dry = counts(
            &mut c,
            &format!(
                "forget.delete_client('{key}'::text, subject => '{subject}', dry_run => true)"
            ),
        );
        assert_eq!(dry, expected, "{subject} {key}: dry run");
        let done = counts(
            &mut c,
            &format!("forget.delete_client('{key}'::text, subject => '{subject}')"),
        );
        assert_eq!(done, expected, "{subject} {key}");
    }
    assert_eq!(texts(&mut c, "SELECT n::text FROM by_number"), vec!["8"]);
    assert_eq!(count(&mut c, "SELECT * FROM by_uuid"), 0);
    assert_eq!(
        texts(&mut c, "SELECT client_no::text FROM notes"),
        vec!["2"]
    );
    assert_eq!(
        texts(&mut c, "SELECT person_id::text FROM pnotes"),
        vec!["2"]
    );
}

/// A key the key column's type modifier would change names no subject
/// rather than another one: varchar(3) would truncate 'abcd' to 'abc', and
/// numeric(10,0) round 1.5 to 2; '1.5' still names numeric(10,2) 1.50.
#[test]
fn a_key_that_the_columns_type_modifier_changes_names_no_subject() {
    let mut c = fresh_db("e2e_prod_typmod_key");
    c.batch_execute(
        "CREATE TABLE short (id varchar(3) PRIMARY KEY);
         CREATE TABLE whole (id numeric(10,0) PRIMARY KEY);
         CREATE TABLE cents (id numeric(10,2) PRIMARY KEY);
         INSERT INTO short VALUES ('abc'); INSERT INTO whole VALUES (2); INSERT INTO cents VALUES (1.50);
         SELECT forget.register_subject('short', 'short');
         SELECT forget.register_subject('whole', 'whole');
         SELECT forget.register_subject('cents', 'cents');",
    )
    .unwrap();
    for (key, subject) in [("abcd", "short"), ("1.5", "whole")] {
        for call in [
            format!("SELECT * FROM forget.delete_client('{key}'::text, subject => '{subject}')"),
            format!("SELECT * FROM forget.delete_client('{key}'::text, subject => '{subject}', dry_run => true)"),
            format!("SELECT forget.export_client('{key}'::text, subject => '{subject}')"),
        ] {
            assert_eq!(sqlstate(c.query(&call, &[])), "P0002", "{call}");
        }
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM short UNION ALL SELECT id::text FROM whole"
        ),
        2
    );
    c.query(
        "SELECT * FROM forget.delete_client('1.5'::text, subject => 'cents')",
        &[],
    )
    .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM cents"), 0);
}

/// A link whose value cannot be compared both ways (integer to money casts,
/// money to integer does not) is refused when it is declared, not at every
/// action afterwards.
#[test]
fn a_link_whose_value_does_not_cast_back_is_refused_when_declared() {
    let mut c = fresh_db("e2e_prod_one_way_cast");
    c.batch_execute(
        "CREATE TABLE s (id int PRIMARY KEY);
         CREATE TABLE paid (amount money);
         SELECT forget.register_subject('s', 's');",
    )
    .unwrap();
    let refused = c.query("SELECT forget.add_link('paid', 'amount', 's')", &[]);
    assert_eq!(sqlstate(refused), "42846");
    assert_eq!(count(&mut c, "SELECT * FROM forget.links"), 0);
}

/// A table whose DELETE or UPDATE a rule rewrites (DO INSTEAD: a soft
/// delete, a copy elsewhere) would keep the subject's rows while the action
/// reported them changed: every action that would change it fails before it
/// changes anything (0A000), with a grace period or not, for a leaf and for
/// a table reached by two paths, as a cleanup batch; its dry run still
/// counts. A rule on INSERT, or on UPDATE of a table only deleted from,
/// changes nothing for an action.
#[test]
fn a_table_whose_delete_a_rule_rewrites_fails_the_delete_and_changes_nothing() {
    let mut c = fresh_db("e2e_prod_rule");
    c.batch_execute(
        "CREATE TABLE subject (id bigint PRIMARY KEY);
         CREATE TABLE soft (id serial PRIMARY KEY, sid bigint NOT NULL REFERENCES subject, deleted bool DEFAULT false);
         CREATE RULE keep_it AS ON DELETE TO soft DO INSTEAD UPDATE soft SET deleted = true WHERE id = OLD.id;
         CREATE TABLE trash (sid bigint);
         CREATE TABLE pair (a bigint REFERENCES subject, b bigint REFERENCES subject);
         CREATE RULE elsewhere AS ON DELETE TO pair DO INSTEAD INSERT INTO trash VALUES (OLD.a);
         CREATE TABLE logged (sid bigint REFERENCES subject);
         CREATE RULE on_insert AS ON INSERT TO logged DO ALSO INSERT INTO trash VALUES (NEW.sid);
         CREATE RULE on_update AS ON UPDATE TO logged DO ALSO INSERT INTO trash VALUES (OLD.sid);
         CREATE TABLE kin (sid bigint REFERENCES subject);
         CREATE TABLE kin_child (more text) INHERITS (kin);
         CREATE RULE kept_child AS ON DELETE TO kin_child DO INSTEAD NOTHING;
         INSERT INTO kin_child VALUES (1, 'x');
         INSERT INTO subject VALUES (1), (2), (3);
         INSERT INTO soft (sid) VALUES (1), (1), (2);
         INSERT INTO pair VALUES (3, 3), (3, 2);
         INSERT INTO logged VALUES (1);
         SELECT forget.register_subject('subject', 'subject');",
    )
    .unwrap();
    let before = snapshot(&mut c, "public");
    for call in [
        "SELECT * FROM forget.delete_client(1)",
        "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        "SELECT * FROM forget.delete_client(3)",
        "SELECT * FROM forget.delete_client(3, grace => '1 day')",
    ] {
        let error = db_error(c.query(call, &[]));
        assert_eq!(error.code().code(), "0A000", "{call}");
        assert!(
            error.message().contains("a rule rewrites"),
            "{call}: {}",
            error.message()
        );
        assert_eq!(snapshot(&mut c, "public"), before, "{call}");
    }
    let dry: i64 = c
        .query_one(
            "SELECT rows FROM forget.delete_client(3, dry_run => true) WHERE tbl = 'pair'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(dry, 2);
    // Without those rules: a rule on an inheritance child is PostgreSQL's
    // to leave out of a DELETE on its parent, but a delete with grace
    // deletes from the child itself (to keep its own columns) and is
    // refused; the rules on INSERT and UPDATE of a table that is deleted
    // from are no obstacle.
    c.batch_execute("DROP RULE keep_it ON soft; DROP RULE elsewhere ON pair;")
        .unwrap();
    let before = snapshot(&mut c, "public");
    let error = db_error(c.query(
        "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        &[],
    ));
    assert_eq!(error.code().code(), "0A000");
    assert!(error.message().contains("kin_child"), "{}", error.message());
    assert_eq!(snapshot(&mut c, "public"), before);
    c.batch_execute(
        "SELECT * FROM forget.delete_client(1); SELECT * FROM forget.delete_client(3);",
    )
    .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM subject"), 1);
    assert_eq!(count(&mut c, "SELECT * FROM logged"), 0);
    assert_eq!(count(&mut c, "SELECT * FROM kin"), 0);
}

/// Rows per table of `schema`, by unqualified name.
fn row_counts(c: &mut Client, schema: &str) -> BTreeMap<String, i64> {
    texts(
        c,
        &format!("SELECT tablename::text FROM pg_tables WHERE schemaname = '{schema}'"),
    )
    .into_iter()
    .map(|t| {
        let n = count(c, &format!("SELECT * FROM {schema}.{t}"));
        (t, n)
    })
    .collect()
}

/// A snapshot of schema `from`, named as if it were schema `to`.
fn renamed(
    tables: BTreeMap<String, Vec<String>>,
    from: &str,
    to: &str,
) -> BTreeMap<String, Vec<String>> {
    tables
        .into_iter()
        .map(|(t, rows)| (t.replacen(&format!("{from}."), &format!("{to}."), 1), rows))
        .collect()
}

// ------------------------------------------------------------- audit pruning

#[test]
fn a_pruned_audit_still_verifies_from_its_recorded_base() {
    let mut c = fresh_db("e2e_prod_prune_empty");
    assert!(audit_is_intact(&mut c), "nothing recorded verifies");
    let mut c = billing_db("e2e_prod_prune");
    c.batch_execute(
        "SELECT * FROM forget.delete_client(3);
         SELECT * FROM forget.delete_client(4);",
    )
    .unwrap();
    let cut: String = c
        .query_one("SELECT clock_timestamp()::text", &[])
        .unwrap()
        .get(0);
    c.batch_execute(
        "SELECT * FROM forget.delete_client(5);
         SELECT * FROM forget.delete_client(6);",
    )
    .unwrap();
    let removed: i64 = c
        .query_one("SELECT forget.prune_audit($1::text::timestamptz)", &[&cut])
        .unwrap()
        .get(0);
    assert_eq!(removed, 2);
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), 2);
    assert!(audit_is_intact(&mut c), "verifies from the recorded base");
    c.query("SELECT * FROM forget.delete_client(7)", &[])
        .unwrap();
    assert!(audit_is_intact(&mut c), "and grows");
    assert_eq!(
        sqlstate(c.query("SELECT forget.prune_audit(NULL)", &[])),
        "22004"
    );
    // Everything pruned: the head is the base.
    let all: i64 = c
        .query_one(
            "SELECT forget.prune_audit(now() + interval '1 minute')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(all, 3);
    assert!(audit_is_intact(&mut c));
    c.query("SELECT * FROM forget.delete_client(8)", &[])
        .unwrap();
    assert!(audit_is_intact(&mut c));
    // Removing a row by hand (not through prune_audit) is still detected.
    c.query("SELECT * FROM forget.delete_client(9)", &[])
        .unwrap();
    c.batch_execute("DELETE FROM forget.audit WHERE id = (SELECT min(id) FROM forget.audit)")
        .unwrap();
    assert!(!audit_is_intact(&mut c));
}

/// The threads of the server process behind `c` (it runs on this machine).
fn backend_threads(c: &mut Client) -> usize {
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[test]
fn a_long_chain_verifies_breaks_anywhere_show_and_a_cancel_leaves_no_thread() {
    // 20,000 audit rows: the hashes are checked in batches of 1000 on a
    // second thread while the backend reads the rows and checks the links.
    let mut c = people_db("e2e_prod_long_chain", 20_000);
    c.batch_execute(
        "SELECT count(*) FROM forget.deactivate_inactive('1 month', 'test', 'inactive')",
    )
    .unwrap();
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.audit WHERE seq IS NOT NULL"),
        20_000
    );
    assert!(audit_is_intact(&mut c));
    assert_eq!(
        backend_threads(&mut c),
        1,
        "the hashing thread is gone after the call"
    );
    // A change in a row's fields (checked on the hashing thread) and in a
    // link (checked by the backend), early, in the middle and at the end.
    for seq in [1, 1000, 1001, 12_345, 20_000] {
        for change in [
            "reason = reason || 'x'",
            "rows = rows || '{\"public.people\": 2}'",
            "prev_hash = COALESCE(prev_hash, '') || 'x'",
            "next_seq = next_seq + 1",
        ] {
            let mut tx = c.transaction().unwrap();
            let changed = tx
                .execute(
                    &format!("UPDATE forget.audit SET {change} WHERE seq = {seq}"),
                    &[],
                )
                .unwrap();
            assert_eq!(changed, 1);
            let intact: bool = tx
                .query_one("SELECT forget.verify_audit()", &[])
                .unwrap()
                .get(0);
            // The newest row's next_seq is NULL: NULL + 1 changes nothing.
            let expected = seq == 20_000 && change.starts_with("next_seq");
            assert_eq!(intact, expected, "{change} at seq {seq}");
            tx.rollback().unwrap();
        }
    }
    // Cancelled while it runs (statement_timeout, 57014): the backend stays
    // usable, with no thread left, and the next call verifies.
    c.batch_execute("SET statement_timeout = '1ms'").unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT forget.verify_audit()", &[])),
        "57014"
    );
    c.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(backend_threads(&mut c), 1);
    assert!(audit_is_intact(&mut c));
}

/// The peak resident memory of the server process behind `c`, in kB.
fn backend_peak_kb(c: &mut Client) -> i64 {
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn verifying_big_rows_keeps_memory_flat_and_stops_soon_when_cancelled() {
    // 2,000 rows with a 140 kB reason each (compressed where stored: every
    // one is detoasted to be hashed), 280 MB in all.
    let mut c = fresh_db("e2e_prod_big_rows");
    c.batch_execute(
        "SELECT forget_internal._write_audit('delete', 'member', ARRAY(SELECT g::text FROM generate_series(1, 2000) g),
                                             NULL, repeat('reason ', 20000), NULL, NULL)",
    )
    .unwrap();
    let before = backend_peak_kb(&mut c);
    assert!(audit_is_intact(&mut c));
    let grown_mb = (backend_peak_kb(&mut c) - before) / 1024;
    assert!(
        grown_mb < 64,
        "verifying 280 MB of rows grew the backend by {grown_mb} MB"
    );
    // Cancelled by statement_timeout: the hasher stops at its next row, so
    // the error comes about when the timeout fires, not after the queued
    // batches are hashed.
    c.batch_execute("SET statement_timeout = '200ms'").unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        sqlstate(c.query("SELECT forget.verify_audit()", &[])),
        "57014"
    );
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(3),
        "cancelled after {waited:?}"
    );
    c.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(backend_threads(&mut c), 1);
}

#[test]
fn a_row_written_around_the_writer_is_reported_and_never_linked() {
    let mut c = billing_db("e2e_prod_forged_row");
    c.query("SELECT * FROM forget.delete_client(3)", &[])
        .unwrap();
    assert!(audit_is_intact(&mut c));
    // A committed row that no writer linked: by hand, as the owner could.
    c.batch_execute(
        "INSERT INTO forget.audit (id, at, action, subject, subject_key, db_user, rows)
         VALUES (999999, now(), 'delete', 'client', '42', 'postgres', '{}')",
    )
    .unwrap();
    assert!(
        !audit_is_intact(&mut c),
        "an unlinked row of another transaction"
    );
    // The next action's commit links its own rows only.
    c.query("SELECT * FROM forget.delete_client(4)", &[])
        .unwrap();
    let linked: Option<i64> = c
        .query_one("SELECT seq FROM forget.audit WHERE id = 999999", &[])
        .unwrap()
        .get(0);
    assert_eq!(linked, None);
    assert!(!audit_is_intact(&mut c));
    c.batch_execute("DELETE FROM forget.audit WHERE id = 999999")
        .unwrap();
    assert!(audit_is_intact(&mut c));
    // A transaction's own rows are unlinked until it commits, and verify.
    let mut tx = c.transaction().unwrap();
    tx.query("SELECT * FROM forget.delete_client(5)", &[])
        .unwrap();
    let own: i64 = tx
        .query_one("SELECT count(*) FROM forget.audit WHERE hash IS NULL", &[])
        .unwrap()
        .get(0);
    assert!(own > 0);
    assert!(tx
        .query_one("SELECT forget.verify_audit()", &[])
        .unwrap()
        .get::<_, bool>(0));
    tx.commit().unwrap();
    assert!(audit_is_intact(&mut c));
}

/// The action and export statements the backend behind `c` keeps (the
/// plan cache's contexts named after a statement pg_forget renders).
fn kept_statements(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_backend_memory_contexts
         WHERE name = 'CachedPlanSource' AND ident LIKE 'WITH RECURSIVE%'",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn kept_statements_stay_within_plan_cache_size_and_results_do_not_change() {
    let mut c = billing_db("e2e_prod_plan_cache");
    // export carries the time of the call: everything else is compared.
    let calls = [
        "SELECT (forget.export_client(1) - 'exported_at')::text",
        "SELECT string_agg(format('%s %s %s', tbl, operation, rows), ', ') FROM forget.delete_client(2, dry_run => true)",
        "SELECT string_agg(format('%s %s %s', tbl, operation, rows), ', ') FROM forget.anonymize_client(3, dry_run => true)",
    ];
    let run = |c: &mut Client| -> Vec<Option<String>> {
        calls
            .iter()
            .map(|sql| c.query_one(*sql, &[]).unwrap().get(0))
            .collect()
    };
    // The default (40MB) keeps all three.
    let kept_all = run(&mut c);
    assert!(kept_all.iter().all(Option::is_some));
    assert_eq!(kept_statements(&mut c), 3);
    // A budget smaller than any statement keeps only the one that ran last;
    // the others are planned again when called, with the same results.
    let mut small = connect("e2e_prod_plan_cache");
    small
        .batch_execute("SET forget.plan_cache_size = '1kB'")
        .unwrap();
    for _ in 0..2 {
        assert_eq!(run(&mut small), kept_all);
        assert_eq!(kept_statements(&mut small), 1);
    }
    // A larger budget keeps them all again.
    small
        .batch_execute("SET forget.plan_cache_size = '64MB'")
        .unwrap();
    assert_eq!(run(&mut small), kept_all);
    assert_eq!(kept_statements(&mut small), 3);
}

/// A custom-format dump restored with pg_restore into a new, empty database.
fn restore_custom(dump: &std::path::Path, into: &str) {
    empty_db(into);
    run(pg("pg_restore")
        .args(["--exit-on-error", "-d", into])
        .arg(dump));
}

// ----------------------------------------------------------------- job runs

/// People 1..=n seen a year ago, the even ones gone: a subject with an
/// activity source and one cleanup condition, cleanup on.
fn people_db(db: &str, n: i32) -> Client {
    let mut c = fresh_db(db);
    c.batch_execute(&format!(
        "CREATE TABLE people (id bigint PRIMARY KEY, gone boolean, active boolean NOT NULL DEFAULT true,
                             seen_at timestamptz);
         INSERT INTO people SELECT g, g % 2 = 0, true, now() - interval '1 year' FROM generate_series(1, {n}) g;
         SELECT forget.register_subject('person', 'people', active_column => 'active');
         SELECT forget.add_activity('people', 'seen_at');
         SELECT forget.add_cleanup_condition('gone', 's.gone');
         SELECT forget.set_cleanup(true);"
    ))
    .unwrap();
    c
}

#[test]
fn every_job_run_is_recorded_and_cleanup_batches_pause() {
    let mut c = people_db("e2e_prod_runs", 30);
    c.batch_execute("SELECT * FROM forget.people_cleanup(5, dry_run => true)")
        .unwrap();
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.runs"),
        0,
        "a dry run only reads"
    );
    c.batch_execute("SELECT * FROM forget.people_cleanup(5)")
        .unwrap();
    c.batch_execute("SET forget.cleanup_pause = '200ms'")
        .unwrap();
    c.batch_execute("CALL forget.run_people_cleanup(5)")
        .unwrap();
    c.batch_execute(
        "SELECT * FROM forget.deactivate_inactive('1 month');
         SELECT forget.purge_expired();",
    )
    .unwrap();
    let runs: Vec<(String, Option<i64>, Option<i64>, Option<i64>, f64)> = c
        .query(
            "SELECT job, candidates, deleted, deactivated, extract(epoch FROM finished_at - started_at)::float8
             FROM forget.runs ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let jobs: Vec<&str> = runs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        jobs,
        vec![
            "people_cleanup",
            "run_people_cleanup",
            "deactivate_inactive",
            "purge_expired"
        ]
    );
    assert_eq!((runs[0].1, runs[0].2), (Some(5), Some(5)));
    assert_eq!((runs[1].1, runs[1].2), (Some(10), Some(10)));
    assert!(
        runs[1].4 >= 0.4,
        "two pauses of 200 ms between committed batches: {}",
        runs[1].4
    );
    assert_eq!(runs[2].3, Some(15));
    assert_eq!(runs[3].2, Some(0));
}

/// What a scheduled job did reaches the server log: each run writes one LOG
/// line with its counts (what forget.runs holds), since pg_cron keeps only a
/// command tag and NOTICEs reach no log. The commands are the ones the jobs
/// run (cron_command); LOG lines are fetched here by asking for them.
#[test]
fn every_job_run_writes_its_counts_to_the_server_log() {
    let db = "e2e_prod_runs_log";
    let mut c = people_db(db, 8);
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    let mut config: postgres::Config = url(db, "postgres").parse().unwrap();
    config.notice_callback(move |n| {
        if n.severity() == "LOG" {
            seen.lock().unwrap().push(n.message().to_string());
        }
    });
    let mut logged = config.connect(postgres::NoTls).unwrap();
    logged
        .batch_execute("SET client_min_messages = log; SET forget.inactive_for = '1 month'")
        .unwrap();
    for job in ["people_cleanup", "deactivate_inactive", "purge_expired"] {
        let command: String = c
            .query_one("SELECT forget.cron_command($1)", &[&job])
            .unwrap()
            .get(0);
        logged.batch_execute(&command).unwrap();
    }
    let expected = texts(
        &mut c,
        "SELECT format('pg_forget run %s: %s%s: %s', id, job,
                       CASE WHEN subject IS NULL THEN '' ELSE ' of ' || subject END,
                       concat_ws(', ', candidates || ' candidates', minimized || ' minimized',
                                 deleted || ' deleted', deactivated || ' deactivated', failed || ' failed'))
         FROM forget.runs ORDER BY id",
    );
    assert_eq!(expected.len(), 3, "one run per job");
    assert!(
        expected[0].contains("4 candidates, 0 minimized, 4 deleted, 0 failed"),
        "{expected:?}"
    );
    let lines = lines.lock().unwrap().clone();
    let runs: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("pg_forget run "))
        .collect();
    assert_eq!(runs.len(), 3, "{lines:?}");
    for (line, want) in runs.iter().zip(&expected) {
        assert!(
            line.starts_with(&format!("{want} in ")) && line.ends_with(" s"),
            "{line} / {want}"
        );
    }
}

/// A dump made with 0.1.0 restores into this version (CREATE EXTENSION
/// makes the current one) and every action works afterwards: 0.1.0 had no
/// audit id sequence, so the restored rows came with none, and the next
/// action collided with audit row 1 (found by a newcomer following
/// docs/operations.md).
#[test]
fn a_dump_made_with_0_1_0_restores_into_this_version_and_keeps_working() {
    let db = "e2e_prod_old_dump";
    empty_db(db);
    connect(db)
        .batch_execute("CREATE EXTENSION pg_forget VERSION '0.1.0'")
        .unwrap();
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(db, &format!("examples/billing/{f}"), &[("clients", "20")]);
    }
    {
        let mut c = connect(db);
        for sql in [
            "SELECT * FROM forget.delete_client(3, grace => '30 days')",
            "SELECT * FROM forget.delete_client(4)",
            "SELECT * FROM forget.anonymize_client(5)",
        ] {
            c.query(sql, &[]).unwrap();
        }
    }
    let dir = std::env::temp_dir().join("e2e_prod_old_dump");
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("dump.custom");
    run(pg("pg_dump").args(["-Fc", "-d", db, "-f"]).arg(&dump));
    let copy = "e2e_prod_old_dump_copy";
    restore_custom(&dump, copy);
    let mut c = connect(copy);
    let v: String = c
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_forget'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, "0.2.0");
    assert!(audit_is_intact(&mut c));
    c.query("SELECT * FROM forget.delete_client(6)", &[])
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(7)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), 5);
    assert!(
        audit_is_intact(&mut c),
        "the chain goes on from the restored rows"
    );
    // 0.1.0 named the tables of its undo data by OID, which a dump cannot
    // carry: such a soft delete cannot be restored in the copy
    // (docs/operations.md, Dumps made with 0.1.0).
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.restore_client(3)", &[])),
        "55000"
    );
}

/// A partition with a foreign key of its own to the subject (its
/// partitioned table has none) is reached on its own; the rows that
/// reference its rows through the partitioned table's foreign key go with
/// them (PostgreSQL cascades to them from the partition's rows): counted as
/// a cascade on a copy of the schema removes them, kept by a delete with
/// grace and put back by restore, and deleted first where the foreign key
/// does not cascade. Also a partition two levels down.
#[test]
fn rows_referencing_a_partition_reached_through_its_own_foreign_key_go_with_it() {
    for action in ["CASCADE", "NO ACTION"] {
        let db = format!(
            "e2e_prod_partition_own_fk_{}",
            action.replace(' ', "_").to_lowercase()
        );
        let mut c = fresh_db(&db);
        let ddl = |schema: &str, action: &str| {
            format!(
                "CREATE SCHEMA {schema};
                 SET search_path = {schema};
                 CREATE TABLE clients (id int PRIMARY KEY, name text);
                 CREATE TABLE orders (id int, region text, client_id int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
                 CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
                 CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu', 'fr') PARTITION BY LIST (region);
                 CREATE TABLE orders_fr PARTITION OF orders_eu FOR VALUES IN ('fr');
                 CREATE TABLE orders_other PARTITION OF orders_eu FOR VALUES IN ('eu');
                 ALTER TABLE orders_us ADD FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE;
                 ALTER TABLE orders_fr ADD FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE;
                 CREATE TABLE order_items (id int PRIMARY KEY, order_id int, region text,
                     FOREIGN KEY (order_id, region) REFERENCES orders ON DELETE {action});
                 CREATE TABLE item_notes (item_id int REFERENCES order_items ON DELETE {action}, note text);
                 INSERT INTO clients VALUES (1, 'a'), (2, 'b');
                 INSERT INTO orders VALUES (10, 'us', 1), (11, 'us', 2), (12, 'fr', 1), (13, 'fr', 2), (14, 'eu', 1);
                 INSERT INTO order_items VALUES (100, 10, 'us'), (101, 10, 'us'), (102, 11, 'us'), (103, 12, 'fr'),
                                                (104, 13, 'fr'), (105, 14, 'eu');
                 INSERT INTO item_notes VALUES (100, 'x'), (103, 'y'), (104, 'z');
                 RESET search_path;"
            )
        };
        c.batch_execute(&ddl("app", action)).unwrap();
        c.batch_execute(&ddl("twin", "CASCADE")).unwrap();
        c.batch_execute("SELECT forget.register_subject('client', 'app.clients')")
            .unwrap();
        // The oracle: PostgreSQL's own cascade on the copy, rows each
        // relation loses.
        let before_twin = held_rows(&mut c, "twin");
        c.batch_execute("DELETE FROM twin.clients WHERE id = 1")
            .unwrap();
        let expected = lost_rows(&before_twin, &held_rows(&mut c, "twin"));
        assert_eq!(expected["order_items"], 3, "the oracle itself");
        let reported = |c: &mut Client, call: &str| -> BTreeMap<String, i64> {
            let mut m = BTreeMap::new();
            for r in c
                .query(
                    &format!("SELECT tbl::text, rows FROM ({call}) d WHERE rows > 0"),
                    &[],
                )
                .unwrap()
            {
                let t: String = r.get(0);
                *m.entry(t.trim_start_matches("app.").to_string())
                    .or_insert(0) += r.get::<_, i64>(1);
            }
            m
        };
        let before = held_rows(&mut c, "app");
        let snap = snapshot(&mut c, "app");
        let dry = reported(
            &mut c,
            "SELECT * FROM forget.delete_client(1, dry_run => true)",
        );
        let done = reported(
            &mut c,
            "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        );
        let removed = lost_rows(&before, &held_rows(&mut c, "app"));
        assert_eq!(removed, expected, "{action}: what the cascade removes");
        assert_eq!(done, expected, "{action}: what the delete reports");
        assert_eq!(dry, expected, "{action}: what the dry run reports");
        c.query("SELECT * FROM forget.restore_client(1)", &[])
            .unwrap();
        assert_eq!(snapshot(&mut c, "app"), snap, "{action}: restored whole");
        // And without grace.
        assert_eq!(
            reported(&mut c, "SELECT * FROM forget.delete_client(1)"),
            expected,
            "{action}"
        );
        assert_eq!(lost_rows(&before, &held_rows(&mut c, "app")), expected);
    }
}

/// Columns that carry the names pg_forget gives its own columns in the
/// statements it writes (forget_rel, forget_tid, ...) are a user's columns
/// like any: every action reaches, changes, keeps, exports and puts back
/// the right rows, and a mask may read them.
#[test]
fn columns_named_like_pg_forgets_own_are_ordinary_columns() {
    let mut c = fresh_db("e2e_prod_forget_named_columns");
    let own =
        "forget_rel int, forget_tid text, forget_root text, forget_fate text, forget_c0 int, \
               forget_row jsonb, forget_n0 boolean, forget_t int, forget_deleted int, name text";
    let values = "7, 'tid', 'root', 'fate', 0, '{}', true, 1, 2";
    c.batch_execute(&format!(
        "CREATE TABLE clients (id int PRIMARY KEY, {own}, boss int REFERENCES clients ON DELETE SET NULL);
         CREATE TABLE notes (id int PRIMARY KEY, client_id int REFERENCES clients, {own});
         CREATE TABLE linked (client_ref int, {own});
         INSERT INTO clients SELECT g, {values}, 'c' || g, NULL FROM generate_series(1, 4) g;
         UPDATE clients SET boss = 1 WHERE id = 3;
         INSERT INTO notes SELECT g, 1 + g % 4, {values}, 'n' || g FROM generate_series(1, 8) g;
         INSERT INTO linked SELECT 1 + g % 4, {values}, 'l' || g FROM generate_series(1, 8) g;
         SELECT forget.register_subject('client', 'clients');
         SELECT forget.add_link('linked', 'client_ref', 'clients', condition => 'forget_tid = ''tid'' AND forget_rel = 7');
         SELECT forget.mask('clients', 'name', 'forget_tid || forget_fate');
         SELECT forget.mask('notes', 'name', 'forget_root');"
    ))
    .unwrap();
    let snap = snapshot(&mut c, "public");
    let rows = |c: &mut Client, call: &str| -> Vec<(String, String, i64)> {
        c.query(
            &format!(
                "SELECT tbl::text, operation, rows FROM ({call}) d WHERE rows > 0 ORDER BY 1, 2"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    };
    let owned = |t: &str, n: i64| (t.to_string(), "delete".to_string(), n);
    let expected = vec![
        ("clients".to_string(), "delete".to_string(), 1),
        ("clients".to_string(), "nullify".to_string(), 1),
        owned("linked", 2),
        owned("notes", 2),
    ];
    assert_eq!(
        rows(
            &mut c,
            "SELECT * FROM forget.delete_client(1, dry_run => true)"
        ),
        expected
    );
    let export: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM jsonb_array_elements(e->'public.notes') n WHERE n->>'client_id' = '1')
                  + (SELECT count(*) FROM jsonb_array_elements(e->'public.linked') l WHERE l->>'client_ref' = '1')
             FROM (SELECT forget.export_client(1)->'data' e) x",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(export, 4);
    assert_eq!(
        rows(
            &mut c,
            "SELECT * FROM forget.delete_client(1, grace => '1 day')"
        ),
        expected
    );
    c.query("SELECT * FROM forget.restore_client(1)", &[])
        .unwrap();
    assert_eq!(snapshot(&mut c, "public"), snap, "restored whole");
    assert_eq!(
        rows(&mut c, "SELECT * FROM forget.delete_client(1)"),
        expected
    );
    assert_eq!(count(&mut c, "SELECT * FROM notes WHERE client_id = 1"), 0);
    assert_eq!(
        count(&mut c, "SELECT * FROM linked WHERE client_ref = 1"),
        0
    );
    assert_eq!(count(&mut c, "SELECT * FROM clients WHERE boss IS NULL"), 3);
    c.query("SELECT * FROM forget.anonymize_client(2)", &[])
        .unwrap();
    assert_eq!(
        texts(&mut c, "SELECT name FROM clients WHERE id = 2"),
        ["tidfate"]
    );
    c.query("SELECT * FROM forget.people_cleanup()", &[])
        .unwrap();
}

/// An export lists the rows that reference the subject, other subjects'
/// rows of the subject table included (a client whose boss the subject is),
/// but nothing below those: their notes and the clients that reference them
/// are theirs, not the subject's. A delete still reaches what PostgreSQL's
/// cascade would.
#[test]
fn an_export_stops_at_other_subjects_that_reference_the_subject() {
    for action in ["SET NULL", "CASCADE"] {
        let mut c = fresh_db(&format!(
            "e2e_prod_export_other_subjects_{}",
            action.replace(' ', "_").to_lowercase()
        ));
        c.batch_execute(&format!(
            "CREATE TABLE clients (id int PRIMARY KEY, name text, boss int REFERENCES clients ON DELETE {action});
             CREATE TABLE notes (id int PRIMARY KEY, client_id int REFERENCES clients ON DELETE CASCADE, body text);
             INSERT INTO clients VALUES (1, 'one', NULL), (2, 'two', NULL), (3, 'three', 1), (4, 'four', 3);
             INSERT INTO notes SELECT g, 1 + g % 4, 'note' FROM generate_series(1, 8) g;
             SELECT forget.register_subject('client', 'clients');"
        ))
        .unwrap();
        let listed = |c: &mut Client, table: &str, column: &str| -> Vec<String> {
            texts(
                c,
                &format!(
                    "SELECT r->>'{column}' FROM jsonb_array_elements(forget.export_client(1)->'data'->'public.{table}') r ORDER BY 1"
                ),
            )
        };
        assert_eq!(listed(&mut c, "clients", "id"), ["1", "3"], "{action}");
        assert_eq!(listed(&mut c, "notes", "client_id"), ["1", "1"], "{action}");
        let reached: i64 = c
            .query_one(
                "SELECT sum(rows)::bigint FROM forget.delete_client(1, dry_run => true)",
                &[],
            )
            .unwrap()
            .get(0);
        // SET NULL: client 1, its 2 notes, client 3 nullified; CASCADE:
        // clients 1, 3 and 4 and their 6 notes.
        assert_eq!(reached, if action == "CASCADE" { 9 } else { 4 }, "{action}");
    }
}

/// Rows each relation of `schema` holds itself (a partitioned table none).
fn held_rows(c: &mut Client, schema: &str) -> BTreeMap<String, i64> {
    texts(
        c,
        &format!("SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1"),
    )
    .into_iter()
    .map(|t| {
        let n = count(c, &format!("SELECT * FROM ONLY {schema}.{t}"));
        (t, n)
    })
    .collect()
}

/// Rows each relation lost between two `held_rows` (those that lost any).
fn lost_rows(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    before
        .iter()
        .filter(|(t, n)| after[*t] != **n)
        .map(|(t, n)| (t.clone(), n - after[t]))
        .collect()
}

/// `ddl(schema)` made twice, as `app` (registered, subject `app.clients`)
/// and `twin`; client 1 deleted from the twin by PostgreSQL's own cascade
/// (the oracle) and by delete_client with grace from app: the same rows of
/// each relation go, and restore_client puts every row back.
fn matches_the_cascade_and_restores(db: &str, ddl: impl Fn(&str) -> String) {
    let mut c = fresh_db(db);
    c.batch_execute(&ddl("app")).unwrap();
    c.batch_execute(&ddl("twin")).unwrap();
    c.batch_execute("SELECT forget.register_subject('client', 'app.clients')")
        .unwrap();
    let before_twin = held_rows(&mut c, "twin");
    c.batch_execute("DELETE FROM twin.clients WHERE id = 1")
        .unwrap();
    let expected = lost_rows(&before_twin, &held_rows(&mut c, "twin"));
    let before = held_rows(&mut c, "app");
    let snap = snapshot(&mut c, "app");
    c.query(
        "SELECT * FROM forget.delete_client(1, grace => '1 day')",
        &[],
    )
    .unwrap();
    assert_eq!(
        lost_rows(&before, &held_rows(&mut c, "app")),
        expected,
        "{db}"
    );
    c.query("SELECT * FROM forget.restore_client(1)", &[])
        .unwrap();
    assert_eq!(snapshot(&mut c, "app"), snap, "{db}: restored whole");
}

/// PostgreSQL's clones of a foreign key on the partitions it references are
/// followed last: where one closes a cycle with a foreign key of the
/// schema, the clone is the one left out (the schema's key was cut, and
/// the rows its cascade removed were neither counted nor restored).
#[test]
fn a_foreign_keys_clone_on_a_partition_never_cuts_a_declared_foreign_key() {
    matches_the_cascade_and_restores("e2e_prod_clone_cycle", |schema| {
        format!(
            "CREATE SCHEMA {schema}; SET search_path = {schema};
             CREATE TABLE clients (id int PRIMARY KEY, name text);
             CREATE TABLE orders (id int, region text, client_id int, promo_item int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
             CREATE TABLE orders_fr PARTITION OF orders FOR VALUES IN ('fr');
             CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
             ALTER TABLE orders_fr ADD FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE;
             ALTER TABLE orders_us ADD FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE;
             CREATE TABLE promo_items (id int PRIMARY KEY, client_id int REFERENCES clients ON DELETE CASCADE, order_id int, region text,
                 FOREIGN KEY (order_id, region) REFERENCES orders ON DELETE CASCADE);
             ALTER TABLE orders_fr ADD FOREIGN KEY (promo_item) REFERENCES promo_items ON DELETE CASCADE;
             INSERT INTO clients VALUES (1, 'a'), (2, 'b');
             INSERT INTO promo_items VALUES (100, 1, NULL, NULL), (200, 2, NULL, NULL);
             INSERT INTO orders VALUES (11, 'fr', 1, NULL), (12, 'fr', 2, 100), (13, 'fr', 2, 200), (14, 'us', 1, NULL);
             RESET search_path;"
        )
    });
}

/// A partitioned subject table whose partition references the subject
/// table (a sponsor): the export lists the sponsored clients but nothing of
/// theirs; check() asks the other partition for the reference to the
/// partitioned table, not to a partition (PostgreSQL's clones are no
/// references of the schema).
#[test]
fn an_export_stops_at_other_subjects_in_a_partition_of_the_subject_table() {
    let mut c = fresh_db("e2e_prod_export_partitioned_subjects");
    c.batch_execute(
        "CREATE TABLE clients (id int, kind text, name text, sponsor int, sponsor_kind text, PRIMARY KEY (id, kind)) PARTITION BY LIST (kind);
         CREATE TABLE clients_std PARTITION OF clients FOR VALUES IN ('std');
         CREATE TABLE clients_vip PARTITION OF clients FOR VALUES IN ('vip');
         ALTER TABLE clients_vip ADD FOREIGN KEY (sponsor, sponsor_kind) REFERENCES clients ON DELETE SET NULL;
         CREATE TABLE notes (id int PRIMARY KEY, client_id int, client_kind text, body text,
             FOREIGN KEY (client_id, client_kind) REFERENCES clients ON DELETE CASCADE);
         INSERT INTO clients VALUES (1, 'std', 'one', NULL, NULL), (2, 'std', 'two', NULL, NULL),
                                    (5, 'vip', 'five', 1, 'std'), (6, 'vip', 'six', 5, 'vip');
         INSERT INTO notes VALUES (1, 1, 'std', 'note of 1'), (2, 2, 'std', 'note of 2'),
                                  (5, 5, 'vip', 'note of 5'), (6, 6, 'vip', 'note of 6');
         SELECT forget.register_subject('client', 'clients', key_column => 'id');",
    )
    .unwrap();
    let listed = texts(
        &mut c,
        "SELECT t || ' ' || (r->>'id') FROM jsonb_each(forget.export_client(1)->'data') d(t, rows),
                jsonb_array_elements(rows) r ORDER BY 1",
    );
    assert_eq!(
        listed,
        ["public.clients 1", "public.clients_vip 5", "public.notes 1"]
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.check() WHERE problem LIKE 'a partition without the reference to public.clients %' AND object = 'public.clients_std(sponsor, sponsor_kind)' AND hint NOT LIKE '%clients_vip%'"
        ),
        1
    );
}
