//! Soft deletion with a recovery window (SPEC.md problem 3).

mod common;
use common::*;

fn market_db(name: &str) -> postgres::Client {
    let c = fresh_db(name);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(name, &format!("examples/marketplace/{f}"), &[]);
    }
    c
}

#[test]
fn a_restore_after_a_delete_puts_every_row_and_reference_back() {
    let mut c = market_db("e2e_recovery_delete");
    let before = snapshot(&mut c, "market");
    let done = c.query("SELECT tbl::text, operation, rows FROM forget.delete_client(5, reason => 'user request', actor => 'user:5', grace => '30 days')", &[]).unwrap();
    assert!(
        done.iter()
            .any(|r| r.get::<_, String>(1) == "nullify" && r.get::<_, i64>(2) > 0),
        "other users' rows pointed at 5"
    );
    assert_ne!(snapshot(&mut c, "market"), before);
    let record = c.query_one("SELECT identity->>'email', reason, initiated_by, state, retention_until > now() + interval '29 days' FROM forget.deleted_clients", &[]).unwrap();
    assert_eq!(record.get::<_, String>(0), "user5@example.com");
    assert_eq!(record.get::<_, String>(1), "user request");
    assert_eq!(record.get::<_, String>(2), "user:5");
    assert_eq!(record.get::<_, String>(3), "retained");
    assert!(record.get::<_, bool>(4));
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.delete_client(5)", &[])),
        "P0002",
        "one deletion per account"
    );
    c.query(
        "SELECT * FROM forget.restore_client(5, actor => 'support')",
        &[],
    )
    .unwrap();
    assert_eq!(
        snapshot(&mut c, "market"),
        before,
        "byte for byte what it was"
    );
    assert_eq!(count(&mut c, "SELECT * FROM forget.undo"), 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE state = 'restored' AND identity IS NULL"
        ),
        1
    );
    let actions: Vec<String> = c
        .query("SELECT action FROM forget.audit ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, vec!["delete", "restore"]);
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.restore_client(5)", &[])),
        "P0002",
        "nothing left to restore"
    );
}

#[test]
fn a_restore_after_an_anonymization_brings_the_values_back() {
    let mut c = market_db("e2e_recovery_anonymize");
    let before = snapshot(&mut c, "market");
    c.batch_execute("SET forget.grace_period = '30 days'")
        .unwrap();
    c.query("SELECT * FROM forget.anonymize_client(7)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM market.users WHERE id = 7 AND username = 'deleted_user_7' AND NOT is_active"), 1);
    c.query("SELECT * FROM forget.restore_client(7)", &[])
        .unwrap();
    assert_eq!(snapshot(&mut c, "market"), before);
}

#[test]
fn a_conflicting_restore_fails_naming_the_conflict_and_changes_nothing() {
    let mut c = market_db("e2e_recovery_conflict");
    c.query(
        "SELECT * FROM forget.delete_client(9, grace => '30 days')",
        &[],
    )
    .unwrap();
    c.batch_execute(
        "INSERT INTO market.users (username, email) VALUES ('newcomer', 'user9@example.com')",
    )
    .unwrap();
    let before = snapshot(&mut c, "market");
    let result = c.query("SELECT * FROM forget.restore_client(9)", &[]);
    let msg = result
        .as_ref()
        .err()
        .and_then(|e| e.as_db_error())
        .map(|d| format!("{} {}", d.message(), d.detail().unwrap_or("")))
        .unwrap_or_default();
    assert_eq!(sqlstate(result), "23505");
    assert!(
        msg.contains("users_email_key") && msg.contains("user9@example.com"),
        "{msg}"
    );
    assert_eq!(snapshot(&mut c, "market"), before);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.deleted_clients WHERE state = 'retained'"
        ),
        1,
        "still restorable once the conflict is gone"
    );
    c.batch_execute("DELETE FROM market.users WHERE username = 'newcomer'")
        .unwrap();
    c.query("SELECT * FROM forget.restore_client(9)", &[])
        .unwrap();
    assert_eq!(count(&mut c, "SELECT * FROM market.users WHERE id = 9"), 1);
}

#[test]
fn after_the_window_restore_fails_and_purge_leaves_no_personal_data() {
    let mut c = market_db("e2e_recovery_expired");
    c.query(
        "SELECT * FROM forget.delete_client(11, grace => '1 second')",
        &[],
    )
    .unwrap();
    c.query(
        "SELECT * FROM forget.delete_client(12, grace => '1 hour')",
        &[],
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let result = c.query("SELECT * FROM forget.restore_client(11)", &[]);
    assert!(
        message(c.query("SELECT * FROM forget.restore_client(11)", &[]))
            .contains("Recovery window has expired")
    );
    assert_eq!(sqlstate(result), "55000");
    let e = common::db_error(c.query("SELECT * FROM forget.restore_client(11)", &[]));
    assert_eq!(e.constraint(), Some("recovery_window"));
    let purged: i64 = c
        .query_one("SELECT forget.purge_expired()", &[])
        .unwrap()
        .get(0);
    assert_eq!(purged, 1, "only the expired one");
    let rec = c
        .query_one(
            "SELECT state, identity IS NULL FROM forget.deleted_clients WHERE original_key = '11'",
            &[],
        )
        .unwrap();
    assert_eq!(rec.get::<_, String>(0), "purged");
    assert!(rec.get::<_, bool>(1));
    assert_eq!(count(&mut c, "SELECT * FROM forget.undo u JOIN forget.deleted_clients d ON d.id = u.deletion_id WHERE d.original_key = '11'"), 0);
    let leftovers = c.query_one("SELECT count(*) FROM forget.deleted_clients d WHERE d.original_key = '11' AND (d::text LIKE '%user11%')", &[]).unwrap();
    assert_eq!(
        leftovers.get::<_, i64>(0),
        0,
        "no personal data left in the record"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.restore_client(11)", &[])),
        "55000"
    );
    assert_eq!(
        count(&mut c, "SELECT * FROM forget.audit WHERE action = 'purge'"),
        1
    );
    assert_eq!(
        c.query_one("SELECT forget.purge_expired()", &[])
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    c.query("SELECT * FROM forget.restore_client(12)", &[])
        .unwrap();
}

#[test]
fn undo_data_is_readable_by_nobody_but_the_owner() {
    let mut c = market_db("e2e_recovery_privileges");
    c.batch_execute(
        "DROP ROLE IF EXISTS forget_reader; CREATE ROLE forget_reader LOGIN;
         GRANT USAGE ON SCHEMA market TO forget_reader; GRANT SELECT ON ALL TABLES IN SCHEMA market TO forget_reader;",
    )
    .unwrap();
    c.query(
        "SELECT * FROM forget.delete_client(13, grace => '30 days')",
        &[],
    )
    .unwrap();
    let mut reader = connect_as("e2e_recovery_privileges", "forget_reader");
    assert_eq!(
        sqlstate(reader.query("SELECT * FROM forget.undo", &[])),
        "42501"
    );
    assert_eq!(
        sqlstate(reader.query("SELECT * FROM forget.deleted_clients", &[])),
        "42501"
    );
    assert_eq!(
        sqlstate(reader.query("SELECT * FROM forget.restore_client(13)", &[])),
        "42501"
    );
    drop((reader, c));
    let mut admin = connect("postgres");
    admin
        .batch_execute("DROP DATABASE e2e_recovery_privileges WITH (FORCE)")
        .unwrap();
    admin.batch_execute("DROP ROLE forget_reader").unwrap();
}
