//! pg_forget: the lifecycle of personal data inside PostgreSQL.
//!
//! Data flows one way: catalog → graph → plan → render (SQL) → execute →
//! audit. `graph`, `plan` and `render` are pure Rust, tested without a
//! server; `catalog`, `execute` and `audit` talk to PostgreSQL through SPI;
//! `config` and `actions` hold the SQL-callable functions.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

mod actions;
mod audit;
mod binding;
mod cache;
mod catalog;
mod cleanup;
mod config;
mod deactivation;
mod doctor;
mod drop_guard;
mod errors;
mod execute;
mod graph;
mod identity;
mod invalidation;
mod memory;
mod model;
mod parse;
mod plan;
mod recovery;
mod render;
mod rules;
mod stream;
mod time;

/// Settings that are policy, not preference: only a superuser (or a role
/// given `GRANT SET ON PARAMETER`) may change them, so a role that may
/// delete cannot lengthen its own recovery window past
/// `forget.max_grace_period`, make a delete final by emptying
/// `forget.grace_period`, or send anonymized addresses to its own domain.
/// The others (`forget.batch_size`, `forget.cleanup_pause`, …) stay
/// placeholders anyone may set. Defined when the library loads in a
/// backend: no preload, no restart. Read with current_setting() like any.
type TextSetting = pgrx::GucSetting<Option<std::ffi::CString>>;
static GRACE_PERIOD: TextSetting = TextSetting::new(None);
static MAX_GRACE_PERIOD: TextSetting = TextSetting::new(None);
static ANONYMOUS_EMAIL_DOMAIN: TextSetting = TextSetting::new(None);
static ALLOW_DROP: TextSetting = TextSetting::new(None);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    use pgrx::{GucContext, GucFlags, GucRegistry};
    for (name, about, setting) in [
        (c"forget.grace_period", c"Default grace period of delete_client and anonymize_client (an interval; empty: none).", &GRACE_PERIOD),
        (c"forget.max_grace_period", c"Longest grace period a delete or anonymize may ask for (an interval; empty: no limit).", &MAX_GRACE_PERIOD),
        (c"forget.anonymous_email_domain", c"Domain of forget.random_email() (default anonymized.invalid).", &ANONYMOUS_EMAIL_DOMAIN),
        (c"forget.allow_drop", c"Lets DROP EXTENSION pg_forget destroy the audit and retained recovery records.", &ALLOW_DROP),
    ] {
        GucRegistry::define_string_guc(name, about, c"", setting, GucContext::Suset, GucFlags::default());
    }
    invalidation::register();
}

/// The schema of the internal helpers (`#[pg_extern(schema = "forget_internal")]`):
/// created first by sql/functions.sql, declared here so pgrx knows it.
#[pg_schema]
mod forget_internal {}

// Install order: trigger functions, the tables as 0.1.0 created them, each
// version's changes to them, the Rust functions, the public interface. An
// upgrade script is the same minus the tables and the changes already
// applied (scripts/upgrade-script.sh), so both end with the same schema.
extension_sql_file!(
    "../sql/functions.sql",
    name = "functions",
    requires = [forget_internal]
);
extension_sql_file!(
    "../sql/schema.sql",
    name = "schema",
    requires = ["functions"]
);
extension_sql_file!(
    "../sql/changes-0.2.0.sql",
    name = "changes_0_2_0",
    requires = ["schema"]
);
extension_sql_file!("../sql/api.sql", name = "api", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup_billing() {
        Spi::run(
            "CREATE TABLE clients (id bigint PRIMARY KEY, name text, email text UNIQUE, active boolean DEFAULT true);
             CREATE TABLE invoices (id bigint PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients, status text);
             CREATE TABLE lines (id bigint PRIMARY KEY, invoice_id bigint NOT NULL REFERENCES invoices ON DELETE CASCADE);
             CREATE TABLE notes (id bigint PRIMARY KEY, client_id bigint REFERENCES clients ON DELETE SET NULL);
             INSERT INTO clients VALUES (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com');
             INSERT INTO invoices VALUES (10, 1, 'paid'), (11, 1, 'open'), (20, 2, 'paid');
             INSERT INTO lines VALUES (100, 10), (101, 11), (200, 20);
             INSERT INTO notes VALUES (1000, 1), (2000, 2);
             SELECT forget.register_subject('client', 'clients', active_column => 'active');",
        )
        .unwrap();
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn the_graph_is_read_from_foreign_keys() {
        setup_billing();
        assert_eq!(count("SELECT count(*) FROM forget.graph()"), 4);
        assert_eq!(
            count("SELECT depth FROM forget.graph() WHERE tbl = 'lines'::regclass"),
            2
        );
        let on_delete = Spi::get_one::<String>(
            "SELECT on_delete FROM forget.graph() WHERE tbl = 'notes'::regclass",
        );
        assert_eq!(on_delete.unwrap().unwrap(), "nullify");
    }

    #[pg_test]
    fn delete_client_removes_the_subjects_rows_only() {
        setup_billing();
        Spi::run("SELECT * FROM forget.delete_client(1)").unwrap();
        assert_eq!(count("SELECT count(*) FROM clients"), 1);
        assert_eq!(count("SELECT count(*) FROM invoices"), 1);
        assert_eq!(count("SELECT count(*) FROM lines"), 1);
        assert_eq!(
            count("SELECT count(*) FROM notes WHERE client_id IS NULL"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM forget.audit WHERE action = 'delete'"),
            1
        );
        assert!(Spi::get_one::<bool>("SELECT forget.verify_audit()")
            .unwrap()
            .unwrap());
    }

    #[pg_test]
    fn a_dry_run_reports_the_plan_and_changes_nothing() {
        setup_billing();
        let deleted = count("SELECT rows FROM forget.delete_client(1, dry_run => true) WHERE tbl = 'lines'::regclass");
        assert_eq!(deleted, 2);
        assert_eq!(count("SELECT count(*) FROM lines"), 3);
        assert_eq!(count("SELECT count(*) FROM forget.audit"), 0);
    }

    #[pg_test]
    fn rules_block_with_every_message() {
        setup_billing();
        Spi::run(
            "SELECT forget.add_rule('open_invoices', 'SELECT 1 FROM invoices WHERE client_id = $1 AND status = ''open''',
                                    'client has open invoices')",
        )
        .unwrap();
        let ok = Spi::get_one::<bool>("SELECT ok FROM forget.eligibility(1)")
            .unwrap()
            .unwrap();
        assert!(!ok);
        let ok2 = Spi::get_one::<bool>("SELECT ok FROM forget.eligibility(2)")
            .unwrap()
            .unwrap();
        assert!(ok2);
    }

    #[pg_test]
    fn the_action_statement_runs_without_jit() {
        setup_billing();
        // A mask that writes down the jit setting its statement runs with.
        Spi::run(
            "CREATE FUNCTION jit_seen() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_setting('jit') $$;
             SELECT forget.mask('clients', 'name', 'jit_seen()');
             SET jit = on;
             SELECT * FROM forget.anonymize_client(2);",
        )
        .unwrap();
        let seen = Spi::get_one::<String>("SELECT name FROM clients WHERE id = 2");
        assert_eq!(seen.unwrap().unwrap(), "off");
        let after = Spi::get_one::<String>("SELECT current_setting('jit')");
        assert_eq!(after.unwrap().unwrap(), "on");
    }

    #[pg_test]
    fn audit_tampering_is_detected() {
        setup_billing();
        Spi::run("SELECT * FROM forget.delete_client(2)").unwrap();
        Spi::run("SELECT * FROM forget.delete_client(1)").unwrap();
        // A #[pg_test] never commits: link the chain as a commit would.
        Spi::run("SELECT forget_internal._link_chain()").unwrap();
        assert!(Spi::get_one::<bool>("SELECT forget.verify_audit()")
            .unwrap()
            .unwrap());
        Spi::run("UPDATE forget.audit SET reason = 'edited' WHERE id = (SELECT min(id) FROM forget.audit)").unwrap();
        assert!(!Spi::get_one::<bool>("SELECT forget.verify_audit()")
            .unwrap()
            .unwrap());
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
