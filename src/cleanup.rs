//! people_cleanup: finding the subjects nobody needs any more, and handing
//! each batch, set-based, to the same execution as delete and minimize.
//! The batch loop with its failure isolation is PL/pgSQL (sql/api.sql,
//! forget_internal._cleanup_batch): its EXCEPTION blocks are the subtransactions that
//! let one failing subject be skipped while the others proceed.

use crate::cache::Entry;
use crate::catalog::{self, Subject};
use crate::config::{require_column, table, Checker};
use crate::errors::{invalid, spi};
use crate::execute::{self, Origin};
use crate::identity::{as_subject, with_settings};
use crate::model::Action;
use crate::render::{ident, literal, qualified};
use pgrx::prelude::*;

/// What the candidate query is made of.
pub struct CleanupSql<'a> {
    pub table: String,
    pub key: &'a str,
    pub key_type: &'a str,
    pub subject: &'a str,
    pub conditions: Vec<String>,
    pub minimize_when: Option<String>,
    pub minimized_column: Option<&'a str>,
}

impl CleanupSql<'_> {
    fn is_minimized(&self) -> String {
        match self.minimized_column {
            Some(col) => format!("s.{} IS NOT NULL", ident(col)),
            None => format!(
                "EXISTS (SELECT 1 FROM forget.minimized_current m WHERE m.subject OPERATOR(pg_catalog.=) {} \
                 AND m.key OPERATOR(pg_catalog.=) s_key.forget_key)",
                literal(self.subject),
            ),
        }
    }

    /// What FROM adds for is_minimized without a minimized column
    /// (render::key_as_text).
    fn key_as_text(&self) -> String {
        match self.minimized_column {
            Some(_) => String::new(),
            None => crate::render::key_as_text(self.key),
        }
    }

    /// Every condition, ANDed. No conditions: nobody.
    fn conditions(&self) -> String {
        if self.conditions.is_empty() {
            return "false".into();
        }
        let parts: Vec<String> = self.conditions.iter().map(|c| format!("({c})")).collect();
        parts.join(" AND ")
    }

    /// FROM and WHERE: every condition holds, and a minimized subject is no
    /// candidate while minimize_when still holds for it.
    fn from_where(&self) -> String {
        let minimize = self.minimize_when.clone().unwrap_or_else(|| "false".into());
        format!(
            "FROM {} s{} WHERE {} AND NOT (({}) AND ({minimize}))",
            self.table,
            self.key_as_text(),
            self.conditions(),
            self.is_minimized()
        )
    }

    /// Candidates after the key $1 (from the first key when `after` is
    /// false: then $1 is unused), at most $2, in key order, with the action
    /// each would get; locked when asked (rows being changed by someone else
    /// are skipped, not waited for). Two statements rather than one with
    /// `$1 IS NULL OR ...`: a kept plan must be able to start its index scan
    /// at $1.
    ///
    /// The conditions stay in WHERE, where PostgreSQL turns NOT EXISTS into
    /// anti-joins and tests cheap column conditions first; run it under
    /// `CANDIDATE_PLANNING` so those joins probe indexes row by row. The
    /// minimize test sits in a LATERAL subquery of its own (OFFSET 0 keeps
    /// it there), evaluated only for rows that pass the conditions: as a
    /// plain expression PostgreSQL would hash its whole table in every batch.
    pub fn candidates(&self, after: bool, lock: bool) -> String {
        let minimize = self.minimize_when.clone().unwrap_or_else(|| "false".into());
        let start = if after {
            format!(
                " AND s.{} OPERATOR(pg_catalog.>) CAST($1 AS {})",
                ident(self.key),
                self.key_type
            )
        } else {
            String::new()
        };
        format!(
            "SELECT s.{key}::pg_catalog.text, forget_c.forget_minimize \
             FROM {} s{} CROSS JOIN LATERAL (SELECT ({minimize}) AS forget_minimize, ({}) AS forget_minimized OFFSET 0) forget_c \
             WHERE {} AND NOT (forget_c.forget_minimized AND forget_c.forget_minimize){start} \
             ORDER BY s.{key} LIMIT $2{}",
            self.table,
            self.key_as_text(),
            self.is_minimized(),
            self.conditions(),
            if lock { " FOR UPDATE OF s SKIP LOCKED" } else { "" },
            key = ident(self.key),
        )
    }

    pub fn count(&self) -> String {
        format!("SELECT pg_catalog.count(*) {}", self.from_where())
    }
}

struct Settings {
    enabled: bool,
    minimize_when: Option<String>,
    conditions: Vec<String>,
}

fn settings(subject: &str) -> Settings {
    // One row whether or not set_cleanup was ever called for the subject.
    let (enabled, minimize_when) = spi(crate::catalog::read_two::<bool, String>(
        "SELECT s.enabled, s.minimize_when FROM (SELECT) AS one
         LEFT JOIN forget.cleanup_settings s ON s.subject = $1",
        &[subject.into()],
    ));
    let conditions = Spi::connect(|client| {
        spi(client.select(
            "SELECT predicate FROM forget.cleanup_conditions WHERE subject = $1 ORDER BY name",
            None,
            &[subject.into()],
        ))
        .map(|r| spi(r.get::<String>(1)).unwrap_or_default())
        .collect()
    });
    Settings {
        enabled: enabled.unwrap_or(false),
        minimize_when,
        conditions,
    }
}

/// The candidate query's parts, from the cached delete entry (subject and
/// table metadata) and the cleanup settings as they are now.
fn cleanup_sql(entry: &Entry) -> Option<CleanupSql<'_>> {
    let subject = &entry.prepared.subject;
    let s = settings(&subject.name);
    if !s.enabled || s.conditions.is_empty() {
        return None;
    }
    Some(CleanupSql {
        table: qualified(&entry.prepared.tables[&subject.table]),
        key: &subject.key_column,
        key_type: &subject.key_type,
        subject: &subject.name,
        conditions: s.conditions,
        minimize_when: s.minimize_when,
        minimized_column: subject.minimized_column.as_deref(),
    })
}

/// The predicate as it is to be stored, once PostgreSQL has checked it, and
/// what it is bound to.
fn check_predicate(
    subject: &Subject,
    what: &str,
    predicate: &str,
    search_path: &str,
) -> (String, Vec<String>) {
    let predicate = crate::parse::one_expression(what, predicate);
    let t = table(subject.table);
    Checker::of(subject).check_sql(
        search_path,
        &format!("SELECT 1 FROM {} s WHERE ({predicate})", qualified(&t)),
        &[],
    );
    let bound = crate::binding::bind(
        subject.run_as,
        &subject.name,
        search_path,
        crate::binding::Kind::Condition,
        &qualified(&t),
        &predicate,
        &[],
    );
    (predicate, bound)
}

#[pg_extern(schema = "forget_internal", name = "_add_cleanup_condition")]
#[search_path(pg_catalog, pg_temp)]
fn add_cleanup_condition(name: &str, predicate: &str, subject: Option<&str>, search_path: &str) {
    let subject = catalog::subject(subject);
    let (predicate, bound) = check_predicate(
        &subject,
        &format!("cleanup condition \"{name}\""),
        predicate,
        search_path,
    );
    spi(Spi::run_with_args(
        "INSERT INTO forget.cleanup_conditions (subject, name, predicate, search_path, bound) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject, name) DO UPDATE SET predicate = EXCLUDED.predicate, search_path = EXCLUDED.search_path,
             bound = EXCLUDED.bound",
        &[subject.name.as_str().into(), name.into(), predicate.as_str().into(), search_path.into(), bound.into()],
    ));
}

#[pg_extern(schema = "forget_internal", name = "_drop_cleanup_condition")]
#[search_path(pg_catalog, pg_temp)]
fn drop_cleanup_condition(name: &str, subject: Option<&str>) {
    let subject = catalog::subject(subject);
    let dropped = spi(Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM forget.cleanup_conditions WHERE subject = $1 AND name = $2 RETURNING 1)
         SELECT count(*) FROM d",
        &[subject.name.as_str().into(), name.into()],
    ));
    if dropped.unwrap_or(0) == 0 {
        invalid(format!(
            "cleanup condition \"{name}\" of subject \"{}\" does not exist",
            subject.name
        ));
    }
}

#[pg_extern(schema = "forget_internal", name = "_set_cleanup")]
#[search_path(pg_catalog, pg_temp)]
fn set_cleanup(
    enabled: Option<bool>,
    minimize_when: Option<&str>,
    subject: Option<&str>,
    search_path: &str,
) {
    let subject = catalog::subject(subject);
    let (minimize_when, bound) = match minimize_when {
        Some(p) => {
            let (p, bound) = check_predicate(&subject, "minimize_when", p, search_path);
            (Some(p), Some(bound))
        }
        None => (None, None),
    };
    spi(Spi::run_with_args(
        "INSERT INTO forget.cleanup_settings (subject, enabled, minimize_when, search_path, bound) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject) DO UPDATE SET enabled = EXCLUDED.enabled, minimize_when = EXCLUDED.minimize_when,
             search_path = EXCLUDED.search_path, bound = EXCLUDED.bound",
        &[subject.name.as_str().into(), enabled.unwrap_or(false).into(), minimize_when.as_deref().into(), search_path.into(), bound.into()],
    ));
}

#[pg_extern(schema = "forget_internal", name = "_add_activity")]
#[search_path(pg_catalog, pg_temp)]
fn add_activity(tbl: pg_sys::Oid, ts_column: &str, via: Option<&str>, subject: Option<&str>) {
    let subject = catalog::subject(subject);
    let t = table(tbl.into());
    require_column(&t, ts_column);
    let ts_type = &t.column(ts_column).unwrap().type_sql;
    if !(ts_type.starts_with("timestamp") || ts_type == "date") {
        invalid(format!(
            "activity column \"{ts_column}\" of \"{}\" must be a date or timestamp",
            t.display_name()
        ));
    }
    match via {
        Some(col) => require_column(&t, col),
        None if t.oid != subject.table => invalid(format!(
            "activity table \"{}\" is not the subject table: name the column linking it (via)",
            t.display_name()
        )),
        None => {}
    }
    spi(Spi::run_with_args(
        "INSERT INTO forget.activities (subject, tbl, ts_column, via) VALUES ($1, $2::pg_catalog.oid::pg_catalog.regclass, $3, $4)
         ON CONFLICT DO NOTHING",
        &[subject.name.as_str().into(), tbl.into(), ts_column.into(), via.into()],
    ));
    if let Some(col) = via {
        // A statement trigger: one UPDATE per inserting statement, whatever its size.
        let name = ident(&format!("forget_activity_{}_{}", subject.name, col));
        spi(Spi::run(&format!(
            "CREATE OR REPLACE TRIGGER {name} AFTER INSERT ON {} REFERENCING NEW TABLE AS forget_new_rows \
             FOR EACH STATEMENT EXECUTE FUNCTION forget_internal._activity_inserted('{}', '{}')",
            qualified(&t),
            subject.name.replace('\'', "''"),
            col.replace('\'', "''")
        )));
    }
}

/// Clears the minimized mark of `keys` (a new role, a participation): the
/// subject's minimized_column, set to NULL as its run-as role, or the rows
/// of forget.minimized. Called by the activity trigger.
#[pg_extern(schema = "forget_internal", name = "_clear_minimized")]
#[search_path(pg_catalog, pg_temp)]
fn clear_minimized(subject: &str, keys: Option<Vec<String>>) {
    let keys = keys.unwrap_or_default();
    if keys.is_empty() {
        return;
    }
    let s = catalog::subject(Some(subject));
    match &s.minimized_column {
        Some(col) => {
            let sql = format!(
                "UPDATE {} s SET {col} = NULL WHERE s.{key} OPERATOR(pg_catalog.=) ANY (CAST($1 AS {}[])) \
                 AND s.{col} IS NOT NULL",
                qualified(&table(s.table)),
                s.key_type,
                col = ident(col),
                key = ident(&s.key_column),
            );
            as_subject(&s, None, || {
                spi(Spi::run_with_args(&sql, &[keys.into()]));
            });
        }
        None => spi(Spi::run_with_args(
            "DELETE FROM forget.minimized WHERE subject = $1 AND key = ANY ($2)",
            &[s.name.as_str().into(), keys.into()],
        )),
    }
}

#[pg_extern(schema = "forget_internal", name = "_subject_name")]
#[search_path(pg_catalog, pg_temp)]
fn subject_name(subject: Option<&str>) -> String {
    crate::cache::subject(subject).name
}

/// How the candidate query is planned. A batch reads the subject table in
/// key order from where the last one stopped, so the conditions' joins must
/// probe an index per row: a hash or merge join would read the whole joined
/// table in every batch, and a merge join from its start, so that a backlog
/// would cost batches × table size. (The count of all candidates keeps the
/// defaults: it does read everything.) No JIT either: the estimate grows
/// with the batch size, and compiling costs more than a batch's probes.
const CANDIDATE_PLANNING: &[(&str, &str)] = &[
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("jit", "off"),
];

/// A batch's candidate query is kept and planned once, generically: planning
/// it took 1.5 ms, a sixth of a batch's search for 1000 candidates, and the
/// generic plan (index scan from $1, probes per row) suits any batch size.
const GENERIC_PLAN: &[(&str, &str)] = &[("plan_cache_mode", "force_generic_plan")];

/// One batch of candidates, split by the action each gets.
#[derive(Default)]
struct Batch {
    minimize: Vec<String>,
    delete: Vec<String>,
    /// Candidates a rule blocks: left alone, but the batch moves past them.
    blocked: i64,
    /// Every candidate in key order with its fate (`minimize`, `destroy`,
    /// `blocked`) and the rules that block it, for cleanup_preview.
    fates: Vec<(String, &'static str, Vec<String>)>,
    last_key: Option<String>,
}

/// The next candidates after `after_key` in key order (at most `limit`),
/// locked when asked, as keys to minimize and keys to delete; candidates
/// that a rule blocks for their action are counted, not returned. One row.
#[pg_extern(schema = "forget_internal", name = "_cleanup_candidates")]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_candidates(
    subject: &str,
    limit: i32,
    after_key: Option<&str>,
    lock: bool,
) -> TableIterator<
    'static,
    (
        name!(minimize, Vec<String>),
        name!(delete, Vec<String>),
        name!(blocked, i64),
        name!(last_key, Option<String>),
    ),
> {
    let batch = next_batch(subject, limit, after_key, lock);
    TableIterator::once((batch.minimize, batch.delete, batch.blocked, batch.last_key))
}

fn next_batch(subject: &str, limit: i32, after_key: Option<&str>, lock: bool) -> Batch {
    let entries = [Action::Minimize, Action::Delete].map(|a| crate::cache::entry(Some(subject), a));
    let subject = &entries[1].prepared.subject;
    // One cleanup per subject at a time: a second one waits, then sees what
    // is left. The lock is the subject's row of forget.cleanup_settings,
    // which only the extension can lock (an advisory lock could be taken
    // by any role, stalling every cleanup). A dry run changes nothing and
    // takes no lock.
    if lock {
        spi(Spi::run_with_args(
            "SELECT 1 FROM forget.cleanup_settings WHERE subject = $1 FOR UPDATE",
            &[subject.name.as_str().into()],
        ));
    }
    let Some(sql) = cleanup_sql(&entries[1]) else {
        return Batch::default();
    };
    entries[1].require_bound(crate::binding::CONDITIONS);
    for entry in &entries {
        entry.require_bound(crate::binding::RULES);
    }
    let planning = [CANDIDATE_PLANNING, GENERIC_PLAN].concat();
    // Prepared (once) with the subject's path, run as its run-as role.
    let plan = crate::identity::with_search_path(&subject.search_path, || {
        with_settings(&planning, || {
            crate::cache::statement(
                format!(
                    "cleanup candidates {} after={} lock={lock}",
                    subject.name,
                    after_key.is_some()
                ),
                &[pg_sys::TEXTOID, pg_sys::INT8OID],
                || sql.candidates(after_key.is_some(), lock),
            )
        })
    });
    let found: Vec<(String, bool)> = as_subject(subject, None, || {
        with_settings(&planning, || {
            let pairs = |t: pgrx::spi::SpiTupleTable| -> Vec<(String, bool)> {
                t.map(|r| {
                    (
                        spi(r.get::<String>(1)).unwrap_or_default(),
                        spi(r.get::<bool>(2)).unwrap_or(false),
                    )
                })
                .collect()
            };
            let args = [after_key.into(), i64::from(limit).into()];
            // Unlocked (a dry run), read-only: no transaction id.
            if lock {
                Spi::connect_mut(|client| pairs(spi(client.update(plan.as_ref(), None, &args))))
            } else {
                Spi::connect(|client| pairs(spi(client.select(plan.as_ref(), None, &args))))
            }
        })
    });
    let last_key = found.last().map(|(key, _)| key.clone());
    let order = found.clone();
    let (minimize, delete): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, m)| *m);
    let mut batch = Batch {
        last_key,
        ..Batch::default()
    };
    let mut rules_of: std::collections::HashMap<String, Vec<String>> = Default::default();
    // Each rule runs once for the batch's keys of the action it would block.
    for (entry, found, keys) in [
        (&entries[0], minimize, &mut batch.minimize),
        (&entries[1], delete, &mut batch.delete),
    ] {
        let found: Vec<String> = found.into_iter().map(|(key, _)| key).collect();
        let blocked = crate::rules::blocked_by(entry, &found);
        batch.blocked += blocked.len() as i64;
        keys.extend(found.into_iter().filter(|key| !blocked.contains_key(key)));
        rules_of.extend(blocked);
    }
    batch.fates = order
        .into_iter()
        .map(|(key, minimize)| match rules_of.remove(&key) {
            Some(rules) => (key, "blocked", rules),
            None if minimize => (key, "minimize", Vec::new()),
            None => (key, "destroy", Vec::new()),
        })
        .collect();
    batch
}

/// Who the next cleanup would handle and how, changing nothing: at most
/// `lim` candidates (100 by default) in key order, each with its fate
/// (`minimize`, `destroy`, or `blocked` with the names of the rules that
/// block it). Read-only (no lock, no transaction id): a DBA's look before
/// the first run, or before switching cleanup on. 22023 for a negative
/// `lim` or an unknown subject.
#[pg_extern(schema = "forget_internal", name = "_cleanup_preview")]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_preview(
    lim: Option<i32>,
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(key, String),
        name!(fate, String),
        name!(blocked_by, Vec<String>),
    ),
> {
    let lim = lim.unwrap_or(100);
    if lim < 0 {
        invalid(format!("lim must not be negative (got {lim})"));
    }
    let subject = catalog::subject(subject);
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    while out.len() < lim as usize {
        let batch = next_batch(
            &subject.name,
            lim - out.len() as i32,
            after.as_deref(),
            false,
        );
        if batch.fates.is_empty() {
            break;
        }
        after = batch.last_key.clone();
        out.extend(
            batch
                .fates
                .into_iter()
                .map(|(key, fate, rules)| (key, fate.to_string(), rules)),
        );
    }
    TableIterator::new(out)
}

/// The candidate query's plan, as EXPLAIN (FORMAT JSON, VERBOSE) prints it,
/// planned the way a batch plans it (from the first key, 1000 at a time)
/// but with sequential scans discouraged: a table still read by one has no
/// index that the conditions can use, however small it is today. Err with
/// PostgreSQL's message when the conditions no longer plan; None when
/// cleanup is off or has no conditions. For the doctor.
pub fn candidate_plan(subject: &str) -> Option<Result<serde_json::Value, String>> {
    let entry = crate::cache::entry(Some(subject), Action::Delete);
    let subject = &entry.prepared.subject;
    let sql = cleanup_sql(&entry)?;
    let planning = [CANDIDATE_PLANNING, &[("enable_seqscan", "off")]].concat();
    // Planning runs functions too (immutable ones with constant arguments):
    // as the run-as role, like everything declared.
    let (plan, problem) = as_subject(subject, None, || {
        with_settings(&planning, || {
            spi(crate::catalog::read_two::<pgrx::Json, String>(
                "SELECT plan, problem FROM forget_internal._candidate_plan($1, $2)",
                &[
                    sql.candidates(false, false).as_str().into(),
                    subject.search_path.as_str().into(),
                ],
            ))
        })
    });
    Some(match (plan, problem) {
        (Some(plan), _) => Ok(plan.0),
        (None, problem) => Err(problem.unwrap_or_default()),
    })
}

/// How many subjects are candidates now (before rules).
#[pg_extern(schema = "forget_internal", name = "_cleanup_count")]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_count(subject: &str) -> i64 {
    let entry = crate::cache::entry(Some(subject), Action::Delete);
    let subject = &entry.prepared.subject;
    let Some(sql) = cleanup_sql(&entry) else {
        return 0;
    };
    as_subject(subject, None, || {
        spi(crate::catalog::read_one::<i64>(&sql.count(), &[])).unwrap_or(0)
    })
}

/// Minimizes or deletes a set of locked candidates in one statement.
#[pg_extern(schema = "forget_internal", name = "_cleanup_apply")]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_apply(subject: &str, action: &str, keys: Vec<String>) -> i64 {
    if keys.is_empty() {
        return 0;
    }
    let action = Action::parse(action)
        .unwrap_or_else(|| invalid(format!("unknown cleanup action \"{action}\"")));
    let entry = crate::cache::entry(Some(subject), action);
    let reason = cleanup_reason(subject, action);
    execute::carry_out(
        &entry,
        &keys,
        &Origin {
            reason: Some(&reason),
            actor: Some("people_cleanup"),
            recovery: None,
        },
    );
    keys.len() as i64
}

/// Why the cleanup did what it did, for the audit row of each subject: the
/// fate and the configuration that decided it.
fn cleanup_reason(subject: &str, action: Action) -> String {
    let names = spi(crate::catalog::read_one::<String>(
        "SELECT pg_catalog.string_agg(name, ', ' ORDER BY name) FROM forget.cleanup_conditions WHERE subject = $1",
        &[subject.into()],
    ))
    .unwrap_or_else(|| "none".into());
    match action {
        Action::Minimize => format!(
            "people_cleanup: minimized: every cleanup condition holds ({names}) and minimize_when holds"
        ),
        _ => format!(
            "people_cleanup: destroyed: every cleanup condition holds ({names}) and minimize_when does not"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::CleanupSql;

    fn sql(conditions: &[&str], minimize_when: Option<&str>) -> CleanupSql<'static> {
        CleanupSql {
            table: "\"public\".\"people\"".into(),
            key: "id",
            key_type: "bigint",
            subject: "person",
            conditions: conditions.iter().map(|c| c.to_string()).collect(),
            minimize_when: minimize_when.map(str::to_string),
            minimized_column: None,
        }
    }

    #[test]
    fn no_conditions_select_nobody() {
        assert!(sql(&[], None).count().contains("WHERE false"));
    }

    #[test]
    fn every_condition_must_hold_and_minimized_subjects_wait_for_minimize_when() {
        let q = sql(&["s.a", "s.b"], Some("s.c")).candidates(true, true);
        assert!(q.contains("WHERE (s.a) AND (s.b) AND NOT (forget_c.forget_minimized AND forget_c.forget_minimize)"));
        assert!(q.contains(
            "CROSS JOIN LATERAL (SELECT (s.c) AS forget_minimize, (EXISTS (SELECT 1 FROM forget.minimized_current m"
        ));
        assert!(q.contains("OFFSET 0) forget_c"));
        assert!(q.starts_with("SELECT s.\"id\"::pg_catalog.text, forget_c.forget_minimize FROM"));
        assert!(q.contains(
            "AND s.\"id\" OPERATOR(pg_catalog.>) CAST($1 AS bigint) ORDER BY s.\"id\" LIMIT $2"
        ));
        assert!(q.ends_with("FOR UPDATE OF s SKIP LOCKED"));
        let first = sql(&["s.a"], None).candidates(false, false);
        assert!(
            !first.contains("$1"),
            "the first batch starts at the first key"
        );
        assert!(first.ends_with("ORDER BY s.\"id\" LIMIT $2"));
        let count = sql(&["s.a"], Some("s.c")).count();
        assert!(count
            .contains("WHERE (s.a) AND NOT ((EXISTS (SELECT 1 FROM forget.minimized_current m"));
        assert!(count.ends_with(") AND (s.c))"));
    }
}

thread_local! {
    /// The forget.runs row of the run_people_cleanup running in this
    /// backend (forget_internal._tally_cleanup_run).
    static CLEANUP_RUN: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// The forget.runs id of this backend's running run_people_cleanup.
#[pg_extern(schema = "forget_internal", name = "_cleanup_run_id", volatile)]
fn cleanup_run_id() -> Option<i64> {
    CLEANUP_RUN.with(|r| r.get())
}

/// Sets (NULL: forgets) this backend's running run_people_cleanup row.
#[pg_extern(schema = "forget_internal", name = "_set_cleanup_run_id", volatile)]
fn set_cleanup_run_id(id: Option<i64>) {
    CLEANUP_RUN.with(|r| r.set(id));
}
