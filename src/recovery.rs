//! Soft deletion (SPEC.md problem 3): a delete or anonymize made with a grace
//! period keeps what it needs to be undone (forget.undo, written by the same
//! statement) and a DeletedUser record (forget.deleted_clients); restore_client
//! undoes it within the window; purge_expired destroys the undo data and the
//! identity once the window has passed.

use crate::catalog::{self, Subject};
use crate::errors::{invalid, not_allowed, not_found, null_key, spi};
use crate::execute::{run_hooks, Prepared};
use crate::render::{self, ident, literal, qualified, RestoreTable};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// The grace period of an action: the argument, else forget.grace_period.
/// 22023 when it is not positive or longer than forget.max_grace_period
/// (a recovery window is personal data kept on purpose: it must end).
pub fn grace(argument: Option<&str>) -> Option<String> {
    let grace = argument.map(str::to_string).or_else(|| {
        // Read without a query: this runs on every delete and anonymize.
        crate::identity::current_setting("forget.grace_period").filter(|v| !v.trim().is_empty())
    })?;
    let max = crate::identity::current_setting("forget.max_grace_period")
        .filter(|v| !v.trim().is_empty());
    let (positive, within) = spi(crate::catalog::read_two::<bool, bool>(
        "SELECT CAST($1 AS pg_catalog.interval) OPERATOR(pg_catalog.>) CAST('0' AS pg_catalog.interval),
                $2::pg_catalog.text IS NULL
                OR CAST($1 AS pg_catalog.interval) OPERATOR(pg_catalog.<=) CAST($2 AS pg_catalog.interval)",
        &[grace.as_str().into(), max.as_deref().into()],
    ));
    if !positive.unwrap_or(false) {
        invalid(format!("grace period must be positive, not \"{grace}\""));
    }
    if !within.unwrap_or(false) {
        invalid(format!(
            "grace period \"{grace}\" is longer than forget.max_grace_period ({})",
            max.unwrap_or_default()
        ));
    }
    Some(grace)
}

/// 55000 when the subject already has a retained recovery record: at most
/// one per subject, so that restore_client brings back the original values.
pub fn refuse_second_recovery(subject: &str, key: &str) {
    let until = spi(crate::catalog::read_one::<String>(
        "SELECT pg_catalog.max(retention_until)::pg_catalog.text FROM forget.deleted_clients
         WHERE subject = $1 AND original_key = $2 AND state = 'retained'",
        &[subject.into(), key.into()],
    ));
    if let Some(until) = until {
        crate::errors::refuse(crate::errors::Refusal {
            message: format!(
                "{subject} {} already has a pending deletion until {until}: restore_client first, \
                 or delete without a grace period",
                crate::errors::shown(key)
            ),
            detail: None,
            hint: None,
            constraint: "pending_deletion".into(),
        });
    }
}

/// Undo data finds updated rows again by primary key: refuse a grace period
/// when a table the action would update has none.
fn require_primary_keys(prepared: &Prepared) {
    for n in &prepared.plan.nodes {
        let updates = !n.nullified_edges().is_empty() || n.masks_rows();
        let table = &prepared.tables[&prepared.graph.nodes[n.node].table];
        if updates && table.primary_key.is_empty() {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!(
                    "cannot keep undo data for \"{}\": it has no primary key",
                    table.display_name()
                )
            );
        }
    }
}

/// Writes the DeletedUser record (with the identity columns, read before the
/// action changes them) and returns its id for the undo data.
pub fn open_record(
    prepared: &Prepared,
    key: &str,
    grace: &str,
    reason: Option<&str>,
    actor: Option<&str>,
) -> i64 {
    require_primary_keys(prepared);
    let s = &prepared.subject;
    let table = &prepared.tables[&s.table];
    let identity = if s.identity.is_empty() {
        "NULL::pg_catalog.jsonb".to_string()
    } else {
        let pairs: Vec<String> = s
            .identity
            .iter()
            .map(|c| format!("{}, r.{}", literal(c), ident(c)))
            .collect();
        format!(
            "(SELECT pg_catalog.jsonb_build_object({}) FROM {} r WHERE r.{} OPERATOR(pg_catalog.=) CAST($2 AS {}))",
            pairs.join(", "),
            qualified(table),
            ident(&s.key_column),
            s.key_type
        )
    };
    let sql = format!(
        "INSERT INTO forget.deleted_clients (subject, original_key, identity, deleted_at, reason, initiated_by,
                                             retention_until, state, action, undo_format)
         VALUES ($1, $2, {identity}, pg_catalog.now(), $3, $4, pg_catalog.now() + CAST($5 AS pg_catalog.interval),
                 'retained', $6, 2)
         RETURNING id"
    );
    let action = prepared.plan.action.name();
    spi(Spi::get_one_with_args::<i64>(
        &sql,
        &[
            s.name.as_str().into(),
            key.into(),
            reason.into(),
            actor.into(),
            grace.into(),
            action.into(),
        ],
    ))
    .expect("the record's id")
}

struct Record {
    id: i64,
    state: String,
    expired: bool,
    /// Undo format 2: each deleted row is held once (format 1, 0.1.0's,
    /// may hold a row twice).
    rows_once: bool,
}

/// The DeletedUser records of a key, newest first, locked against a
/// concurrent restore.
fn records(subject: &Subject, key: &str) -> Vec<Record> {
    Spi::connect_mut(|client| {
        spi(client.update(
            "SELECT id, state, retention_until < pg_catalog.now(), undo_format FROM forget.deleted_clients
             WHERE subject = $1 AND original_key = $2 ORDER BY id DESC FOR UPDATE",
            None,
            &[subject.name.as_str().into(), key.into()],
        ))
        .map(|r| Record {
            id: spi(r.get::<i64>(1)).unwrap_or_default(),
            state: spi(r.get::<String>(2)).unwrap_or_default(),
            expired: spi(r.get::<bool>(3)).unwrap_or(true),
            rows_once: spi(r.get::<i16>(4)).unwrap_or(1) >= 2,
        })
        .collect()
    })
}

/// What the undo data of one record touches: per relation, whether rows go
/// back in, which columns get old values, and the columns that find them.
struct UndoTable {
    oid: u32,
    inserts: bool,
    updated: Vec<String>,
    keys: Vec<String>,
}

/// Reads each relation's deleted rows only as far as their relation (no
/// jsonb is opened, nothing is sorted: on a subject with 200,000 deleted
/// rows, grouping them whole cost a tenth of the restore), and the columns
/// of the overwritten values from the 'update' rows.
fn restore_plan(id: i64) -> Vec<UndoTable> {
    Spi::connect(|client| {
        spi(client.select(
            "SELECT p.tbl, bool_or(p.inserts),
                    COALESCE(array_agg(DISTINCT p.c) FILTER (WHERE p.c IS NOT NULL), '{}'),
                    COALESCE(array_agg(DISTINCT p.k) FILTER (WHERE p.k IS NOT NULL), '{}')
             FROM (SELECT DISTINCT u.tbl::pg_catalog.oid AS tbl, true AS inserts, NULL::pg_catalog.text AS c, NULL::pg_catalog.text AS k
                   FROM forget.undo u WHERE u.deletion_id = $1 AND u.operation = 'insert'
                   UNION ALL
                   SELECT u.tbl::pg_catalog.oid, false, c, k FROM forget.undo u
                   LEFT JOIN LATERAL pg_catalog.jsonb_object_keys(u.row_data -> 'old') c ON true
                   LEFT JOIN LATERAL pg_catalog.jsonb_object_keys(u.row_data -> 'key') k ON true
                   WHERE u.deletion_id = $1 AND u.operation = 'update') p
             GROUP BY p.tbl ORDER BY p.tbl",
            None,
            &[id.into()],
        ))
        .map(|r| UndoTable {
            oid: spi(r.get::<pg_sys::Oid>(1)).map(u32::from).unwrap_or(0),
            inserts: spi(r.get::<bool>(2)).unwrap_or(false),
            updated: spi(r.get::<Vec<String>>(3)).unwrap_or_default(),
            keys: spi(r.get::<Vec<String>>(4)).unwrap_or_default(),
        })
        .collect()
    })
}

/// Puts back what one record's undo data holds; (relation, operation, rows).
fn undo_record(
    subject: &Subject,
    key: &str,
    record: &Record,
    plan: &[UndoTable],
) -> Vec<(pg_sys::Oid, String, i64)> {
    let id = record.id;
    let tables = catalog::tables(&plan.iter().map(|p| p.oid).collect::<Vec<_>>());
    let restore_tables: Vec<RestoreTable> = plan
        .iter()
        .map(|p| {
            let table = tables.get(&p.oid).unwrap_or_else(|| {
                not_allowed(format!(
                    "cannot restore {} {key}: relation with OID {} of its undo data no longer exists",
                    subject.name, p.oid
                ))
            });
            RestoreTable {
                table,
                inserts: p.inserts,
                updated_columns: p.updated.clone(),
                key_columns: p.keys.clone(),
            }
        })
        .collect();
    if restore_tables.is_empty() {
        return Vec::new();
    }
    let sql = render::restore_statement(&restore_tables, record.rows_once);
    // Triggers on the restored tables see the subject's search_path.
    let restored = crate::identity::as_subject(subject, Some(id), || {
        Spi::connect_mut(|client| {
            spi(client.update(&sql, None, &[id.into()]))
                .map(|r| {
                    (
                        spi(r.get::<pg_sys::Oid>(1)).unwrap_or(pg_sys::InvalidOid),
                        spi(r.get::<String>(2)).unwrap_or_default(),
                        spi(r.get::<i64>(3)).unwrap_or_default(),
                    )
                })
                .collect()
        })
    });
    // Planned for this call alone (what it restores differs each time).
    crate::memory::release_freed();
    restored
}

#[pg_extern(schema = "forget_internal", name = "_restore")]
#[search_path(pg_catalog, pg_temp)]
fn restore(
    key: Option<&str>,
    actor: Option<&str>,
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(tbl, pg_sys::Oid),
        name!(operation, String),
        name!(rows, i64),
    ),
> {
    // A refusal is raised by the SQL-facing function (forget_internal._refused).
    TableIterator::new(
        crate::errors::refusable(|| restore_flow(key, actor, subject)).unwrap_or_default(),
    )
}

/// Puts back what the retained recovery record of `key` holds: (table,
/// operation, rows) per step.
fn restore_flow(
    key: Option<&str>,
    actor: Option<&str>,
    subject: Option<&str>,
) -> Vec<(pg_sys::Oid, String, i64)> {
    let subject = catalog::subject(subject);
    let key = key.unwrap_or_else(|| null_key());
    let canonical = spi(crate::catalog::read_one::<String>(
        &format!("SELECT CAST($1 AS {})::pg_catalog.text", subject.key_type),
        &[key.into()],
    ))
    .unwrap_or_default();
    let all = records(&subject, &canonical);
    // Normally one retained record; a database upgraded from 0.1.0 may hold
    // several for one subject: undone newest first, so the oldest (the
    // original values) is what remains.
    let retained: Vec<&Record> = all.iter().filter(|r| r.state == "retained").collect();
    let gone = all.iter().any(|r| r.state == "purged");
    if retained.iter().any(|r| r.expired) || (retained.is_empty() && gone) {
        crate::errors::refuse(crate::errors::Refusal {
            message: format!(
                "cannot restore {} {}: Recovery window has expired",
                subject.name,
                crate::errors::shown(&canonical)
            ),
            detail: None,
            hint: None,
            constraint: "recovery_window".into(),
        });
    }
    if retained.is_empty() {
        not_found(&subject.name, key);
    }
    // The relations the undo data goes back into, and the hooks, must belong
    // to roles the subject trusts (42501 otherwise).
    let plans: Vec<Vec<UndoTable>> = retained.iter().map(|r| restore_plan(r.id)).collect();
    let relations: Vec<u32> = plans.iter().flatten().map(|p| p.oid).collect();
    let hooks: Vec<String> = ["before_restore", "after_restore"]
        .iter()
        .flat_map(|e| catalog::hooks(e))
        .collect();
    catalog::require_trusted(&subject, &catalog::untrusted(&subject, &relations, &hooks));
    let context = serde_json::json!({"action": "restore", "actor": actor});
    run_hooks("before_restore", &subject, &canonical, &context);
    let mut done: Vec<(pg_sys::Oid, String, i64)> = Vec::new();
    for (rec, plan) in retained.iter().zip(&plans) {
        done.extend(undo_record(&subject, &canonical, rec, plan));
        spi(Spi::run_with_args(
            "UPDATE forget.deleted_clients SET state = 'restored', identity = NULL WHERE id = $1;",
            &[rec.id.into()],
        ));
        spi(Spi::run_with_args(
            "DELETE FROM forget.undo WHERE deletion_id = $1",
            &[rec.id.into()],
        ));
    }
    let tables = catalog::tables(&done.iter().map(|d| u32::from(d.0)).collect::<Vec<_>>());
    let mut rows = serde_json::Map::new();
    for (oid, _, n) in &done {
        let name = tables
            .get(&u32::from(*oid))
            .map(|t| t.display_name())
            .unwrap_or_default();
        let sum = rows.get(&name).and_then(|v| v.as_i64()).unwrap_or(0) + n;
        rows.insert(name, sum.into());
    }
    let mut after = context.clone();
    after["rows"] = serde_json::Value::Object(rows.clone());
    run_hooks("after_restore", &subject, &canonical, &after);
    crate::audit::record_many(
        "restore",
        &subject.name,
        &[canonical],
        actor,
        None,
        vec![serde_json::Value::Object(rows)],
    );
    done
}
