//! End to end on Pagila, a public sample database nobody on this project
//! wrote (fixture: `../shared/fixtures/pagila` beside the repository; CI runs
//! with a copy of `shared/` next to the clone).
//!
//! The oracle is PostgreSQL itself: a second copy of the data whose foreign
//! keys all cascade (SET NULL ones kept), where a plain
//! `DELETE FROM customer WHERE customer_id = X` defines exactly what must be
//! gone. `payment` is partitioned by month and its partition
//! `payment_p2022_07` has no foreign keys: the oracle gets cascading ones,
//! and the pg_forget side declares links on the partitioned parent, so that
//! rows are addressed across partitions (where ctids collide).

mod common;
use common::*;
use postgres::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Pagila loaded, no extension: copied (CREATE DATABASE ... TEMPLATE) by
/// every test. Nobody stays connected to it.
const TEMPLATE: &str = "e2e_pagila_tpl";
/// Pagila with every foreign key cascading; used in transactions that roll back.
const ORACLE: &str = "e2e_pagila_oracle";

fn fixture() -> PathBuf {
    repo_root().join("../shared/fixtures/pagila")
}

fn load_pagila(db: &str) {
    let dir = fixture();
    assert!(
        dir.join("schema.sql").exists(),
        "the Pagila fixture is expected at {} (a copy of shared/ beside the clone)",
        dir.display()
    );
    let out = psql_cmd(db)
        .arg("-f")
        .arg(dir.join("schema.sql"))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "loading schema.sql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gunzip = Command::new("gunzip")
        .arg("-c")
        .arg(dir.join("data.sql.gz"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gunzip");
    let out = psql_cmd(db)
        .stdin(gunzip.stdout.expect("gunzip stdout"))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "loading data.sql.gz: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every foreign key of `public` made ON DELETE CASCADE (SET NULL kept), and
/// cascading keys from the partition the schema leaves without any.
const CASCADE_EVERYTHING: &str = r#"
DO $$
DECLARE
    r record;
    def text;
BEGIN
    FOR r IN
        SELECT c.conname, c.conrelid::regclass AS tbl, pg_get_constraintdef(c.oid) AS def
        FROM pg_constraint c
        JOIN pg_class k ON k.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = k.relnamespace
        WHERE c.contype = 'f' AND n.nspname = 'public'
          AND c.conparentid = 0 AND c.confdeltype NOT IN ('n')
    LOOP
        def := regexp_replace(r.def, ' ON DELETE (RESTRICT|CASCADE|NO ACTION|SET DEFAULT)', '');
        def := regexp_replace(def, '(REFERENCES [^)]*\))', '\1 ON DELETE CASCADE');
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tbl, r.conname, def);
    END LOOP;
END
$$;
ALTER TABLE public.payment_p2022_07
    ADD FOREIGN KEY (customer_id) REFERENCES public.customer ON DELETE CASCADE,
    ADD FOREIGN KEY (rental_id) REFERENCES public.rental ON DELETE CASCADE;
"#;

struct Setup {
    /// Customers to forget: payments in several partitions, a rental paid by
    /// other customers (its delete reaches their payments, also in the
    /// partition without foreign keys), and one such other payer.
    customers: Vec<i32>,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

fn setup() -> &'static Setup {
    SETUP.get_or_init(|| {
        let mut admin = connect("postgres");
        for db in [TEMPLATE, ORACLE] {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .unwrap();
        }
        admin
            .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
            .unwrap();
        load_pagila(TEMPLATE);
        let customers = {
            let mut t = connect(TEMPLATE);
            let q = |t: &mut Client, sql: &str| -> i32 {
                t.query_one(sql, &[])
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .get(0)
            };
            let all_partitions = q(
                &mut t,
                "SELECT customer_id FROM public.payment GROUP BY 1 \
                 HAVING count(DISTINCT tableoid) = (SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.payment'::regclass) \
                 ORDER BY 1 LIMIT 1",
            );
            let paid_by_others = q(
                &mut t,
                "SELECT r.customer_id FROM public.payment p JOIN public.rental r USING (rental_id) \
                 WHERE p.customer_id <> r.customer_id AND p.tableoid = 'public.payment_p2022_07'::regclass \
                 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            );
            let other_payer = q(
                &mut t,
                &format!(
                    "SELECT min(p.customer_id) FROM public.payment p JOIN public.rental r USING (rental_id) \
                     WHERE r.customer_id = {paid_by_others} AND p.customer_id <> r.customer_id \
                     AND p.tableoid = 'public.payment_p2022_07'::regclass"
                ),
            );
            vec![all_partitions, paid_by_others, other_payer]
        };
        // The connection to the template is closed before it is copied.
        admin
            .batch_execute(&format!("CREATE DATABASE {ORACLE} TEMPLATE {TEMPLATE}"))
            .unwrap();
        connect(ORACLE).batch_execute(CASCADE_EVERYTHING).unwrap();
        Setup { customers }
    })
}

/// A fresh copy of Pagila with pg_forget installed, `customer` registered,
/// and (`links`) the payment links declared on the partitioned parent.
fn copy(name: &str, links: bool) -> Client {
    setup();
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
        .unwrap();
    let mut c = connect(name);
    c.batch_execute(
        "CREATE EXTENSION pg_forget; \
         SELECT forget.register_subject('customer', 'public.customer', active_column => 'activebool');",
    )
    .unwrap();
    if links {
        c.batch_execute(
            "SELECT forget.add_link('public.payment', 'customer_id', 'public.customer'); \
             SELECT forget.add_link('public.payment', 'rental_id', 'public.rental');",
        )
        .unwrap();
    }
    c
}

type Snapshot = BTreeMap<String, Vec<String>>;

/// The oracle: every table of `public` before and after a cascading
/// `DELETE FROM customer WHERE customer_id = x` (rolled back).
fn oracle(x: i32) -> (Snapshot, Snapshot) {
    let mut o = connect(ORACLE);
    o.batch_execute("BEGIN").unwrap();
    let before = snapshot(&mut o, "public");
    let n = o
        .execute("DELETE FROM public.customer WHERE customer_id = $1", &[&x])
        .unwrap();
    assert_eq!(n, 1, "the oracle deletes customer {x}");
    let after = snapshot(&mut o, "public");
    o.batch_execute("ROLLBACK").unwrap();
    (before, after)
}

/// Rows only on one side, per table (at most 20 of each), or "" when equal.
fn diff(left: &Snapshot, right: &Snapshot, lname: &str, rname: &str) -> String {
    let mut out = String::new();
    let tables: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    let empty = Vec::new();
    for t in tables {
        let l: BTreeSet<&String> = left.get(t).unwrap_or(&empty).iter().collect();
        let r: BTreeSet<&String> = right.get(t).unwrap_or(&empty).iter().collect();
        if left.contains_key(t) != right.contains_key(t) {
            out += &format!(
                "{t}: table only in {}\n",
                if left.contains_key(t) { lname } else { rname }
            );
        }
        let lo: Vec<_> = l.difference(&r).collect();
        let ro: Vec<_> = r.difference(&l).collect();
        let ln = left.get(t).map_or(0, |v| v.len());
        let rn = right.get(t).map_or(0, |v| v.len());
        if lo.is_empty() && ro.is_empty() && ln == rn {
            continue;
        }
        out += &format!(
            "{t}: {ln} rows in {lname}, {rn} in {rname}; {} only in {lname}, {} only in {rname}\n",
            lo.len(),
            ro.len()
        );
        for row in lo.iter().take(20) {
            out += &format!("  - {lname}: {row}\n");
        }
        for row in ro.iter().take(20) {
            out += &format!("  + {rname}: {row}\n");
        }
    }
    out
}

/// A partition's family: `public.payment_p2022_07` → `public.payment`.
fn family(table: &str) -> String {
    let t = table.trim_matches('"');
    match t.rfind("_p20") {
        Some(i)
            if t[i + 2..]
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == '_') =>
        {
            t[..i].to_string()
        }
        _ => t.to_string(),
    }
}

/// The key that names a row of a family: `<table>_id` (Pagila's convention)
/// when the row has it, else the whole row.
fn row_keys(c: &mut Client, table: &str) -> BTreeMap<String, String> {
    let fam = family(table);
    let col = format!("{}_id", fam.rsplit('.').next().unwrap());
    c.query(
        &format!("SELECT coalesce(to_jsonb(t) ->> $1, t::text), to_jsonb(t)::text FROM {table} t"),
        &[&col],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn delete_client_equals_a_cascading_delete() {
    for &x in &setup().customers {
        let (_, expected) = oracle(x);
        let mut c = copy("e2e_pagila_delete", true);
        let done = c
            .query(
                "SELECT tbl::text, operation, rows FROM forget.delete_client($1::bigint)",
                &[&(x as i64)],
            )
            .unwrap_or_else(|e| panic!("delete_client({x}): {e:?}"));
        let report: Vec<String> = done
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, i64>(2)
                )
            })
            .collect();
        let actual = snapshot(&mut c, "public");
        let d = diff(&expected, &actual, "oracle", "pg_forget");
        assert!(
            d.is_empty(),
            "customer {x}: after delete_client, public differs from the cascading delete:\n{d}\nreport:\n{}",
            report.join("\n")
        );
        assert!(audit_is_intact(&mut c));
    }
}

#[test]
fn export_client_lists_exactly_the_rows_a_cascading_delete_removes() {
    let mut c = copy("e2e_pagila_export", true);
    let untouched = snapshot(&mut c, "public");
    for &x in &setup().customers {
        // The oracle's deleted rows, per family, keyed.
        let mut expected: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        {
            let mut o = connect(ORACLE);
            o.batch_execute("BEGIN").unwrap();
            let tables: Vec<String> = o
                .query(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let before: Vec<_> = tables
                .iter()
                .map(|t| (t.clone(), row_keys(&mut o, t)))
                .collect();
            o.execute("DELETE FROM public.customer WHERE customer_id = $1", &[&x])
                .unwrap();
            for (t, rows) in before {
                let after = row_keys(&mut o, &t);
                for (k, row) in rows {
                    if !after.contains_key(&k) {
                        expected.entry(family(&t)).or_default().insert(k, row);
                    }
                }
            }
            o.batch_execute("ROLLBACK").unwrap();
        }
        assert!(
            expected.get("public.payment").map_or(0, |m| m.len()) > 1,
            "customer {x} has payments"
        );

        // The export, per family, keyed the same way.
        let exported = c
            .query(
                "SELECT e.key, coalesce(r ->> (regexp_replace(split_part(e.key, '.', 2), '_p\\d{4}_\\d{2}$', '') || '_id'), r::text), r::text \
                 FROM jsonb_each(forget.export_client($1::bigint) -> 'data') e, jsonb_array_elements(e.value) r",
                &[&(x as i64)],
            )
            .unwrap_or_else(|e| panic!("export_client({x}): {e:?}"));
        let mut actual: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in &exported {
            let t: String = r.get(0);
            actual
                .entry(family(&t))
                .or_default()
                .insert(r.get(1), r.get(2));
        }
        let keys =
            |m: &BTreeMap<String, BTreeMap<String, String>>| -> BTreeMap<String, BTreeSet<String>> {
                m.iter()
                    .map(|(f, rows)| (f.clone(), rows.keys().cloned().collect()))
                    .collect()
            };
        let (ek, ak) = (keys(&expected), keys(&actual));
        if ek != ak {
            let mut msg = String::new();
            for f in ek.keys().chain(ak.keys()).collect::<BTreeSet<_>>() {
                let e = ek.get(f).cloned().unwrap_or_default();
                let a = ak.get(f).cloned().unwrap_or_default();
                let missing: Vec<_> = e.difference(&a).collect();
                let extra: Vec<_> = a.difference(&e).collect();
                if !missing.is_empty() || !extra.is_empty() {
                    msg += &format!(
                        "{f}: not exported {missing:?}; exported but not deleted {extra:?}\n"
                    );
                }
            }
            panic!("customer {x}: export_client differs from the cascading delete:\n{msg}");
        }
        // Whole rows as well: to_jsonb of the row the oracle deleted.
        assert_eq!(actual, expected, "customer {x}: exported row contents");
    }
    let d = diff(&untouched, &snapshot(&mut c, "public"), "before", "after");
    assert!(d.is_empty(), "export changed data:\n{d}");
}

#[test]
fn delete_with_grace_then_restore_gives_back_every_byte() {
    let mut c = copy("e2e_pagila_restore", true);
    for &x in &setup().customers {
        let (_, expected) = oracle(x);
        let before = snapshot(&mut c, "public");
        c.query(
            "SELECT * FROM forget.delete_client($1::bigint, grace => '1 day')",
            &[&(x as i64)],
        )
        .unwrap_or_else(|e| panic!("delete_client({x}, grace): {e:?}"));
        let during = snapshot(&mut c, "public");
        let d = diff(&expected, &during, "oracle", "pg_forget");
        assert!(
            d.is_empty(),
            "customer {x}: during the recovery window, public differs from the cascading delete:\n{d}"
        );
        c.query(
            "SELECT * FROM forget.restore_client($1::bigint)",
            &[&(x as i64)],
        )
        .unwrap_or_else(|e| panic!("restore_client({x}): {e:?}"));
        let after = snapshot(&mut c, "public");
        let d = diff(&before, &after, "before", "restored");
        assert!(
            d.is_empty(),
            "customer {x}: restore did not give back every row:\n{d}"
        );
    }
    assert!(audit_is_intact(&mut c));
}

#[test]
fn anonymize_changes_the_customer_row_only() {
    let mut c = copy("e2e_pagila_anonymize", true);
    c.batch_execute(
        "SELECT forget.mask('public.customer', 'first_name', $$'Anon'$$); \
         SELECT forget.mask('public.customer', 'last_name', $$'Anon'$$); \
         SELECT forget.mask('public.customer', 'email', 'forget.random_email()');",
    )
    .unwrap();
    let kept_columns = "customer_id, store_id, address_id, create_date, active";
    for &x in &setup().customers {
        let mut before = snapshot(&mut c, "public");
        let kept_before = c
            .query_one(
                &format!(
                    "SELECT ({kept_columns})::text FROM public.customer WHERE customer_id = $1"
                ),
                &[&x],
            )
            .unwrap()
            .get::<_, String>(0);
        c.query(
            "SELECT * FROM forget.anonymize_client($1::bigint)",
            &[&(x as i64)],
        )
        .unwrap_or_else(|e| panic!("anonymize_client({x}): {e:?}"));
        let mut after = snapshot(&mut c, "public");
        // Customer x's row is checked below; every other row of every table
        // is unchanged.
        let prefix = format!("({x},");
        for s in [&mut before, &mut after] {
            s.get_mut("public.customer")
                .unwrap()
                .retain(|r| !r.starts_with(&prefix));
        }
        let d = diff(&before, &after, "before", "after");
        assert!(
            d.is_empty(),
            "customer {x}: anonymize changed other rows:\n{d}"
        );
        let r = c
            .query_one(
                &format!(
                    "SELECT first_name, last_name, email, activebool, ({kept_columns})::text \
                     FROM public.customer WHERE customer_id = $1"
                ),
                &[&x],
            )
            .unwrap();
        assert_eq!(r.get::<_, String>(0), "Anon", "customer {x}: first_name");
        assert_eq!(r.get::<_, String>(1), "Anon", "customer {x}: last_name");
        let email: Option<String> = r.get(2);
        assert!(
            email
                .as_deref()
                .is_some_and(|e| e.ends_with("@anonymized.invalid")),
            "customer {x}: email {email:?}"
        );
        assert!(
            !r.get::<_, bool>(3),
            "customer {x}: activebool is the active column"
        );
        assert_eq!(
            r.get::<_, String>(4),
            kept_before,
            "customer {x}: unmasked columns"
        );
    }
    assert!(audit_is_intact(&mut c));
}

#[test]
fn check_names_the_partition_without_foreign_keys() {
    let mut c = copy("e2e_pagila_check", false);
    let rows: Vec<(String, String, String, String)> = c
        .query(
            "SELECT severity, object, problem, hint FROM forget.check()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, Option<String>>(0).unwrap_or_default(),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
                r.get::<_, Option<String>>(2).unwrap_or_default(),
                r.get::<_, Option<String>>(3).unwrap_or_default(),
            )
        })
        .collect();
    let about: Vec<_> = rows
        .iter()
        .filter(|r| r.1.contains("payment_p2022_07") || r.2.contains("payment_p2022_07"))
        .collect();
    assert!(
        about.iter().any(|r| r.3.contains("forget.add_link")),
        "check() names payment_p2022_07 with a forget.add_link hint; its rows:\n{}",
        rows.iter()
            .map(|r| format!("{} | {} | {} | {}", r.0, r.1, r.2, r.3))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every hint is a statement that works when run; once run, the
    // partition is covered.
    for r in about.iter().filter(|r| r.3.contains("forget.add_link")) {
        c.batch_execute(&r.3)
            .unwrap_or_else(|e| panic!("hint {:?} fails: {e:?}", r.3));
    }
    let left = count(
        &mut c,
        "SELECT * FROM forget.check() WHERE (object ~ 'payment_p2022_07' OR problem ~ 'payment_p2022_07') AND hint ~ 'forget.add_link'",
    );
    assert_eq!(
        left, 0,
        "after running the hints, check() still names payment_p2022_07"
    );
}
