//! The example applications (examples/apps): the Python portal (psycopg 3)
//! and the Node.js portal (node-postgres) run their own test suites, with
//! their language's standard runner, against a real database: the billing
//! example with examples/apps/setup.sql, the applications connected as the
//! least-privileged role that file makes. scripts/setup.sh installs their
//! client libraries (examples/apps/python/.venv, examples/apps/node/node_modules).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The role the portal connects as, and the help desk's (setup.sql's defaults).
const APP_ROLE: &str = "billing_app";
const SUPPORT_ROLE: &str = "billing_support";

/// A suite that has not finished by then has hung (each of its waits is
/// bounded far below this).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// Roles belong to the cluster: the two databases' setup.sql runs must not
/// create them at the same moment.
static ROLE_SETUP: Mutex<()> = Mutex::new(());

fn apps_dir() -> PathBuf {
    repo_root().join("examples/apps")
}

/// A database with the billing example and examples/apps/setup.sql.
fn apps_db(name: &str) {
    drop(billing_db(name));
    let _one_at_a_time = ROLE_SETUP.lock().unwrap_or_else(|e| e.into_inner());
    psql_file(name, "examples/apps/setup.sql", &[]);
}

/// What a suite needs to reach the database: the application's role by the
/// libpq variables, the help desk's role, and a superuser for the fixtures
/// that prepare what no application can (a deactivated account, a
/// recovery window that has run out).
fn connection_env(cmd: &mut Command, db: &str) {
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", port())
        .env("PGDATABASE", db)
        .env("PGUSER", APP_ROLE)
        .env("FORGET_SUPPORT_USER", SUPPORT_ROLE)
        .env(
            "FORGET_ADMIN_DSN",
            format!("postgresql://postgres@127.0.0.1:{}/{db}", port()),
        )
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
}

/// Runs the suite to its end (killed after SUITE_TIMEOUT); its exit status
/// and everything it printed.
fn run_suite(mut cmd: Command, what: &str) -> (bool, String) {
    let log = std::env::temp_dir().join(format!(
        "pg_forget-apps-{}-{}.log",
        what.replace(' ', "-"),
        std::process::id()
    ));
    let out = std::fs::File::create(&log).expect("create the suite's log");
    let err = out.try_clone().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start the {what}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > SUITE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    match status {
        Some(status) => (status.success(), output),
        None => (
            false,
            format!("{output}\n(killed after {SUITE_TIMEOUT:?}: the {what} hung)"),
        ),
    }
}

/// The number after `prefix` on the suite's summary line (`Ran 17 tests`, `# pass 17`).
fn count_after(output: &str, prefix: &str) -> Option<usize> {
    output.lines().find_map(|line| {
        line.trim()
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

fn require(path: &Path, how: &str) {
    assert!(
        path.exists(),
        "{} is missing: {how} (bash scripts/setup.sh does it)",
        path.display()
    );
}

#[test]
fn python_portal_suite_passes_against_the_extension() {
    let db = "e2e_apps_python";
    apps_db(db);
    let dir = apps_dir().join("python");
    let python = dir.join(".venv/bin/python");
    require(
        &python,
        "python3 -m venv examples/apps/python/.venv && .venv/bin/pip install -r requirements.txt",
    );
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "unittest", "-v", "test_portal"])
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    connection_env(&mut cmd, db);
    let (ok, output) = run_suite(cmd, "Python suite");
    println!("{output}");
    assert!(ok, "the Python portal's unittest suite failed:\n{output}");
    let ran = count_after(&output, "Ran ").unwrap_or(0);
    assert!(ran >= 17, "the Python suite ran {ran} tests:\n{output}");
    assert!(
        !output.contains("skipped"),
        "no test may be skipped:\n{output}"
    );
}

#[test]
fn node_portal_suite_passes_against_the_extension() {
    let db = "e2e_apps_node";
    apps_db(db);
    let dir = apps_dir().join("node");
    require(
        &dir.join("node_modules/pg"),
        "cd examples/apps/node && npm ci",
    );
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap"])
        .current_dir(&dir);
    connection_env(&mut cmd, db);
    let (ok, output) = run_suite(cmd, "Node suite");
    println!("{output}");
    assert!(ok, "the Node portal's node --test suite failed:\n{output}");
    let passed = count_after(&output, "# pass ").unwrap_or(0);
    assert!(
        passed >= 17,
        "the Node suite passed {passed} tests:\n{output}"
    );
    assert_eq!(
        count_after(&output, "# fail "),
        Some(0),
        "no failure:\n{output}"
    );
    assert_eq!(
        count_after(&output, "# skipped "),
        Some(0),
        "no test may be skipped:\n{output}"
    );
}
