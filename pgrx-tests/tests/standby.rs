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
    "SELECT * FROM forget.cleanup_preview()",
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

/// DDL in another session that cannot change any graph keeps every
/// backend's cached plans (forget.config_version stays); DDL that may change
/// a graph, the trust in its objects or what declared SQL resolves to moves
/// it, each kind on its own.
#[test]
fn ddl_that_cannot_change_a_graph_keeps_cached_plans() {
    let db = "e2e_standby_unrelated_ddl";
    let mut c = billing_db(db);
    let version = |c: &mut Client| -> i64 {
        c.query_one("SELECT last_value FROM forget.config_version", &[])
            .unwrap()
            .get(0)
    };
    c.query("SELECT * FROM forget.account_status(2)", &[])
        .unwrap();
    let mut other = connect(db);
    let keeps: &[(&str, &str)] = &[
        (
            "temporary tables and their indexes",
            "CREATE TEMP TABLE scratch (id int); CREATE INDEX ON scratch (id); \
             ALTER TABLE scratch ADD COLUMN x int; DROP TABLE scratch",
        ),
        (
            "a table unrelated to every subject",
            "CREATE TABLE public.unrelated (id int PRIMARY KEY, note text)",
        ),
        (
            "altering it, indexing it",
            "ALTER TABLE public.unrelated ADD COLUMN extra int; CREATE INDEX ON public.unrelated (note); \
             ALTER TABLE public.unrelated OWNER TO postgres",
        ),
        (
            "a sequence, a type, a schema",
            "CREATE SEQUENCE public.counter; CREATE TYPE public.mood AS ENUM ('ok'); CREATE SCHEMA reports",
        ),
        (
            "a function and a view whose names nothing declared uses",
            "CREATE FUNCTION public.helper(int) RETURNS int LANGUAGE sql AS 'SELECT $1'; \
             CREATE VIEW reports.open_invoices AS SELECT id FROM billing.invoices",
        ),
        (
            "dropping them",
            "DROP VIEW reports.open_invoices; DROP FUNCTION public.helper(int); DROP INDEX public.unrelated_note_idx; \
             DROP SEQUENCE public.counter",
        ),
    ];
    for (what, sql) in keeps {
        let before = version(&mut c);
        other.batch_execute(sql).unwrap();
        assert_eq!(version(&mut c), before, "{what} keeps cached plans");
    }
    other
        .batch_execute("CREATE TABLE public.child_of_unrelated () INHERITS (public.unrelated)")
        .unwrap();
    let moves: &[(&str, &str)] = &[
        (
            "a table referencing a graph table",
            "CREATE TABLE public.client_tags (client_id bigint REFERENCES billing.clients, tag text)",
        ),
        (
            "a foreign key added to an unrelated table",
            "ALTER TABLE public.unrelated ADD COLUMN client_id bigint REFERENCES billing.clients",
        ),
        (
            "dropping that foreign key",
            "ALTER TABLE public.unrelated DROP CONSTRAINT unrelated_client_id_fkey",
        ),
        (
            "removing inheritance, named on the child",
            "ALTER TABLE public.child_of_unrelated NO INHERIT public.unrelated",
        ),
        (
            "a function named like one a mask calls (a look-alike)",
            "CREATE FUNCTION public.random_email() RETURNS text LANGUAGE sql AS $$SELECT 'x'$$",
        ),
        (
            "an index on a graph table",
            "CREATE INDEX ON billing.invoices (id, client_id)",
        ),
        ("a trigger", "CREATE FUNCTION public.t() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$; \
                       CREATE TRIGGER t BEFORE INSERT ON public.unrelated FOR EACH ROW EXECUTE FUNCTION public.t()"),
        ("dropping a table", "DROP TABLE public.child_of_unrelated"),
    ];
    for (what, sql) in moves {
        let before = version(&mut c);
        other.batch_execute(sql).unwrap();
        assert!(version(&mut c) > before, "{what} moves the version");
    }
    // The cached plans still serve: an action right after works.
    let status: bool = c
        .query_one("SELECT active FROM forget.account_status(2)", &[])
        .unwrap()
        .get(0);
    assert!(status);
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
