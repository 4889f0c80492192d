//! Races between real concurrent connections (SPEC.md "Races").

mod common;
use common::*;
use postgres::Client;
use std::thread;
use std::time::Duration;

/// Waits until some backend of `db` is blocked on a lock.
fn wait_for_lock_wait(db: &str) {
    let mut c = connect(db);
    for _ in 0..200 {
        let waiting = count(
            &mut c,
            &format!("SELECT 1 FROM pg_stat_activity WHERE datname = '{db}' AND wait_event_type = 'Lock'"),
        );
        if waiting > 0 {
            return;
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("no backend ever waited for a lock");
}

#[test]
fn an_invoice_inserted_first_blocks_the_delete() {
    let db = "e2e_race_insert_first";
    let mut setup = billing_db(db);
    let mut inserter = connect(db);
    inserter.batch_execute("BEGIN; INSERT INTO billing.invoices (client_id, status, total) VALUES (5, 'Unpaid', 1)").unwrap();
    let deleter = thread::spawn(move || {
        let mut c = connect(db);
        sqlstate(c.query("SELECT * FROM forget.delete_client(5)", &[]))
    });
    wait_for_lock_wait(db);
    inserter.batch_execute("COMMIT").unwrap();
    assert_eq!(
        deleter.join().unwrap(),
        "55000",
        "the committed invoice is seen by the rules"
    );
    assert_eq!(
        count(&mut setup, "SELECT * FROM billing.clients WHERE id = 5"),
        1
    );
}

#[test]
fn an_invoice_inserted_during_the_delete_fails_and_nothing_is_orphaned() {
    let db = "e2e_race_delete_first";
    let mut setup = billing_db(db);
    let mut deleter = connect(db);
    deleter
        .batch_execute("BEGIN; SELECT * FROM forget.delete_client(6)")
        .unwrap();
    let inserter = thread::spawn(move || {
        let mut c = connect(db);
        sqlstate(c.execute(
            "INSERT INTO billing.invoices (client_id, status, total) VALUES (6, 'Unpaid', 1)",
            &[],
        ))
    });
    wait_for_lock_wait(db);
    deleter.batch_execute("COMMIT").unwrap();
    assert_eq!(
        inserter.join().unwrap(),
        "23503",
        "the late insert fails on the foreign key"
    );
    assert_eq!(
        count(
            &mut setup,
            "SELECT * FROM billing.invoices WHERE client_id = 6"
        ),
        0
    );
    assert_eq!(count(&mut setup, "SELECT * FROM billing.invoices i WHERE NOT EXISTS (SELECT 1 FROM billing.clients c WHERE c.id = i.client_id)"), 0);
}

#[test]
fn two_deletes_of_one_client_one_wins_the_other_finds_nothing() {
    let db = "e2e_race_two_deletes";
    let mut setup = billing_db(db);
    let mut first = connect(db);
    first
        .batch_execute("BEGIN; SELECT * FROM forget.delete_client(7)")
        .unwrap();
    let second = thread::spawn(move || {
        let mut c = connect(db);
        sqlstate(c.query("SELECT * FROM forget.delete_client(7)", &[]))
    });
    wait_for_lock_wait(db);
    first.batch_execute("COMMIT").unwrap();
    assert_eq!(second.join().unwrap(), "P0002");
    assert_eq!(
        count(
            &mut setup,
            "SELECT * FROM forget.audit WHERE subject_key = '7'"
        ),
        1
    );
    assert!(audit_is_intact(&mut setup));
}

#[test]
fn concurrent_deletes_of_different_clients_keep_the_audit_chain_valid() {
    let db = "e2e_race_audit_chain";
    let mut setup = billing_db(db);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            thread::spawn(move || {
                let mut c = connect(db);
                for k in (2..20).filter(|k| k % 4 == w) {
                    c.query(
                        "SELECT * FROM forget.delete_client($1::bigint)",
                        &[&(k as i64)],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(count(&mut setup, "SELECT * FROM forget.audit"), 18);
    assert!(audit_is_intact(&mut setup));
}

/// Every new backend checks once, at its first audit write, that the id
/// sequence is past the rows a restored dump brought. That check must never
/// move the sequence back under a concurrent writer: with many backends
/// making their first write at the same moment, no id is handed out twice.
#[test]
fn first_writes_of_many_new_backends_at_once_never_reuse_an_audit_id() {
    let db = "e2e_race_first_writes";
    let mut setup = fresh_db(db);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(db, &format!("examples/billing/{f}"), &[("clients", "330")]);
    }
    let (threads, rounds) = (16usize, 20usize);
    let start = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let start = start.clone();
            thread::spawn(move || {
                let mut failures = Vec::new();
                for r in 0..rounds {
                    let mut c = connect(db);
                    start.wait();
                    let key = (2 + r * threads + w) as i64;
                    if let Err(e) =
                        c.query("SELECT * FROM forget.delete_client($1::bigint)", &[&key])
                    {
                        failures.push(format!("client {key}: {e:?}"));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(
        count(&mut setup, "SELECT * FROM forget.audit"),
        (threads * rounds) as i64
    );
    assert!(audit_is_intact(&mut setup));
}

/// The deterministic half of the test above: a new backend's first write
/// takes one id and leaves the sequence alone otherwise. A setval there (what
/// 0.2.0 first did whenever the newest row had the sequence's last id) is what
/// a concurrent writer's nextval can slip under; it shows as log_cnt starting
/// again from 32 instead of counting down by one.
#[test]
fn a_new_backends_first_write_takes_one_id_and_never_resets_the_sequence() {
    let db = "e2e_race_first_write_seq";
    let mut setup = billing_db(db);
    let sequence = |c: &mut Client| -> (i64, i64, String) {
        let r = c
            .query_one(
                "SELECT last_value, log_cnt, (pg_control_checkpoint()).redo_lsn::text FROM forget.audit_id_seq",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let mut writer = connect(db);
    // A checkpoint in between (other tests drop databases) also makes the
    // next nextval log anew; such a round is repeated with the next client.
    for key in (2..20i64).step_by(2) {
        writer
            .query("SELECT * FROM forget.delete_client($1::bigint)", &[&key])
            .unwrap();
        let before = sequence(&mut setup);
        connect(db)
            .query(
                "SELECT * FROM forget.delete_client($1::bigint)",
                &[&(key + 1)],
            )
            .unwrap();
        let after = sequence(&mut setup);
        if after.2 == before.2 {
            assert_eq!((after.0, after.1), (before.0 + 1, before.1 - 1));
            return;
        }
    }
    panic!("a checkpoint came between every write");
}

/// Issue 19: an open transaction that ran an action stalls no action on
/// another subject; the audit chain is extended when each commits.
#[test]
fn an_open_transaction_that_ran_an_action_blocks_no_other_subject() {
    let db = "e2e_races_open";
    let mut c = billing_db(db);
    let mut open = connect(db);
    open.batch_execute("BEGIN; SELECT forget.deactivate(1, 'admin', 'held open');")
        .unwrap();
    let mut other = connect(db);
    other.batch_execute("SET statement_timeout = '5s'").unwrap();
    for sql in [
        "SELECT * FROM forget.delete_client(2)",
        "SELECT forget.deactivate(3, 'admin', 'meanwhile')",
        "SELECT * FROM forget.anonymize_client(4)",
    ] {
        other
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql} waited for the open transaction: {e:?}"));
    }
    assert!(
        audit_is_intact(&mut other),
        "the committed rows are chained"
    );
    open.batch_execute("COMMIT").unwrap();
    assert!(
        audit_is_intact(&mut c),
        "and the late commit joins the chain"
    );
    // The chain follows commit order: the open transaction's row is last.
    let last: String = c
        .query_one(
            "SELECT subject_key FROM forget.audit ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(last, "1");
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.audit WHERE hash IS NULL"),
        0
    );
}

/// A REPEATABLE READ transaction whose snapshot predates another's commit
/// cannot link its rows after a chain end it does not see: its commit fails
/// with a serialization error (40001) and the chain stays one line, both
/// for an empty chain and for a chain with rows.
#[test]
fn a_stale_repeatable_read_commit_fails_instead_of_forking_the_chain() {
    let db = "e2e_races_repeatable_read";
    let mut c = billing_db(db);
    c.batch_execute("DELETE FROM forget.audit; DELETE FROM forget.audit_base")
        .unwrap();
    for (round, first, stale_key) in [("an empty chain", 6, 7), ("a chain with rows", 8, 9)] {
        let mut stale = connect(db);
        stale
            .batch_execute(
                "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM forget.audit;",
            )
            .unwrap();
        c.query(
            "SELECT forget.deactivate($1::bigint, 'admin', 'committed first')",
            &[&(first as i64)],
        )
        .unwrap();
        stale
            .query(
                "SELECT forget.deactivate($1::bigint, 'admin', 'stale')",
                &[&(stale_key as i64)],
            )
            .unwrap();
        assert_eq!(sqlstate(stale.batch_execute("COMMIT")), "40001", "{round}");
        assert!(audit_is_intact(&mut c), "{round}");
    }
    // Rows linked after the failures continue the same chain.
    c.query("SELECT forget.deactivate(7, 'admin', 'again')", &[])
        .unwrap();
    assert!(audit_is_intact(&mut c));
    assert_eq!(
        count(&mut c, "SELECT 1 FROM forget.audit WHERE seq IS NOT NULL"),
        3
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT 1 FROM forget.audit WHERE next_seq IS NULL AND seq IS NOT NULL"
        ),
        1,
        "one newest row"
    );
}

/// A child row updated by another transaction while a delete with a grace
/// period waits for it: the undo copy holds exactly what was deleted, in
/// the version deleted (the updated text), and not the row that moved to
/// another client meanwhile; restore_client puts back those rows and
/// conflicts with none.
#[test]
fn rows_updated_during_a_delete_with_grace_are_kept_as_deleted() {
    for leaves in [1usize, 9] {
        let db = format!("e2e_race_grace_update_{leaves}");
        let mut c = fresh_db(&db);
        let mut sql = String::from(
            "CREATE TABLE clients (id int PRIMARY KEY);
             INSERT INTO clients VALUES (1), (2);
             CREATE TABLE notes (id int PRIMARY KEY, client_id int NOT NULL REFERENCES clients, v text);
             INSERT INTO notes VALUES (1, 1, 'stay'), (2, 1, 'edit'), (3, 1, 'move');",
        );
        // More than 8 leaves: the one statement's path instead of a
        // statement per table.
        for t in 1..leaves {
            sql.push_str(&format!(
                "CREATE TABLE leaf{t} (client_id int REFERENCES clients); INSERT INTO leaf{t} VALUES (1);"
            ));
        }
        sql.push_str("SELECT forget.register_subject('client', 'clients');");
        c.batch_execute(&sql).unwrap();
        let mut writer = connect(&db);
        writer
            .batch_execute(
                "BEGIN; UPDATE notes SET client_id = 2, v = 'moved' WHERE id = 3;
                 UPDATE notes SET v = 'edited' WHERE id = 2;",
            )
            .unwrap();
        let name = db.clone();
        let deleter = thread::spawn(move || {
            let mut d = connect(&name);
            d.query(
                "SELECT tbl::text, rows FROM forget.delete_client(1, grace => '1 day') WHERE tbl = 'notes'::regclass",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get::<_, i64>(1)).sum::<i64>())
        });
        wait_for_lock_wait(&db);
        writer.batch_execute("COMMIT").unwrap();
        let deleted = deleter.join().unwrap();
        let notes = |c: &mut Client| {
            texts(
                c,
                "SELECT concat_ws(' ', id, client_id, v) FROM notes ORDER BY id",
            )
        };
        match (leaves, deleted) {
            (1, Ok(n)) => {
                assert_eq!(n, 2, "{leaves} leaves");
                assert_eq!(notes(&mut c), ["3 2 moved"], "{leaves} leaves");
                let kept = texts(
                    &mut c,
                    "SELECT row_data->>'v' FROM forget.undo WHERE tbl = 'notes'::regclass ORDER BY 1",
                );
                assert_eq!(kept, ["edited", "stay"], "{leaves} leaves");
                c.batch_execute("SELECT * FROM forget.restore_client(1)")
                    .unwrap();
                assert_eq!(
                    notes(&mut c),
                    ["1 1 stay", "2 1 edited", "3 2 moved"],
                    "{leaves} leaves"
                );
            }
            // The one statement deletes by address: a row updated meanwhile
            // is not deleted, and its foreign key fails the delete whole.
            (9, Err(e)) => {
                assert_eq!(sqlstate(Err::<(), _>(e)), "23503", "{leaves} leaves");
                assert_eq!(
                    notes(&mut c),
                    ["1 1 stay", "2 1 edited", "3 2 moved"],
                    "{leaves} leaves"
                );
                assert_eq!(count(&mut c, "SELECT * FROM forget.undo"), 0);
            }
            (_, other) => panic!("{leaves} leaves: {other:?}"),
        }
    }
}
