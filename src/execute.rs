//! Runs an action against the database through SPI: locks the subjects,
//! checks rules, calls hooks, runs the rendered statement and collects its
//! counts. The plan and its SQL come from `plan` and `render`.

use crate::cache::Entry;
use crate::catalog::{self, Subject};
use crate::errors::{not_found, spi};
use crate::graph::{self, Graph};
use crate::identity::{as_subject, with_settings, NO_JIT};
use crate::model::{Action, Oid, Table};
use crate::plan::{self, Operation, Plan, Settings, SubjectMarks};
use crate::render::{self, ident, qualified, Mode, Rendered, SubjectSql};
use pgrx::prelude::*;
use pgrx::JsonB;
use std::collections::HashMap;

/// Everything needed to act on a subject: its graph, the tables' metadata and
/// the plan for one action.
pub struct Prepared {
    pub subject: Subject,
    pub graph: Graph,
    pub tables: HashMap<Oid, Table>,
    pub plan: Plan,
}

impl Prepared {
    pub fn new(subject: Subject, action: Action) -> Prepared {
        let graph = graph::build(subject.table, &catalog::references());
        let tables = catalog::tables(&graph.tables());
        let policies = catalog::policies(action);
        let masks = catalog::masks(action);
        let marks = subject_marks(&subject, action, &tables);
        let plan = plan::plan(
            &graph,
            &Settings {
                action,
                policies: &policies,
                masks: &masks,
                marks,
            },
        );
        Prepared {
            subject,
            graph,
            tables,
            plan,
        }
    }

    pub fn subject_sql(&self) -> SubjectSql<'_> {
        SubjectSql {
            table: &self.tables[&self.subject.table],
            key_column: &self.subject.key_column,
            key_type: &self.subject.key_type,
        }
    }

    pub fn render(&self, mode: Mode) -> Rendered {
        render::action_statement(
            &self.plan,
            &self.graph,
            &self.tables,
            &self.subject_sql(),
            mode,
        )
    }

    pub fn table_name(&self, oid: Oid) -> String {
        self.tables
            .get(&oid)
            .map(Table::display_name)
            .unwrap_or_default()
    }
}

fn subject_marks(subject: &Subject, action: Action, tables: &HashMap<Oid, Table>) -> SubjectMarks {
    let table = &tables[&subject.table];
    let typed = |c: &String| table.column(c).map(|col| (c.clone(), col.type_sql.clone()));
    SubjectMarks {
        deactivate: match action {
            Action::Anonymize => subject.active_column.as_ref().and_then(typed),
            _ => None,
        },
        minimized_column: match action {
            Action::Minimize => subject.minimized_column.clone(),
            _ => None,
        },
    }
}

/// Locks the subject row (FOR UPDATE: a concurrent insert of a referencing row
/// waits for us, and one that got there first is seen by the rules) and
/// returns the key as the subject's key type prints it. P0002 if absent.
pub fn lock_subject(subject: &Subject, table: &Table, key: &str, lock: bool) -> String {
    let sql = lock_sql(subject, table, lock);
    let found = as_subject(subject, None, || {
        let first = |t: pgrx::spi::SpiTupleTable| t.first().get_one::<String>().ok().flatten();
        if lock {
            Spi::connect_mut(|client| first(spi(client.update(&sql, Some(1), &[key.into()]))))
        } else {
            Spi::connect(|client| first(spi(client.select(&sql, Some(1), &[key.into()]))))
        }
    });
    let key = found.unwrap_or_else(|| not_found(&subject.name, key));
    require_visible_to_caller(subject, table, &key);
    key
}

/// The statement that finds (and with `lock`, locks) one subject row. A key
/// that the key column's type modifier would change (varchar(3) truncates
/// 'abcd' to 'abc', numeric(10,0) rounds '1.5' to 2) names no row rather
/// than another subject's: the cast must equal the same text cast without
/// the modifier ('1.5' is numeric(10,2) 1.50 all the same).
pub fn lock_sql(subject: &Subject, table: &Table, lock: bool) -> String {
    let (kt, base) = (&subject.key_type, &subject.key_base_type);
    let unchanged = if kt == base {
        String::new()
    } else {
        format!(" AND CAST(CAST($1 AS {kt}) AS {base}) OPERATOR(pg_catalog.=) CAST($1 AS {base})")
    };
    format!(
        "SELECT r.{k}::pg_catalog.text FROM {} r WHERE r.{k} OPERATOR(pg_catalog.=) CAST($1 AS {kt}){unchanged}{}",
        qualified(table),
        if lock { " FOR UPDATE" } else { "" },
        k = ident(&subject.key_column),
    )
}

/// The key as a datum of the subject's key type (through its input function:
/// 22P02 when it does not cast), for statements whose $1 has that type.
pub fn key_datum(subject: &Subject, key: &str) -> pgrx::datum::DatumWithOid<'static> {
    let type_oid = pg_sys::Oid::from(subject.key_type_oid);
    let text = std::ffi::CString::new(key)
        .unwrap_or_else(|_| crate::errors::invalid("key contains a NUL byte"));
    unsafe {
        let (mut input, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        pg_sys::getTypeInputInfo(type_oid, &mut input, &mut ioparam);
        let datum = pg_sys::OidInputFunctionCall(input, text.as_ptr() as *mut _, ioparam, -1);
        pgrx::datum::DatumWithOid::new(datum, type_oid)
    }
}

/// 55000 when any rule blocks: the message joins every failing rule's
/// message, CONSTRAINT is the first failing rule, DETAIL one line per
/// failing rule (`rule: message`), HINT the `eligibility` call.
pub fn enforce(entry: &Entry, key: &str) {
    let failing: Vec<(String, String)> = crate::rules::evaluate(entry, key)
        .into_iter()
        .filter(|v| v.blocking > 0)
        .map(|v| (v.rule, v.message))
        .collect();
    let action = entry.prepared.plan.action.name();
    refuse_by_rules(action, &entry.prepared.subject.name, key, &failing);
}

/// Refuses `action` on `subject` `key` when `failing` (rule, message) is
/// not empty; see `enforce`.
pub fn refuse_by_rules(action: &str, subject: &str, key: &str, failing: &[(String, String)]) {
    let Some((first, _)) = failing.first() else {
        return;
    };
    let messages: Vec<&str> = failing.iter().map(|(_, m)| m.as_str()).collect();
    let lines: Vec<String> = failing.iter().map(|(r, m)| format!("{r}: {m}")).collect();
    crate::errors::refuse(crate::errors::Refusal {
        message: format!(
            "cannot {action} {subject} {}: {}",
            crate::errors::shown(key),
            messages.join("; ")
        ),
        detail: Some(lines.join("\n")),
        hint: Some(crate::render::eligibility_call(key, action, subject)),
        constraint: first.clone(),
    });
}

/// Calls every function hooked to `event` with (subject, key, context).
pub fn run_hooks(event: &str, subject: &Subject, key: &str, context: &serde_json::Value) {
    call_hooks(
        &catalog::hooks(event),
        subject,
        std::iter::once((key, context.clone())),
    );
}

/// Calls each of `functions` with (subject, key, context) for every key,
/// with the subject's declared search_path (hook bodies resolve names the
/// same way in every action).
pub fn call_hooks<'k>(
    functions: &[String],
    subject: &Subject,
    calls: impl Iterator<Item = (&'k str, serde_json::Value)>,
) {
    if functions.is_empty() {
        return;
    }
    as_subject(subject, None, || {
        for (key, context) in calls {
            for function in functions {
                let sql = format!(
                    "SELECT {function}($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.jsonb)"
                );
                Spi::connect_mut(|client| {
                    spi(client.update(
                        &sql,
                        None,
                        &[
                            subject.name.as_str().into(),
                            key.into(),
                            JsonB(context.clone()).into(),
                        ],
                    ));
                });
            }
        }
    })
}

/// Rows touched per step, in total and per subject key.
pub struct Counts {
    pub steps: Vec<(Oid, Operation)>,
    pub totals: Vec<i64>,
    pub per_key: HashMap<String, Vec<i64>>,
}

impl Counts {
    /// Table → rows touched for one key (the audit's `rows`).
    pub fn rows_json(&self, prepared: &Prepared, key: &str) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(counts) = self.per_key.get(key) {
            for ((oid, _), n) in self.steps.iter().zip(counts) {
                if *n > 0 {
                    let name = prepared.table_name(*oid);
                    let sum = map.get(&name).and_then(|v| v.as_i64()).unwrap_or(0) + n;
                    map.insert(name, sum.into());
                }
            }
        }
        serde_json::Value::Object(map)
    }
}

/// Runs a cached statement for `keys` (canonical key texts).
pub fn run_statement(entry: &Entry, mode: Mode, keys: &[String], recovery: Option<i64>) -> Counts {
    let prepared = &entry.prepared;
    let statement = entry.statement(mode);
    let steps = &statement.rendered.steps;
    let inactive = prepared.subject.inactive_value.as_str();
    let mut totals = vec![0i64; steps.len()];
    let mut per_key: HashMap<String, Vec<i64>> = HashMap::new();
    // SET client_min_messages = debug1 shows what runs.
    pgrx::debug1!("pg_forget: {}", statement.rendered.sql);
    // (step, key, rows) from each statement run.
    let read = |table: pgrx::spi::SpiTupleTable| -> Vec<(usize, String, i64)> {
        table
            .map(|row| {
                let step = spi(row.get::<i32>(1)).unwrap_or_default() as usize;
                let key = spi(row.get::<String>(2)).unwrap_or_default();
                (step, key, spi(row.get::<i64>(3)).unwrap_or_default())
            })
            .collect()
    };
    let counted = as_subject(&prepared.subject, recovery, || {
        with_settings(NO_JIT, || {
            let args = [keys.to_vec().into(), inactive.into(), recovery.into()];
            // Mode::ExecuteOne and KeepUndo: each of these deletes one step's rows, all
            // of the one key, and the executor counts them.
            let mut counted: Vec<(usize, String, i64)> = statement
                .first
                .iter()
                .map(|(step, plan)| {
                    let n = Spi::connect_mut(|client| spi(client.update(plan, None, &args)).len());
                    (*step, keys[0].clone(), n as i64)
                })
                .collect();
            // A dry run only reads: no transaction id, fine on a standby.
            counted.extend(if mode == Mode::DryRun {
                Spi::connect(|client| read(spi(client.select(&statement.plan, None, &args))))
            } else {
                Spi::connect_mut(|client| read(spi(client.update(&statement.plan, None, &args))))
            });
            counted
        })
    });
    for (step, key, n) in counted {
        totals[step] += n;
        per_key.entry(key).or_insert_with(|| vec![0; steps.len()])[step] += n;
    }
    statement.after_run();
    Counts {
        steps: steps.clone(),
        totals,
        per_key,
    }
}

/// Who asked, and why: copied into hooks' context and the audit.
pub struct Origin<'a> {
    pub reason: Option<&'a str>,
    pub actor: Option<&'a str>,
    /// The forget.deleted_clients row that keeps the undo data, when the
    /// action runs with a grace period.
    pub recovery: Option<i64>,
}

/// PostgreSQL rewrites each DELETE and UPDATE on a table by its rules: a
/// DO INSTEAD rule (a soft delete, a copy elsewhere) would leave the
/// subject's rows where they are while the action reports them changed,
/// and inside one statement PostgreSQL refuses most such rules anyway. An
/// action that would delete from or update such a table fails before it
/// changes anything: 0A000, as PostgreSQL's own refusal.
fn refuse_rewritten(prepared: &Prepared, keep_undo: bool) {
    for (node, op) in prepared.plan.steps() {
        let table = &prepared.tables[&prepared.graph.nodes[node].table];
        let delete = op == crate::plan::Operation::Delete;
        // With undo data kept, each inheritance child is deleted from on its
        // own (ONLY), and its rules apply too; a DELETE on the parent alone
        // leaves them out, as PostgreSQL does.
        let children = table
            .inheritors
            .iter()
            .filter(|_| delete && keep_undo)
            .filter_map(|o| prepared.tables.get(o));
        for t in std::iter::once(table).chain(children) {
            let rewritten = if delete {
                t.rules.delete
            } else {
                t.rules.update
            };
            if rewritten {
                let (verb, event) = if delete {
                    ("delete from", "DELETE")
                } else {
                    ("update", "UPDATE")
                };
                pgrx::ereport!(
                    ERROR,
                    pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!(
                        "cannot {verb} {}: a rule rewrites its {event}",
                        t.display_name()
                    ),
                    "pg_forget changes no table whose DELETE or UPDATE a rule rewrites (CREATE RULE ... DO INSTEAD): drop the rule, or have it done by a trigger."
                );
            }
        }
    }
}

/// Carries out an action for keys that are locked and canonical: before
/// hooks, one statement for all keys, the minimized mark, after hooks, and
/// one audit row per key (written in one call).
pub fn carry_out(entry: &Entry, keys: &[String], origin: &Origin) -> Counts {
    entry.require_trusted();
    entry.require_bound(crate::binding::ACTION);
    let prepared = &entry.prepared;
    refuse_rewritten(prepared, origin.recovery.is_some());
    let action = prepared.plan.action.name();
    let context =
        serde_json::json!({"action": action, "reason": origin.reason, "actor": origin.actor});
    call_hooks(
        entry.hooks(&format!("before_{action}")),
        &prepared.subject,
        keys.iter().map(|k| (k.as_str(), context.clone())),
    );
    let mode = match (origin.recovery, keys.len()) {
        (Some(_), _) => Mode::KeepUndo,
        (None, 1) => Mode::ExecuteOne,
        (None, _) => Mode::Execute,
    };
    let counts = run_statement(entry, mode, keys, origin.recovery);
    keep_records(prepared, keys, origin);
    let rows: Vec<serde_json::Value> = keys.iter().map(|k| counts.rows_json(prepared, k)).collect();
    let after = keys.iter().zip(&rows).map(|(k, r)| {
        let mut c = context.clone();
        c["rows"] = r.clone();
        (k.as_str(), c)
    });
    call_hooks(
        entry.hooks(&format!("after_{action}")),
        &prepared.subject,
        after,
    );
    crate::audit::record_many(
        action,
        &prepared.subject.name,
        keys,
        origin.actor,
        origin.reason,
        rows,
    );
    counts
}

/// The extension's own records of the subjects acted on. Minimizing sets
/// the minimized mark (in forget.minimized when the subject has no
/// minimized_column). A delete without a grace period leaves nothing about
/// them but their audit rows: their deactivation history, minimized mark and
/// recovery records go, a retained recovery record being purged (audited as
/// such) in the same transaction. An anonymization without a grace period
/// purges a retained record too: it is final.
fn keep_records(prepared: &Prepared, keys: &[String], origin: &Origin) {
    let subject = prepared.subject.name.as_str();
    let sql = match prepared.plan.action {
        Action::Minimize if prepared.subject.minimized_column.is_none() => {
            "INSERT INTO forget.minimized (subject, key) SELECT $1, k FROM pg_catalog.unnest($2::pg_catalog.text[]) k
             ON CONFLICT (subject, key) DO UPDATE SET at = pg_catalog.now()"
        }
        // An anonymization without a grace period is final: a recovery
        // record still retained from an earlier one must not undo it.
        Action::Anonymize if origin.recovery.is_none() => {
            "WITH records AS (
                 UPDATE forget.deleted_clients SET state = 'purged', identity = NULL
                 WHERE subject = $1 AND original_key = ANY ($2::pg_catalog.text[]) AND state = 'retained'
                 RETURNING id, original_key),
             undo AS (DELETE FROM forget.undo WHERE deletion_id IN (SELECT id FROM records))
             SELECT DISTINCT original_key FROM records ORDER BY 1"
        }
        Action::Delete if origin.recovery.is_none() => {
            "WITH records AS (
                 DELETE FROM forget.deleted_clients WHERE subject = $1 AND original_key = ANY ($2::pg_catalog.text[])
                 RETURNING original_key, state),
             history AS (DELETE FROM forget.deactivations WHERE subject = $1 AND key = ANY ($2::pg_catalog.text[])),
             marks AS (DELETE FROM forget.minimized WHERE subject = $1 AND key = ANY ($2::pg_catalog.text[]))
             SELECT DISTINCT original_key FROM records WHERE state = 'retained' ORDER BY 1"
        }
        _ => return,
    };
    let plan = crate::cache::kept(sql, &[pg_sys::TEXTOID, pg_sys::TEXTARRAYOID]);
    let purged: Vec<String> = Spi::connect_mut(|client| {
        spi(client.update(plan.as_ref(), None, &[subject.into(), keys.to_vec().into()]))
            .filter_map(|r| spi(r.get::<String>(1)))
            .collect()
    });
    if !purged.is_empty() {
        let rows = vec![serde_json::json!({}); purged.len()];
        let reason =
            Some("recovery record purged: a delete or anonymize without grace period is final");
        crate::audit::record_many("purge", subject, &purged, origin.actor, reason, rows);
    }
}

/// P0002 when the subject table has row level security and the caller (not
/// the run-as role) cannot see the subject row under its own policies: an
/// operator limited to one region reaches no client of another through the
/// extension. Without row level security this costs nothing.
pub fn require_visible_to_caller(subject: &Subject, table: &Table, key: &str) {
    if !table.row_security {
        return;
    }
    let may_select = format!(
        "SELECT pg_catalog.has_table_privilege({}::pg_catalog.oid, 'SELECT')",
        table.oid
    );
    let sees = format!(
        "SELECT EXISTS (SELECT 1 FROM {} r WHERE r.{} OPERATOR(pg_catalog.=) CAST($1 AS {}))",
        qualified(table),
        ident(&subject.key_column),
        subject.key_type
    );
    // Without SELECT on the table no row of it is visible to the caller.
    let visible = crate::identity::as_caller(|| {
        spi(crate::catalog::read_one::<bool>(&may_select, &[])).unwrap_or(false)
            && spi(crate::catalog::read_one::<bool>(&sees, &[key.into()])).unwrap_or(false)
    });
    if !visible {
        not_found(&subject.name, key);
    }
}

/// The rows (key first) whose subject row the caller can see, when the
/// subject table has row level security; all of them otherwise. One query.
pub fn visible_to_caller<T>(
    subject: &Subject,
    table: &Table,
    rows: Vec<(String, T)>,
) -> Vec<(String, T)> {
    if !table.row_security || rows.is_empty() {
        return rows;
    }
    let keys: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    let may_select = format!(
        "SELECT pg_catalog.has_table_privilege({}::pg_catalog.oid, 'SELECT')",
        table.oid
    );
    let sees = format!(
        "SELECT r.{k}::pg_catalog.text FROM {} r WHERE r.{k} OPERATOR(pg_catalog.=) ANY (CAST($1 AS {}[]))",
        qualified(table),
        subject.key_type,
        k = ident(&subject.key_column)
    );
    let visible: std::collections::HashSet<String> = crate::identity::as_caller(|| {
        if !spi(crate::catalog::read_one::<bool>(&may_select, &[])).unwrap_or(false) {
            return Default::default();
        }
        Spi::connect(|client| {
            spi(client.select(&sees, None, &[keys.into()]))
                .filter_map(|r| spi(r.get::<String>(1)))
                .collect()
        })
    });
    rows.into_iter()
        .filter(|(k, _)| visible.contains(k))
        .collect()
}
