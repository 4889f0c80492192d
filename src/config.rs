//! Declaring subjects, links, policies, masks, rules and hooks. Everything is
//! validated when declared, so mistakes surface then and not during an
//! erasure. DBA-written SQL (conditions, masks, rules) is checked by having
//! PostgreSQL prepare it under the search_path it will run with.

use crate::catalog;
use crate::errors::{invalid, spi};
use crate::model::{Oid, Policy, Table};
use crate::render::{ident, qualified};
use crate::rules::RuleForm;
use pgrx::prelude::*;

pub fn table(oid: Oid) -> Table {
    catalog::tables(&[oid])
        .remove(&oid)
        .unwrap_or_else(|| invalid(format!("relation with OID {oid} does not exist")))
}

pub fn require_column(t: &Table, column: &str) {
    if t.column(column).is_none() {
        invalid(format!(
            "column \"{column}\" of relation \"{}\" does not exist",
            t.display_name()
        ));
    }
}

/// The single-column primary key of a table, if it has one.
fn primary_key(oid: Oid) -> Option<String> {
    let cols: Vec<String> = Spi::connect(|client| {
        spi(client.select(
            "SELECT a.attname::text FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = $1 AND i.indisprimary",
            None,
            &[pg_sys::Oid::from(oid).into()],
        ))
        .map(|r| spi(r.get::<String>(1)).unwrap_or_default())
        .collect()
    });
    (cols.len() == 1).then(|| cols[0].clone())
}

/// Who a declaration is checked as: the run-as role user code of the
/// subject will run as, and the subject's name.
pub struct Checker<'a> {
    pub role: Oid,
    pub subject: &'a str,
}

impl Checker<'_> {
    /// Of a subject.
    pub fn of(subject: &catalog::Subject) -> Checker<'_> {
        Checker {
            role: subject.run_as,
            subject: &subject.name,
        }
    }

    /// Has PostgreSQL parse, analyse and start `sql` (one statement only)
    /// with `path`, as the run-as role: unknown names and missing
    /// privileges fail now, not during an erasure. The statement is
    /// started under `LIMIT 0` with NULL parameters, so it reads nothing.
    pub fn check_sql(&self, path: &str, sql: &str, arg_types: &[pg_sys::Oid]) {
        crate::identity::as_run_as(self.role, self.subject, None, path, || {
            Spi::connect(|client| {
                let types: Vec<pgrx::PgOid> =
                    arg_types.iter().map(|o| pgrx::PgOid::from(*o)).collect();
                spi(client.prepare(sql, &types));
                let started = format!("SELECT 1 FROM ({sql}\n) forget_check LIMIT 0");
                let nulls: Vec<pgrx::datum::DatumWithOid> = arg_types
                    .iter()
                    .map(|o| pgrx::datum::DatumWithOid::null_oid(*o))
                    .collect();
                spi(client.select(&started, None, &nulls));
            })
        });
    }
}

/// The roles whose subjects' graphs reach `table` (each may run a mask or
/// condition on it), or its owner when none does.
pub fn checkers_of_table(table: Oid) -> Vec<(Oid, String)> {
    let references = catalog::references();
    let mut found: Vec<(Oid, String)> = catalog::subjects()
        .into_iter()
        .filter(|s| {
            crate::graph::build(s.table, &references)
                .tables()
                .contains(&table)
        })
        .map(|s| (s.run_as, s.name))
        .collect();
    if found.is_empty() {
        let owner = spi(crate::catalog::read_one::<pg_sys::Oid>(
            "SELECT relowner FROM pg_catalog.pg_class WHERE oid = $1",
            &[pg_sys::Oid::from(table).into()],
        ))
        .map(u32::from)
        .unwrap_or(0);
        found.push((owner, String::new()));
    }
    found.dedup_by_key(|(role, _)| *role);
    found
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(schema = "forget_internal", name = "_register_subject")]
#[search_path(pg_catalog, pg_temp)]
fn register_subject(
    name: Option<&str>,
    tbl: pg_sys::Oid,
    key_column: Option<&str>,
    active_column: Option<&str>,
    active_value: Option<&str>,
    inactive_value: Option<&str>,
    identity: Option<Vec<String>>,
    minimized_column: Option<&str>,
    search_path: &str,
    run_as: Option<pg_sys::Oid>,
) {
    let name = name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| invalid("subject name must not be empty"));
    let t = table(tbl.into());
    require_run_as_member(name, &t, run_as);
    let key = match key_column {
        Some(k) => k.to_string(),
        None => primary_key(t.oid).unwrap_or_else(|| {
            invalid(format!(
                "relation \"{}\" has no single-column primary key: name key_column",
                t.display_name()
            ))
        }),
    };
    require_column(&t, &key);
    let (Some(active_value), Some(inactive_value)) = (active_value, inactive_value) else {
        invalid(format!(
            "subject \"{name}\": active_value and inactive_value must not be NULL"
        ));
    };
    if let Some(col) = active_column {
        require_column(&t, col);
        let ty = &t.column(col).unwrap().type_sql;
        for v in [active_value, inactive_value] {
            spi(Spi::run_with_args(
                &format!("SELECT CAST($1 AS {ty})"),
                &[v.into()],
            ));
        }
    }
    for col in identity.iter().flatten() {
        require_column(&t, col);
    }
    if let Some(col) = minimized_column {
        require_column(&t, col);
        if t.column(col).unwrap().type_sql != "timestamp with time zone" {
            invalid(format!("minimized_column \"{col}\" must be timestamptz"));
        }
    }
    spi(Spi::run_with_args(
        "INSERT INTO forget.subjects (name, tbl, key_column, active_column, active_value, inactive_value,
                                      identity, minimized_column, search_path, run_as)
         VALUES ($1, $2::pg_catalog.oid::pg_catalog.regclass, $3, $4, $5, $6, $7, $8, $9,
                 $10::pg_catalog.oid::pg_catalog.regrole)
         ON CONFLICT (name) DO UPDATE SET tbl = EXCLUDED.tbl, key_column = EXCLUDED.key_column,
             active_column = EXCLUDED.active_column, active_value = EXCLUDED.active_value,
             inactive_value = EXCLUDED.inactive_value, identity = EXCLUDED.identity,
             minimized_column = EXCLUDED.minimized_column, search_path = EXCLUDED.search_path,
             run_as = EXCLUDED.run_as",
        &[
            name.into(),
            tbl.into(),
            key.as_str().into(),
            active_column.into(),
            active_value.into(),
            inactive_value.into(),
            identity.into(),
            minimized_column.into(),
            search_path.into(),
            run_as.into(),
        ],
    ));
}

/// Configuring a subject needs membership in its run-as role (the table's
/// owner unless named): its actions run user code with that role's
/// privileges. 42501 otherwise. Superusers are members of every role.
fn require_run_as_member(subject: &str, table: &Table, run_as: Option<pg_sys::Oid>) {
    let role = run_as.unwrap_or_else(|| {
        spi(crate::catalog::read_one::<pg_sys::Oid>(
            "SELECT relowner FROM pg_catalog.pg_class WHERE oid = $1",
            &[pg_sys::Oid::from(table.oid).into()],
        ))
        .unwrap_or(pg_sys::InvalidOid)
    });
    require_member(subject, role);
}

/// 42501 unless the caller has the privileges of `role` (the run-as role
/// of `subject`).
pub fn require_member(subject: &str, role: pg_sys::Oid) {
    let member = unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), role) };
    if !member {
        pgrx::ereport!(
            ERROR,
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "subject \"{subject}\" runs as role {}: only its members may configure it",
                spi(crate::catalog::read_one::<String>(
                    "SELECT $1::pg_catalog.regrole::pg_catalog.text",
                    &[role.into()]
                ))
                .unwrap_or_default()
            )
        );
    }
}

/// The column a link points at by default: the subject key when the parent
/// is a subject table, else the parent's single-column primary key.
fn default_parent_column(parent: &Table) -> String {
    catalog::subjects()
        .into_iter()
        .find(|s| s.table == parent.oid)
        .map(|s| s.key_column)
        .or_else(|| primary_key(parent.oid))
        .unwrap_or_else(|| {
            invalid(format!(
                "relation \"{}\" has no single-column primary key: name parent_column",
                parent.display_name()
            ))
        })
}

#[pg_extern(schema = "forget_internal", name = "_add_link")]
#[search_path(pg_catalog, pg_temp)]
fn add_link(
    child: pg_sys::Oid,
    child_column: &str,
    parent: pg_sys::Oid,
    parent_column: Option<&str>,
    condition: Option<&str>,
    search_path: &str,
) {
    let (c, p) = (table(child.into()), table(parent.into()));
    require_column(&c, child_column);
    let parent_column = parent_column
        .map(str::to_string)
        .unwrap_or_else(|| default_parent_column(&p));
    require_column(&p, &parent_column);
    let child_type = &c.column(child_column).unwrap().type_sql;
    let parent_type = &p.column(&parent_column).unwrap().type_sql;
    // An array of the parent's type: the row belongs to every parent whose
    // value it contains.
    let array = *child_type == format!("{parent_type}[]");
    let condition = condition.map(|cond| crate::parse::one_expression("link condition", cond));
    // As every role whose subjects reach the parent: the same comparison the
    // generated SQL makes (an impossible cast fails now), and the condition.
    for (role, subject) in checkers_of_table(p.oid) {
        let checker = Checker {
            role,
            subject: &subject,
        };
        checker.check_sql(
            search_path,
            &if array {
                format!(
                    "SELECT 1 FROM {} c, {} p WHERE p.{} OPERATOR(pg_catalog.=) ANY (c.{})",
                    qualified(&c),
                    qualified(&p),
                    ident(&parent_column),
                    ident(child_column)
                )
            } else {
                format!(
                    "SELECT 1 FROM {} c, {} p WHERE {}",
                    qualified(&c),
                    qualified(&p),
                    crate::render::matches_in_child_type(
                        &format!("c.{}", ident(child_column)),
                        c.column(child_column).unwrap(),
                        p.column(&parent_column).unwrap(),
                        &format!("p.{}", ident(&parent_column)),
                    )
                )
            },
            &[],
        );
        if let Some(cond) = &condition {
            checker.check_sql(
                search_path,
                &format!("SELECT 1 FROM {} WHERE ({cond})", qualified(&c)),
                &[],
            );
        }
    }
    let bound: Option<Vec<String>> = condition.as_ref().map(|cond| {
        let (role, subject) = checkers_of_table(p.oid).remove(0);
        crate::binding::bind(
            role,
            &subject,
            search_path,
            crate::binding::Kind::LinkCondition,
            &qualified(&c),
            cond,
            &[],
        )
    });
    spi(Spi::run_with_args(
        "INSERT INTO forget.links (child, child_column, parent, parent_column, condition, search_path, bound)
         VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2, $3::pg_catalog.oid::pg_catalog.regclass, $4, $5, $6, $7)
         ON CONFLICT DO NOTHING",
        &[child.into(), child_column.into(), parent.into(), parent_column.as_str().into(), condition.as_deref().into(), search_path.into(), bound.into()],
    ));
}

fn parse_action(action: &str, allowed: &[&str]) {
    if !allowed.contains(&action) {
        invalid(format!(
            "unknown action \"{action}\": use {}",
            allowed.join(", ")
        ));
    }
}

#[pg_extern(schema = "forget_internal", name = "_set_policy")]
#[search_path(pg_catalog, pg_temp)]
fn set_policy(tbl: pg_sys::Oid, via: Option<&str>, action: &str, policy: &str) {
    parse_action(action, &["delete", "anonymize", "minimize"]);
    let parsed = Policy::parse(policy).unwrap_or_else(|| {
        invalid(format!(
            "unknown policy \"{policy}\": use delete, nullify, anonymize or keep"
        ))
    });
    let t = table(tbl.into());
    require_in_a_graph(&t, "a policy");
    let edges: Vec<String> = catalog::references()
        .into_iter()
        .filter(|r| r.child == t.oid)
        .flat_map(|r| r.child_cols)
        .collect();
    let columns: Vec<String> = match via {
        Some(col) => {
            require_column(&t, col);
            if !edges.iter().any(|e| e == col) {
                invalid(format!(
                    "column \"{col}\" of \"{}\" is no edge (neither a foreign key nor a link): a policy for it would never apply; declare the reference with forget.add_link first",
                    t.display_name()
                ));
            }
            vec![col.to_string()]
        }
        None if edges.is_empty() => invalid(format!(
            "\"{}\" has no edge (no foreign key or link to a table of a subject's graph): a policy for it would never apply",
            t.display_name()
        )),
        None => edges,
    };
    // Nullify, and anonymize under delete (the row is kept, masked, and its
    // reference set to NULL), need a column that may be NULL.
    if parsed == Policy::Nullify || (parsed == Policy::Anonymize && action == "delete") {
        if let Some(col) = columns
            .iter()
            .find(|c| t.column(c).is_some_and(|x| x.not_null))
        {
            invalid(format!(
                "cannot nullify column \"{col}\" of \"{}\" (policy {policy} under {action} sets it to NULL): it is NOT NULL",
                t.display_name()
            ));
        }
    }
    spi(Spi::run_with_args(
        "INSERT INTO forget.policies (tbl, via, action, policy) VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2, $3, $4)
         ON CONFLICT (tbl, via, action) DO UPDATE SET policy = EXCLUDED.policy",
        &[tbl.into(), via.into(), action.into(), policy.into()],
    ));
}

/// 22023 when no registered subject's graph reaches `t`: a declaration on it
/// (`what`) would never apply.
fn require_in_a_graph(t: &Table, what: &str) {
    let references = catalog::references();
    let reached = catalog::subjects().iter().any(|s| {
        crate::graph::build(s.table, &references)
            .tables()
            .contains(&t.oid)
    });
    if !reached {
        invalid(format!(
            "\"{}\" is in no subject's graph: {what} on it would never apply (register the subject, or link the table with forget.add_link, first)",
            t.display_name()
        ));
    }
}

/// Checks a mask: one expression that can work for the column (see
/// forget_internal._mask_problem: known names, a fitting type, no NULL for a NOT NULL
/// column, no constant for a unique one, no generated column). 22023 naming
/// the column otherwise. Returns the expression as it is to be stored.
pub fn validate_mask(t: &Table, col: &str, expression: &str, search_path: &str) -> String {
    require_column(t, col);
    let expression = crate::parse::one_expression("mask expression", expression);
    // As every role that will run it.
    for (role, subject) in checkers_of_table(t.oid) {
        let problem = crate::identity::as_run_as(role, &subject, None, search_path, || {
            mask_problem(t.oid, col, &expression, search_path, may_try())
        });
        if let Some(problem) = problem {
            invalid(format!(
                "mask for column \"{col}\" of \"{}\" cannot work: {problem}",
                t.display_name()
            ));
        }
    }
    expression
}

/// Why a mask cannot work for a column, or None when it can (see
/// forget_internal._mask_problem). With `trial` it is also tried on some of the
/// table's rows, in a subtransaction that is rolled back.
pub fn mask_problem(
    table: Oid,
    col: &str,
    expression: &str,
    search_path: &str,
    trial: bool,
) -> Option<String> {
    spi(crate::catalog::read_one::<String>(
        "SELECT forget_internal._mask_problem($1::pg_catalog.oid::pg_catalog.regclass, $2, $3, $4, $5)",
        &[
            pg_sys::Oid::from(table).into(),
            col.into(),
            expression.into(),
            search_path.into(),
            trial.into(),
        ],
    ))
}

/// Whether this transaction may try a mask on rows (it writes, then rolls
/// back): not in a read-only transaction, not on a standby.
pub fn may_try() -> bool {
    let read_only =
        crate::identity::current_setting("transaction_read_only").as_deref() == Some("on");
    !read_only && unsafe { !pg_sys::RecoveryInProgress() }
}

#[pg_extern(schema = "forget_internal", name = "_mask")]
#[search_path(pg_catalog, pg_temp)]
fn mask(tbl: pg_sys::Oid, col: &str, expression: &str, action: &str, search_path: &str) {
    parse_action(action, &["anonymize", "minimize", "export"]);
    let t = table(tbl.into());
    require_in_a_graph(&t, "a mask");
    let expression = if action == "export" {
        // Only shown, never written: any one expression will do.
        require_column(&t, col);
        crate::parse::one_expression("mask expression", expression)
    } else {
        validate_mask(&t, col, expression, search_path)
    };
    let (role, subject) = checkers_of_table(t.oid).remove(0);
    let bound = crate::binding::bind(
        role,
        &subject,
        search_path,
        crate::binding::Kind::Mask,
        &qualified(&t),
        &expression,
        &[],
    );
    spi(Spi::run_with_args(
        "INSERT INTO forget.masks (tbl, col, action, expression, search_path, bound)
         VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2, $3, $4, $5, $6)
         ON CONFLICT (tbl, col, action) DO UPDATE SET expression = EXCLUDED.expression,
             search_path = EXCLUDED.search_path, bound = EXCLUDED.bound",
        &[
            tbl.into(),
            col.into(),
            action.into(),
            expression.as_str().into(),
            search_path.into(),
            bound.into(),
        ],
    ));
}

#[pg_extern(schema = "forget_internal", name = "_add_rule")]
#[search_path(pg_catalog, pg_temp)]
fn add_rule(
    name: &str,
    query: &str,
    message: &str,
    actions: Option<Vec<String>>,
    subject: Option<&str>,
    search_path: &str,
) {
    let actions = actions.unwrap_or_else(|| vec!["delete".into(), "anonymize".into()]);
    for a in &actions {
        parse_action(a, &["delete", "anonymize", "minimize", "deactivate"]);
    }
    let query = &crate::parse::one_query(&format!("rule \"{name}\""), query);
    let subjects = match subject {
        Some(_) => vec![catalog::subject(subject)],
        None => catalog::subjects(),
    };
    // Both forms, for one key and for a cleanup batch's keys, for every
    // subject the rule applies to.
    let mut bound: Vec<String> = Vec::new();
    for s in &subjects {
        for form in [RuleForm::OneKey, RuleForm::ManyKeys] {
            let (sql, param) = crate::rules::statement(form, query, s);
            Checker::of(s).check_sql(search_path, &sql, &[param]);
        }
        // What it refers to for this subject (its key type types $1).
        let objects = crate::binding::bind(
            s.run_as,
            &s.name,
            search_path,
            crate::binding::Kind::Rule,
            "",
            query,
            &[pg_sys::Oid::from(s.key_type_oid)],
        );
        bound.extend(objects.into_iter().map(|o| format!("{}: {o}", s.name)));
    }
    spi(Spi::run_with_args(
        "INSERT INTO forget.rules (name, query, message, actions, subject, search_path, bound)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET query = EXCLUDED.query, message = EXCLUDED.message,
             actions = EXCLUDED.actions, subject = EXCLUDED.subject, search_path = EXCLUDED.search_path,
             bound = EXCLUDED.bound",
        &[name.into(), query.into(), message.into(), actions.into(), subject.into(), search_path.into(), bound.into()],
    ));
}

/// The actions hooks attach to, each with `before_` and `after_`.
pub const HOOKED_ACTIONS: [&str; 6] = [
    "delete",
    "anonymize",
    "minimize",
    "deactivate",
    "reactivate",
    "restore",
];

#[pg_extern(schema = "forget_internal", name = "_on")]
#[search_path(pg_catalog, pg_temp)]
fn on(event: &str, function: pg_sys::Oid) {
    let known = HOOKED_ACTIONS;
    let valid = ["before_", "after_"].iter().any(|p| {
        event
            .strip_prefix(p)
            .is_some_and(|rest| known.contains(&rest))
    });
    if !valid {
        invalid(format!(
            "unknown event \"{event}\": use before_ or after_ with {}",
            known.join(", ")
        ));
    }
    let signature = crate::catalog::read_two::<bool, String>(
        "SELECT pg_catalog.oidvectortypes(p.proargtypes) = 'text, text, jsonb', p.oid::pg_catalog.regprocedure::pg_catalog.text
         FROM pg_catalog.pg_proc p WHERE p.oid = $1",
        &[function.into()],
    );
    let (ok, name) = spi(signature);
    if !ok.unwrap_or(false) {
        invalid(format!(
            "hook function {} must take (subject text, key text, context jsonb)",
            name.unwrap_or_default()
        ));
    }
    spi(Spi::run_with_args(
        "INSERT INTO forget.hooks (event, fn) VALUES ($1, $2::pg_catalog.oid::pg_catalog.regprocedure) ON CONFLICT DO NOTHING",
        &[event.into(), function.into()],
    ));
}

/// trust / distrust: lets the subject's graph reach tables (and call hooks)
/// owned by `role`, whose code then runs with the run-as role's privileges;
/// or stops it again. Needs membership in the run-as role.
#[pg_extern(schema = "forget_internal", name = "_trust")]
#[search_path(pg_catalog, pg_temp)]
fn trust(role: pg_sys::Oid, subject: Option<&str>, trusted: bool) {
    let s = catalog::subject(subject);
    require_member(&s.name, pg_sys::Oid::from(s.run_as));
    if trusted {
        spi(Spi::run_with_args(
            "INSERT INTO forget.trusted (subject, role) VALUES ($1, $2::pg_catalog.oid::pg_catalog.regrole)
             ON CONFLICT DO NOTHING",
            &[s.name.as_str().into(), role.into()],
        ));
    } else {
        let removed = spi(Spi::get_one_with_args::<i64>(
            "WITH d AS (DELETE FROM forget.trusted WHERE subject = $1 AND role = $2::pg_catalog.oid::pg_catalog.regrole
                        RETURNING 1) SELECT pg_catalog.count(*) FROM d",
            &[s.name.as_str().into(), role.into()],
        ));
        if removed.unwrap_or(0) == 0 {
            let name = spi(Spi::get_one_with_args::<String>(
                "SELECT $1::pg_catalog.oid::pg_catalog.regrole::pg_catalog.text",
                &[role.into()],
            ))
            .unwrap_or_else(|| role.to_string());
            invalid(format!(
                "role {name} is not trusted by subject \"{}\"",
                s.name
            ));
        }
    }
}

// Removing configuration (drop_link, drop_policy, drop_mask, drop_rule, off,
// drop_activity, unregister_subject): each removes one declaration, with the
// caller's privileges on the configuration tables, like the functions that
// declare; 22023 when it names nothing that is declared.

/// Runs `delete` (a DELETE on a configuration table) and refuses (22023,
/// "`what` is not declared") when it removed nothing.
fn remove(what: String, delete: &str, args: &[pgrx::datum::DatumWithOid]) {
    let removed = spi(Spi::get_one_with_args::<i64>(
        &format!("WITH d AS ({delete} RETURNING 1) SELECT count(*) FROM d"),
        args,
    ));
    if removed.unwrap_or(0) == 0 {
        invalid(format!("{what} is not declared"));
    }
}

#[pg_extern(schema = "forget_internal", name = "_drop_link")]
#[search_path(pg_catalog, pg_temp)]
fn drop_link(child: pg_sys::Oid, child_column: &str) {
    remove(
        format!(
            "a link from {}.{}",
            table(child.into()).display_name(),
            ident(child_column)
        ),
        "DELETE FROM forget.links WHERE child = $1 AND child_column = $2",
        &[child.into(), child_column.into()],
    );
}

#[pg_extern(schema = "forget_internal", name = "_drop_policy")]
#[search_path(pg_catalog, pg_temp)]
fn drop_policy(tbl: pg_sys::Oid, via: Option<&str>, action: &str) {
    remove(
        format!(
            "a policy for {} of {} via {}",
            action,
            table(tbl.into()).display_name(),
            via.unwrap_or("every edge")
        ),
        "DELETE FROM forget.policies WHERE tbl = $1 AND via IS NOT DISTINCT FROM $2 AND action = $3",
        &[tbl.into(), via.into(), action.into()],
    );
}

#[pg_extern(schema = "forget_internal", name = "_drop_mask")]
#[search_path(pg_catalog, pg_temp)]
fn drop_mask(tbl: pg_sys::Oid, col: &str, action: &str) {
    remove(
        format!(
            "a mask for {action} of {}.{}",
            table(tbl.into()).display_name(),
            ident(col)
        ),
        "DELETE FROM forget.masks WHERE tbl = $1 AND col = $2 AND action = $3",
        &[tbl.into(), col.into(), action.into()],
    );
}

#[pg_extern(schema = "forget_internal", name = "_drop_rule")]
#[search_path(pg_catalog, pg_temp)]
fn drop_rule(name: &str, subject: Option<&str>) {
    remove(
        match subject {
            Some(s) => format!("rule \"{name}\" of subject \"{s}\""),
            None => format!("rule \"{name}\""),
        },
        "DELETE FROM forget.rules WHERE name = $1 AND ($2::text IS NULL OR subject = $2)",
        &[name.into(), subject.into()],
    );
}

#[pg_extern(schema = "forget_internal", name = "_off")]
#[search_path(pg_catalog, pg_temp)]
fn off(event: &str, function: pg_sys::Oid) {
    remove(
        format!(
            "hook {} on {event}",
            spi(crate::catalog::read_one::<String>(
                "SELECT $1::pg_catalog.regprocedure::pg_catalog.text",
                &[function.into()]
            ))
            .unwrap_or_default()
        ),
        "DELETE FROM forget.hooks WHERE event = $1 AND fn = $2::pg_catalog.oid",
        &[event.into(), function.into()],
    );
}

#[pg_extern(schema = "forget_internal", name = "_drop_activity")]
#[search_path(pg_catalog, pg_temp)]
fn drop_activity(tbl: pg_sys::Oid, ts_column: &str, subject: Option<&str>) {
    let s = catalog::subject(subject);
    remove(
        format!(
            "activity {}.{} of subject \"{}\"",
            table(tbl.into()).display_name(),
            ident(ts_column),
            s.name
        ),
        "DELETE FROM forget.activities WHERE subject = $1 AND tbl = $2 AND ts_column = $3",
        &[s.name.as_str().into(), tbl.into(), ts_column.into()],
    );
}

/// Removes a subject and what is declared for it alone (rules, cleanup
/// conditions and settings, activities, trusted roles); links, policies,
/// masks and hooks belong to tables and functions and stay. Refused
/// (55000) while a recovery window of the subject runs: restore_client
/// needs the subject. Needs membership in its run-as role.
#[pg_extern(schema = "forget_internal", name = "_unregister_subject")]
#[search_path(pg_catalog, pg_temp)]
fn unregister_subject(name: &str) {
    let s = catalog::subject(Some(name));
    require_member(&s.name, pg_sys::Oid::from(s.run_as));
    let retained = spi(crate::catalog::read_one::<i64>(
        "SELECT count(*) FROM forget.deleted_clients WHERE subject = $1 AND state = 'retained'",
        &[name.into()],
    ))
    .unwrap_or(0);
    if retained > 0 {
        crate::errors::not_allowed(format!(
            "subject \"{name}\" has {retained} recovery window(s) running: restore_client or purge_expired them first"
        ));
    }
    remove(
        format!("subject \"{name}\""),
        "DELETE FROM forget.subjects WHERE name = $1",
        &[name.into()],
    );
}
