//! Issue 19: read-only work is read-only. Every read-only function assigns
//! no transaction id on the primary and works on a hot standby (a real
//! streaming replica, started by the test command with pg_basebackup -R).

mod common;
use common::*;
use postgres::{Client, NoTls};
use std::time::{Duration, Instant};

/// The read-only calls of SPEC.md, on the billing example.
const READ_ONLY: &[&str] = &[
    "SELECT * FROM forget.eligibility(2)",
    "SELECT * FROM forget.eligibility(2, 'anonymize')",
    "SELECT forget.export_client(2)",
    "SELECT * FROM forget.graph()",
    "SELECT * FROM forget.check()",
    "SELECT * FROM forget.delete_client(2, dry_run => true)",
    "SELECT * FROM forget.anonymize_client(2, dry_run => true)",
    "SELECT * FROM forget.people_cleanup(dry_run => true)",
    "SELECT * FROM forget.account_status(2)",
    "SELECT forget.last_activity(2)",
    "SELECT forget.verify_audit()",
    "SELECT forget.erasure_log()",
];

/// A connection to the replica, once it has replayed the database's
/// creation; None when no replica was started.
fn replica(db: &str) -> Option<Result<Client, postgres::Error>> {
    let port = std::env::var("PGFORGET_REPLICA_PORT").ok()?;
    let url = format!("host=127.0.0.1 port={port} user=postgres dbname={db}");
    Some(Client::connect(&url, NoTls))
}

#[test]
fn read_only_calls_assign_no_transaction_id() {
    let mut c = billing_db("e2e_standby_xid");
    c.batch_execute(
        "SELECT forget.add_cleanup_condition('none', 's.id < 0');
         SELECT forget.set_cleanup(true);
         SELECT * FROM forget.delete_client(5);",
    )
    .unwrap();
    for sql in READ_ONLY {
        c.batch_execute("BEGIN").unwrap();
        c.query(*sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        let xid: Option<String> = c
            .query_one("SELECT txid_current_if_assigned()::text", &[])
            .unwrap()
            .get(0);
        c.batch_execute("ROLLBACK").unwrap();
        assert_eq!(xid, None, "{sql} assigned a transaction id");
        // And in a READ ONLY transaction.
        c.batch_execute("BEGIN READ ONLY").unwrap();
        c.query(*sql, &[])
            .unwrap_or_else(|e| panic!("{sql} (read only): {e:?}"));
        c.batch_execute("ROLLBACK").unwrap();
    }
    // check() in a read-only transaction reports no valid mask as broken.
    c.batch_execute("BEGIN READ ONLY").unwrap();
    let broken = count(
        &mut c,
        "SELECT * FROM forget.check() WHERE problem LIKE 'cannot work%'",
    );
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(broken, 0);
}

#[test]
fn read_only_calls_work_on_a_hot_standby() {
    let db = "e2e_standby_replica";
    let mut c = billing_db(db);
    c.batch_execute(
        "SELECT forget.add_cleanup_condition('none', 's.id < 0');
         SELECT forget.set_cleanup(true);
         SELECT * FROM forget.delete_client(5);
         SELECT forget.deactivate(3, 'admin', 'test');",
    )
    .unwrap();
    let Some(mut r) = ({
        // Wait for the replica to replay what the primary wrote.
        let lsn: String = c
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .unwrap()
            .get(0);
        let started = Instant::now();
        loop {
            match replica(db) {
                None => break None,
                Some(Err(_)) => {}
                Some(Ok(mut r)) => {
                    let caught_up: bool = r
                        .query_one(
                            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                            &[&lsn],
                        )
                        .unwrap()
                        .get(0);
                    if caught_up {
                        break Some(r);
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the replica never caught up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }) else {
        panic!("PGFORGET_REPLICA_PORT is not set: scripts/test.sh starts the replica");
    };
    let in_recovery: bool = r
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(in_recovery);
    for sql in READ_ONLY {
        r.query(*sql, &[])
            .unwrap_or_else(|e| panic!("{sql} on the standby: {e:?}"));
    }
    let status: bool = r
        .query_one("SELECT active FROM forget.account_status(3)", &[])
        .unwrap()
        .get(0);
    assert!(!status, "the standby sees the deactivation");
    assert!(audit_is_intact(&mut r));
}

#[test]
fn temporary_objects_elsewhere_keep_cached_plans() {
    let db = "e2e_standby_temp_ddl";
    let mut c = billing_db(db);
    let version = |c: &mut Client| -> i64 {
        c.query_one("SELECT last_value FROM forget.config_version", &[])
            .unwrap()
            .get(0)
    };
    c.query("SELECT * FROM forget.account_status(2)", &[])
        .unwrap();
    let before = version(&mut c);
    let mut other = connect(db);
    for i in 0..10 {
        other
            .batch_execute(&format!(
                "CREATE TEMP TABLE scratch_{i} (id int); CREATE INDEX ON scratch_{i} (id);"
            ))
            .unwrap();
    }
    assert_eq!(
        version(&mut c),
        before,
        "temporary tables leave cached plans"
    );
    other
        .batch_execute("CREATE TABLE public.real_table (id int)")
        .unwrap();
    assert!(version(&mut c) > before, "a real table may change a graph");
    let after = version(&mut c);
    other.batch_execute("DROP TABLE public.real_table").unwrap();
    assert!(version(&mut c) > after, "so may a drop");
}

#[test]
fn no_statement_of_the_extension_is_jit_compiled() {
    let mut c = billing_db("e2e_standby_jit");
    c.batch_execute(
        "CREATE TABLE billing.jit_seen (what text, jit text);
         CREATE FUNCTION billing.note_jit(what text) RETURNS boolean LANGUAGE sql VOLATILE AS
             $$ INSERT INTO billing.jit_seen VALUES (what, current_setting('jit')) RETURNING true $$;
         SELECT forget.add_link('billing.notes', 'client_id', 'billing.clients', condition => $$billing.note_jit('link')$$);
         SET jit = on; SET jit_above_cost = 0;",
    )
    .unwrap();
    c.query("SELECT forget.export_client(3)", &[]).unwrap();
    c.query("SELECT * FROM forget.delete_client(4)", &[])
        .unwrap();
    let seen: Vec<String> = c
        .query("SELECT DISTINCT jit FROM billing.jit_seen", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seen, vec!["off".to_string()]);
    let after: String = c
        .query_one("SELECT current_setting('jit')", &[])
        .unwrap()
        .get(0);
    assert_eq!(after, "on", "the caller's setting is back");
}
