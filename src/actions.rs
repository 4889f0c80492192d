//! The actions on one subject: eligibility, delete, anonymize, export, and the
//! graph as the extension sees it. Thin: parse arguments, run the flow, shape
//! the result. The public SQL signatures (with key overloads for bigint, text
//! and uuid) are in sql/api.sql; these are the internal functions they call.

use crate::cache;
use crate::catalog;
use crate::errors::{null_key, spi};
use crate::execute::{self, Origin};
use crate::graph::describe_origin;
use crate::model::Action;
use crate::plan;
use crate::recovery;
use crate::render::Mode;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;

/// What the caller asked for.
pub struct Request<'a> {
    pub action: Action,
    pub key: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub dry_run: bool,
    /// Grace period (interval text): keep what is needed to undo the action.
    pub grace: Option<&'a str>,
    pub subject: Option<&'a str>,
}

/// The flow shared by delete and anonymize: lock, rules, hooks, one
/// statement, hooks, audit. Returns (table, operation, rows).
pub fn act(req: &Request) -> Vec<(pg_sys::Oid, String, i64)> {
    let entry = cache::entry(req.subject, req.action);
    entry.require_trusted();
    entry.require_bound(crate::binding::ACTION);
    let key = req.key.unwrap_or_else(|| null_key());
    let prepared = &entry.prepared;
    let key = entry.lock(key, !req.dry_run);
    execute::enforce(&entry, &key);
    let counts = if req.dry_run {
        recovery::grace(req.grace);
        execute::run_statement(&entry, Mode::DryRun, std::slice::from_ref(&key), None)
    } else {
        let recovery = recovery::grace(req.grace).map(|grace| {
            recovery::refuse_second_recovery(&prepared.subject.name, &key);
            recovery::open_record(prepared, &key, &grace, req.reason, req.actor)
        });
        let origin = Origin {
            reason: req.reason,
            actor: req.actor,
            recovery,
        };
        execute::carry_out(&entry, std::slice::from_ref(&key), &origin)
    };
    counts
        .steps
        .iter()
        .zip(&counts.totals)
        .map(|((oid, op), n)| (pg_sys::Oid::from(*oid), op.name().to_string(), *n))
        .collect()
}

#[pg_extern(schema = "forget_internal", name = "_act")]
#[search_path(pg_catalog, pg_temp)]
fn act_sql(
    action: &str,
    key: Option<&str>,
    reason: Option<&str>,
    actor: Option<&str>,
    dry_run: Option<bool>,
    grace: Option<&str>,
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(tbl, pg_sys::Oid),
        name!(operation, String),
        name!(rows, i64),
    ),
> {
    let action = match action {
        "delete" => Action::Delete,
        "anonymize" => Action::Anonymize,
        other => crate::errors::invalid(format!("unknown action \"{other}\"")),
    };
    let req = Request {
        action,
        key,
        reason,
        actor,
        dry_run: dry_run.unwrap_or(false),
        grace,
        subject,
    };
    // A refusal is raised by the SQL-facing function (forget_internal._refused).
    TableIterator::new(crate::errors::refusable(|| act(&req)).unwrap_or_default())
}

#[pg_extern(schema = "forget_internal", name = "_eligibility")]
#[search_path(pg_catalog, pg_temp)]
fn eligibility_sql(
    key: Option<&str>,
    action: Option<&str>,
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(rule, String),
        name!(ok, bool),
        name!(blocking, i64),
        name!(message, String),
    ),
> {
    let action = action.unwrap_or("delete");
    if action == "deactivate" {
        let key = key.unwrap_or_else(|| null_key());
        return TableIterator::new(crate::deactivation::deactivation_verdicts(subject, key));
    }
    let action = Action::parse(action).unwrap_or_else(|| {
        crate::errors::invalid(format!(
            "unknown action \"{action}\": use delete, anonymize, minimize or deactivate"
        ))
    });
    let entry = cache::entry(subject, action);
    entry.require_bound(crate::binding::RULES);
    let key = key.unwrap_or_else(|| null_key());
    let key = entry.lock(key, false);
    let rows: Vec<_> = crate::rules::evaluate(&entry, &key)
        .into_iter()
        .map(|v| (v.rule, v.blocking == 0, v.blocking, v.message))
        .collect();
    TableIterator::new(rows)
}

#[pg_extern(schema = "forget_internal", name = "_export")]
#[search_path(pg_catalog, pg_temp)]
fn export_sql(key: Option<&str>, subject: Option<&str>) -> JsonB {
    let key = key.unwrap_or_else(|| null_key());
    let entry = crate::cache::entry(subject, Action::Export);
    entry.require_trusted();
    entry.require_bound(crate::binding::EXPORT);
    let prepared = &entry.prepared;
    let key = entry.lock(key, false);
    let plan = entry.export_statement();
    let data = crate::identity::as_subject(&prepared.subject, None, || {
        Spi::connect(|client| {
            spi(client.select(&plan.plan, Some(1), &[vec![key.clone()].into()]))
                .first()
                .get_one::<JsonB>()
                .ok()
                .flatten()
        })
    });
    plan.after_run();
    let exported_at = crate::catalog::read_one::<String>(
        "SELECT pg_catalog.to_json(pg_catalog.now())#>>'{}'",
        &[],
    )
    .ok()
    .flatten();
    JsonB(json!({
        "subject": prepared.subject.name,
        "key": key,
        "exported_at": exported_at,
        "data": data.map(|d| d.0).unwrap_or_else(|| json!({})),
    }))
}

#[pg_extern(schema = "forget_internal", name = "_graph")]
#[search_path(pg_catalog, pg_temp)]
fn graph_sql(
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(tbl, pg_sys::Oid),
        name!(via, Option<String>),
        name!(parent, Option<pg_sys::Oid>),
        name!(depth, i32),
        name!(source, String),
        name!(on_delete, String),
        name!(on_anonymize, String),
        name!(on_minimize, String),
    ),
> {
    let subject = catalog::subject(subject);
    let g = crate::graph::build(subject.table, &catalog::references());
    let policies: Vec<_> = [Action::Delete, Action::Anonymize, Action::Minimize]
        .into_iter()
        .map(|a| (a, catalog::policies(a)))
        .collect();
    let effective = |edge_index: usize, pi: usize| {
        let (action, p) = &policies[pi];
        plan::effective_policy(&g.edges[edge_index], *action, p)
            .name()
            .to_string()
    };
    let root = pg_sys::Oid::from(subject.table);
    let mut rows = vec![(
        root,
        None,
        None,
        0,
        "subject".to_string(),
        "delete".to_string(),
        "anonymize".to_string(),
        "minimize".to_string(),
    )];
    for (i, e) in g.edges.iter().enumerate() {
        let (_, cols) = e.referencing();
        rows.push((
            pg_sys::Oid::from(g.nodes[e.child].table),
            Some(cols.join(",")),
            Some(pg_sys::Oid::from(g.nodes[e.parent].table)),
            g.nodes[e.child].depth as i32,
            describe_origin(e),
            effective(i, 0),
            effective(i, 1),
            effective(i, 2),
        ));
    }
    TableIterator::new(rows)
}
