//! Shared helpers: a fresh database per test on the cluster the test command
//! started (PGFORGET_PORT), examples loaded with psql, SQLSTATE assertions.
#![allow(dead_code)]

use postgres::{Client, NoTls};
use std::path::PathBuf;
use std::process::Command;

pub fn port() -> String {
    std::env::var("PGFORGET_PORT").unwrap_or_else(|_| "55432".into())
}

pub fn url(db: &str, user: &str) -> String {
    format!("host=127.0.0.1 port={} user={user} dbname={db}", port())
}

pub fn connect(db: &str) -> Client {
    Client::connect(&url(db, "postgres"), NoTls).expect("connect to the test cluster")
}

pub fn connect_as(db: &str, user: &str) -> Client {
    Client::connect(&url(db, user), NoTls).expect("connect as role")
}

/// Drops and creates database `name`, empty.
pub fn empty_db(name: &str) {
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
}

/// Drops and creates database `name` with pg_forget installed.
pub fn fresh_db(name: &str) -> Client {
    empty_db(name);
    let mut c = connect(name);
    c.batch_execute("CREATE EXTENSION pg_forget").unwrap();
    c
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// psql on database `db` of the test cluster, stopping at the first error.
pub fn psql_cmd(db: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port(),
        "-U",
        "postgres",
        "-d",
        db,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
    ]);
    cmd
}

/// The first column of every row of `sql`, as text.
pub fn texts(c: &mut Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Runs a file of the repository with psql (examples use psql variables).
pub fn psql_file(db: &str, file: &str, vars: &[(&str, &str)]) {
    let mut cmd = psql_cmd(db);
    for (k, v) in vars {
        cmd.args(["-v", &format!("{k}={v}")]);
    }
    let out = cmd
        .arg("-f")
        .arg(repo_root().join(file))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql -f {file} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database with the billing example loaded and configured.
pub fn billing_db(name: &str) -> Client {
    let c = fresh_db(name);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(name, &format!("examples/billing/{f}"), &[("clients", "20")]);
    }
    c
}

/// Drops database `db` (whatever is connected to it) and then `roles`,
/// which a test created for itself.
pub fn drop_db_and_roles(db: &str, roles: &[&str]) {
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .unwrap();
    for role in roles {
        admin.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(result: Result<impl Sized, postgres::Error>) -> String {
    match result {
        Ok(_) => "00000 (no error)".into(),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("no SQLSTATE: {e}")),
    }
}

/// The server's fields of a failed statement (CONSTRAINT, DETAIL, HINT…).
pub fn db_error(result: Result<impl Sized, postgres::Error>) -> postgres::error::DbError {
    match result {
        Ok(_) => panic!("the statement succeeded"),
        Err(e) => e
            .as_db_error()
            .cloned()
            .unwrap_or_else(|| panic!("no server error: {e}")),
    }
}

/// The message of a failed statement.
pub fn message(result: Result<impl Sized, postgres::Error>) -> String {
    match result {
        Ok(_) => String::new(),
        Err(e) => e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

/// forget.verify_audit(): the hash chain is intact.
pub fn audit_is_intact(c: &mut Client) -> bool {
    c.query_one("SELECT forget.verify_audit()", &[])
        .unwrap()
        .get::<_, bool>(0)
}

pub fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM ({sql}) q"), &[])
        .unwrap()
        .get(0)
}

/// Every row of every table in `schema`, as text, sorted: a snapshot to
/// compare byte for byte.
pub fn snapshot(c: &mut Client, schema: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = c
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let rows = c
                .query(&format!("SELECT (t.*)::text FROM {t} t ORDER BY 1"), &[])
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect();
            (t, rows)
        })
        .collect()
}
