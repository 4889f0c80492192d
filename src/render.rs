//! Renders a plan to one SQL statement. The only place that writes SQL for
//! user tables: every identifier is quoted here, values are parameters.
//!
//! Shape of the statement:
//! - one CTE per table (`n<node>`) lists the reached rows: their address
//!   (`forget_rel`, `forget_tid`: tableoid and ctid, since a ctid names a row
//!   only inside one relation, and a partitioned or inherited table reads
//!   several), the columns edges leaving the table match against, the
//!   subject key they belong to (`forget_root`) and their fate tag
//!   (`forget_fate`);
//! - one DELETE and/or one UPDATE per table acts on those rows by address (a
//!   TID scan, in the same snapshot), unless it is a dry run;
//! - the final SELECT counts rows per step and subject key.
//! Parameters: $1 is the text[] of subject keys; $2 the inactive value.

use crate::graph::Graph;
use crate::model::{Column, Oid, Table};
use crate::plan::{Branch, Fate, NodePlan, Operation, Plan};
use std::collections::HashMap;

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted schema-qualified table name.
pub fn qualified(table: &Table) -> String {
    format!("{}.{}", ident(&table.schema), ident(&table.name))
}

/// A string literal for catalog-derived text (table names, tags), correct
/// whatever standard_conforming_strings says. Never used for caller values.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            // Control characters as escapes: a statement shown in a message
            // or a log stays on one line, and reads back the same text.
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The `eligibility` call that lists why `action` on subject `subject`
/// `key` is refused: the HINT of a refusal, for a person to run. An integer
/// key is written as a number, any other as a string literal (the text
/// overload casts it to the subject's key type).
pub fn eligibility_call(key: &str, action: &str, subject: &str) -> String {
    let key = if key.parse::<i64>().map(|n| n.to_string() == key) == Ok(true) {
        key.to_string()
    } else {
        plain_literal(key)
    };
    format!(
        "SELECT * FROM forget.eligibility({key}, {}, {});",
        plain_literal(action),
        plain_literal(subject)
    )
}

/// A standard string literal, for text shown to people (hints): quotes
/// doubled, so it reads as written when standard_conforming_strings is on.
fn plain_literal(text: &str) -> String {
    if text.contains('\\') || text.chars().any(char::is_control) {
        literal(text)
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// The subject table and key, as rendering needs them.
pub struct SubjectSql<'a> {
    pub table: &'a Table,
    pub key_column: &'a str,
    pub key_type: &'a str,
}

/// How an action statement is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Count only, change nothing.
    DryRun,
    Execute,
    /// Execute for one subject key: the one-pass deletes (see
    /// `deleted_in_one_pass`) run first, each as a statement of its own
    /// whose row count the executor reports, instead of inside the action
    /// statement with a RETURNING that fetches every deleted row again to
    /// attribute it to its key (on a subject with 200,000 such rows,
    /// RETURNING and counting cost 0.8x the DELETEs themselves).
    ExecuteOne,
    /// Execute, and copy what is deleted or overwritten into forget.undo
    /// (deletion id $3) in the same snapshot, so restore_client can undo it.
    /// One key (a recovery record is one subject's): the one-pass deletes
    /// run first as in `ExecuteOne`, each copying its rows in its own
    /// statement.
    KeepUndo,
}

pub struct Rendered {
    pub sql: String,
    /// What each forget_step number of the result means.
    pub steps: Vec<(Oid, Operation)>,
    /// Mode::ExecuteOne and Mode::KeepUndo: (step, statement) run before
    /// `sql`, each deleting the rows of one step (and keeping their undo
    /// copy) and counting them in SPI_processed.
    pub first: Vec<(usize, String)>,
}

/// A plan with more one-pass deletes than this keeps them all in the action
/// statement even for one key: on a wide graph hundreds of small statements
/// would each keep a plan and cost a round through the executor per call,
/// where a big subject's rows are in a few big tables.
pub const SEPARATE_DELETES_AT_MOST: usize = 8;

struct Ctx<'a> {
    plan: &'a Plan,
    graph: &'a Graph,
    tables: &'a HashMap<Oid, Table>,
    subject: &'a SubjectSql<'a>,
}

impl Ctx<'_> {
    fn table(&self, node: usize) -> &Table {
        &self.tables[&self.graph.nodes[node].table]
    }

    fn node_plan(&self, node: usize) -> &NodePlan {
        self.plan
            .node(node)
            .expect("a branch's parent is in the plan")
    }

    /// The alias under which `node`'s CTE exposes `column`.
    fn exposed(&self, node: usize, column: &str) -> String {
        let i = self
            .node_plan(node)
            .exposed
            .iter()
            .position(|c| c == column)
            .expect("exposed column");
        format!("forget_c{i}")
    }
}

/// The statement that carries out (or with `dry_run`, only counts) a plan.
pub fn action_statement(
    plan: &Plan,
    graph: &Graph,
    tables: &HashMap<Oid, Table>,
    subject: &SubjectSql,
    mode: Mode,
) -> Rendered {
    let ctx = Ctx {
        plan,
        graph,
        tables,
        subject,
    };
    let mut ctes: Vec<String> = plan.nodes.iter().map(|n| reach_cte(&ctx, n)).collect();
    // The nodes deleted in one pass (a dry run deletes nothing). Inside the
    // action statement their DELETE returns the subject keys it removed,
    // except when undo data is kept: then it returns the rows, for the copy
    // (delete_cte).
    let one_pass: Vec<usize> = if mode == Mode::DryRun {
        Vec::new()
    } else {
        plan.nodes
            .iter()
            .filter(|n| deleted_in_one_pass(&ctx, n))
            .map(|n| n.node)
            .collect()
    };
    let direct_deletes: Vec<usize> = if mode == Mode::KeepUndo {
        Vec::new()
    } else {
        one_pass.clone()
    };
    // For one key (a recovery record is always one subject's), when few:
    // each a statement of its own.
    let separate: Vec<usize> = if matches!(mode, Mode::ExecuteOne | Mode::KeepUndo)
        && one_pass.len() <= SEPARATE_DELETES_AT_MOST
    {
        one_pass
            .iter()
            .copied()
            .filter(|n| !ctx.table(*n).rules.delete)
            .collect()
    } else {
        Vec::new()
    };
    let mut first = Vec::new();
    if mode != Mode::DryRun {
        for n in &plan.nodes {
            if separate.contains(&n.node) {
                // Its own statement, with its undo copy, below.
                continue;
            }
            let keep = mode == Mode::KeepUndo;
            if keep {
                ctes.extend(undo_update_cte(&ctx, n));
            }
            if direct_deletes.contains(&n.node) {
                ctes.push(direct_delete_cte(&ctx, n));
            } else {
                ctes.extend(delete_cte(&ctx, n, keep));
            }
            ctes.extend(update_cte(&ctx, n));
        }
    }
    let mut steps = Vec::new();
    // A row counts once per operation and subject key, at its first step,
    // however many tables' edges reached it (a partition reached through its
    // own foreign key and through its parent's link, an inheritance child
    // with a foreign key of its own, a table reached by two paths): such
    // steps are counted together, after removing duplicates across them.
    // The others reach one relation each, where a ctid names one row: each
    // is counted on its own (the same row joined through two parent rows
    // once), without sorting every row of a big subject by wide keys, which
    // cost more than its DELETE.
    let all = plan.steps();
    let mut shared = Vec::new();
    let mut direct = Vec::new();
    let mut returned = Vec::new();
    for (node, op) in &all {
        let table = ctx.table(*node);
        let twice = all
            .iter()
            .filter(|(n, o)| o == op && graph.nodes[*n].table == graph.nodes[*node].table)
            .count()
            > 1;
        let n = ctx.node_plan(*node);
        let one_tag = match op {
            Operation::Nullify => n.nullified_edges().len() == 1,
            Operation::Anonymize => n.masked_tags().len() == 1,
            Operation::Delete => true,
        };
        if separate.contains(node) {
            first.push((
                steps.len(),
                separate_delete_statement(&ctx, n, mode == Mode::KeepUndo),
            ));
        } else if direct_deletes.contains(node) {
            // Each row the DELETE removed, once, with its subject key.
            returned.push(format!(
                "SELECT {} AS forget_step, d.forget_root FROM d{node} d",
                steps.len()
            ));
        } else if twice || table.has_descendants() || table.descendant || !one_tag {
            shared.push(count_part(steps.len(), *node, *op, n));
        } else {
            direct.push(count_part(steps.len(), *node, *op, n));
        }
        steps.push((graph.nodes[*node].table, *op));
    }
    let mut bodies = Vec::new();
    if !returned.is_empty() {
        bodies.push(format!(
            "SELECT r.forget_step, r.forget_root, pg_catalog.count(*) FROM (\n{}\n) r GROUP BY r.forget_step, r.forget_root",
            returned.join("\nUNION ALL\n")
        ));
    }
    if !direct.is_empty() {
        bodies.push(format!(
            "SELECT d.forget_step, d.forget_root, pg_catalog.count(*) FROM (SELECT DISTINCT d.forget_step, d.forget_root, d.forget_tid FROM (\n{}\n) d) d \
             GROUP BY d.forget_step, d.forget_root",
            direct.join("\nUNION ALL\n")
        ));
    }
    if !shared.is_empty() {
        bodies.push(format!(
            "SELECT s.forget_step, s.forget_root, pg_catalog.count(*)\n\
             FROM (SELECT DISTINCT ON (d.forget_op, d.forget_root, d.forget_rel, d.forget_tid) d.forget_step, d.forget_root \
             FROM (\n{}\n) d ORDER BY d.forget_op, d.forget_root, d.forget_rel, d.forget_tid, d.forget_step) s\n\
             GROUP BY s.forget_step, s.forget_root",
            shared.join("\nUNION ALL\n")
        ));
    }
    let body = if bodies.is_empty() {
        "SELECT NULL::integer, NULL::text, NULL::bigint WHERE false".to_string()
    } else {
        bodies.join("\nUNION ALL\n")
    };
    Rendered {
        sql: format!("WITH RECURSIVE\n{}\n{}", ctes.join(",\n"), body),
        steps,
        first,
    }
}

/// The statement that returns every reached row as one jsonb document keyed
/// by qualified table name (tables without rows left out).
pub fn export_statement(
    plan: &Plan,
    graph: &Graph,
    tables: &HashMap<Oid, Table>,
    subject: &SubjectSql,
    masks: &crate::model::Masks,
) -> String {
    let ctx = Ctx {
        plan,
        graph,
        tables,
        subject,
    };
    let ctes: Vec<String> = plan.nodes.iter().map(|n| reach_cte(&ctx, n)).collect();
    // Each row read from the relation that holds it (an inheritor's own
    // columns included) and listed once, however many edges reached it:
    // once by its address, so that two equal rows of a table without a key
    // are both listed.
    let parts: Vec<String> = plan
        .nodes
        .iter()
        .flat_map(|n| {
            sources(ctx.tables, ctx.table(n.node))
                .into_iter()
                .map(|src| {
                    // Export masks (of the relation or the table it was
                    // reached as) replace what the document shows for a
                    // column, e.g. NULL for a password hash.
                    let mut shown: Vec<&(String, String)> = masks.for_table(src.table.oid).iter().collect();
                    for m in masks.for_table(src.node_table.oid) {
                        if !shown.iter().any(|(c, _)| c == &m.0) {
                            shown.push(m);
                        }
                    }
                    let row = if shown.is_empty() {
                        "pg_catalog.to_jsonb(t.*)".to_string()
                    } else {
                        let pairs: Vec<String> = shown
                            .iter()
                            .map(|(c, e)| format!("{}, ({e}\n)", literal(c)))
                            .collect();
                        format!(
                            "pg_catalog.to_jsonb(t.*) OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object({})",
                            pairs.join(", ")
                        )
                    };
                    // A partition's row reached both through its
                    // partitioned table and on its own is listed under the
                    // partitioned table's name (rank 0).
                    format!(
                        "SELECT {} AS name, {} AS forget_rank, t.tableoid AS forget_rel, t.ctid AS forget_tid, {row} AS forget_row FROM {} t WHERE {}",
                        literal(&src.table.display_name()),
                        u8::from(src.table.descendant),
                        src.from(),
                        src.reached("t.", n.node, None)
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    format!(
        "WITH RECURSIVE\n{}\nSELECT pg_catalog.jsonb_object_agg(x.name, x.rows) FROM (\n\
         SELECT r.name, pg_catalog.jsonb_agg(r.forget_row ORDER BY r.forget_row) AS rows FROM (\n\
         SELECT DISTINCT ON (u.forget_rel, u.forget_tid) u.name, u.forget_row FROM (\n{}\n) u \
         ORDER BY u.forget_rel, u.forget_tid, u.forget_rank, u.name) r GROUP BY r.name) x",
        ctes.join(",\n"),
        parts.join("\nUNION ALL\n")
    )
}

/// A relation whose rows a node's table reads, queried on its own: the
/// table itself (with its partitions: they have its columns), or for a table
/// with inheritors, ONLY the table and ONLY each inheritor (with its own
/// columns).
struct Source<'a> {
    table: &'a Table,
    /// The node's table, when it is not `table` or has descendants whose
    /// rows the reached addresses may name.
    node_table: &'a Table,
    only: bool,
}

impl Source<'_> {
    fn from(&self) -> String {
        if self.only {
            format!("ONLY {}", qualified(self.table))
        } else {
            qualified(self.table)
        }
    }

    /// `alias` rows of this source reached in node's CTE (with `fate`, when
    /// given): a TID scan of the reached ctids, and, where a ctid may name a
    /// row of another relation, their tableoid too.
    fn reached(&self, alias: &str, node: usize, fate: Option<&str>) -> String {
        let fate = fate
            .map(|f| format!(" AND forget_fate OPERATOR(pg_catalog.=) {}", literal(f)))
            .unwrap_or_default();
        if self.only {
            return format!(
                "{alias}ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT forget_tid FROM n{node} \
                 WHERE forget_rel OPERATOR(pg_catalog.=) {}::pg_catalog.oid{fate}))",
                self.table.oid
            );
        }
        let tids = format!(
            "{alias}ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT forget_tid FROM n{node} WHERE true{fate}))"
        );
        if self.node_table.has_descendants() {
            format!(
                "{tids} AND ({alias}tableoid, {alias}ctid) IN (SELECT forget_rel, forget_tid FROM n{node} WHERE true{fate})"
            )
        } else {
            tids
        }
    }
}

fn sources<'a>(tables: &'a HashMap<Oid, Table>, table: &'a Table) -> Vec<Source<'a>> {
    if table.inheritors.is_empty() {
        return vec![Source {
            table,
            node_table: table,
            only: false,
        }];
    }
    std::iter::once(table)
        .chain(table.inheritors.iter().filter_map(|o| tables.get(o)))
        .map(|t| Source {
            table: t,
            node_table: table,
            only: true,
        })
        .collect()
}

fn columns_of(ctx: &Ctx, n: &NodePlan, alias: &str) -> String {
    let _ = ctx;
    n.exposed
        .iter()
        .enumerate()
        .map(|(i, c)| format!(", {alias}.{} AS forget_c{i}", ident(c)))
        .collect()
}

fn reach_cte(ctx: &Ctx, n: &NodePlan) -> String {
    let mut parts = Vec::new();
    if n.node == 0 {
        parts.push(root_part(ctx, n));
    }
    parts.extend(n.branches.iter().map(|b| branch_part(ctx, n, b)));
    let mut sql = parts.join("\nUNION\n");
    if !n.recursive.is_empty() {
        sql = format!("{sql}\nUNION\n{}", recursive_part(ctx, n));
    }
    format!("n{} AS (\n{}\n)", n.node, sql)
}

fn root_fate(plan: &Plan) -> Fate {
    crate::plan::root_fate(plan.action)
}

fn root_part(ctx: &Ctx, n: &NodePlan) -> String {
    let s = ctx.subject;
    format!(
        "SELECT r.tableoid AS forget_rel, r.ctid AS forget_tid{}, r.{key}::pg_catalog.text AS forget_root, {}::pg_catalog.text AS forget_fate\n\
         FROM {} r WHERE r.{key} OPERATOR(pg_catalog.=) ANY (CAST($1 AS {}[]))",
        columns_of(ctx, n, "r"),
        literal(&root_fate(ctx.plan).tag()),
        qualified(s.table),
        s.key_type,
        key = ident(s.key_column),
    )
}

/// The tag expression and the filter on the parent row's fate for a branch.
fn fate_expression(b: &Branch, parent_alias: &str) -> (String, Option<String>) {
    let tag = |f: Fate| format!("{}::pg_catalog.text", literal(&f.tag()));
    let deleted = format!("{parent_alias}.forget_fate OPERATOR(pg_catalog.=) 'd'");
    match (b.below_deleted, b.below_surviving) {
        (Some(a), Some(s)) if a == s => (tag(a), None),
        (Some(a), Some(s)) => (
            format!("CASE WHEN {deleted} THEN {} ELSE {} END", tag(a), tag(s)),
            None,
        ),
        (Some(a), None) => (tag(a), Some(deleted)),
        (None, Some(s)) => (tag(s), Some(format!("NOT ({deleted})"))),
        (None, None) => ("NULL::pg_catalog.text".into(), Some("false".into())),
    }
}

/// `c.col = p.forget_cK` for every column pair of an edge (see `compare`).
fn match_condition(ctx: &Ctx, b: &Branch, child_alias: &str, parent_alias: &str) -> String {
    let e = &ctx.graph.edges[b.edge];
    e.child_cols
        .iter()
        .zip(&e.parent_cols)
        .map(|(cc, pc)| {
            let value = format!("{parent_alias}.{}", ctx.exposed(e.parent, pc));
            compare(ctx, e, child_alias, cc, pc, &value)
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The child column `cc` matches the parent column `pc`'s `value` (see
/// `matches_in_child_type`; an array link: the value is one of the array's).
fn compare(
    ctx: &Ctx,
    e: &crate::graph::Edge,
    child_alias: &str,
    cc: &str,
    pc: &str,
    value: &str,
) -> String {
    if is_array_link(e) {
        return format!(
            "{value} OPERATOR(pg_catalog.=) ANY ({child_alias}.{})",
            ident(cc)
        );
    }
    let (Some(child), Some(parent)) = (
        ctx.table(e.child).column(cc),
        ctx.table(e.parent).column(pc),
    ) else {
        return "false".into();
    };
    matches_in_child_type(
        &format!("{child_alias}.{}", ident(cc)),
        child,
        parent,
        value,
    )
}

/// `OPERATOR(...)` for the equality of a column's type: its default btree
/// operator class's (citext's for citext), else `pg_catalog.=`.
pub fn equality(column: &Column) -> String {
    format!(
        "OPERATOR({})",
        column.equality.as_deref().unwrap_or("pg_catalog.=")
    )
}

/// `child` (an expression of column `child_column`'s type) equals `value`
/// (of column `parent`'s type). When the types differ (a text column
/// holding an integer id, an int column referencing a bigint key) the value
/// is cast to the child's type, so that an index on the child column
/// serves. A cast that loses information (numeric 1.5 to integer 2,
/// 'abcd' to varchar(3) 'abc') would match another subject's rows, so the
/// value must also survive the cast back unchanged, except where a string
/// is parsed into another type ('007' as integer 7, an upper-case UUID):
/// there several spellings mean one value, as the user's data does. A
/// value that does not fit the child's type at all (bigint 5000000000 for
/// an integer column), or does not cast back, fails the statement with the
/// cast's error rather than match anything.
pub fn matches_in_child_type(
    child: &str,
    child_column: &Column,
    parent: &Column,
    value: &str,
) -> String {
    let (child_type, parent_type) = (&child_column.type_sql, &parent.type_sql);
    if child_type == parent_type {
        return format!("{child} {} {value}", equality(child_column));
    }
    let cast = format!("{child} OPERATOR(pg_catalog.=) CAST({value} AS {child_type})");
    if parent.string && !child_column.string {
        return cast;
    }
    format!(
        "({cast} AND CAST(CAST({value} AS {child_type}) AS {parent_type}) OPERATOR(pg_catalog.=) {value})"
    )
}

/// What FROM adds after a subject table aliased `s`: its key as text,
/// `s_key.forget_key`, kept from being flattened into a cast (OFFSET 0). A
/// comparison with this plain value passes into a security-barrier view
/// (forget.deactivations_current, forget.minimized_current) and its index;
/// a cast inside the view's subquery is not leakproof and would not, and
/// every subject examined would read every row of the view.
pub fn key_as_text(key_column: &str) -> String {
    format!(
        " CROSS JOIN LATERAL (SELECT s.{}::pg_catalog.text AS forget_key OFFSET 0) s_key",
        ident(key_column)
    )
}

/// A link whose child column is an array of the parent column's type.
fn is_array_link(e: &crate::graph::Edge) -> bool {
    !e.owned
        && matches!(
            e.reference.origin,
            crate::model::Origin::Link { array: true, .. }
        )
}

/// Rows of the child table, with the edge's condition applied in a scope that
/// sees only the child's own columns, and their addresses under names none of
/// those columns has (`address_names`).
fn child_source(ctx: &Ctx, b: &Branch) -> String {
    let e = &ctx.graph.edges[b.edge];
    let t = ctx.table(e.child);
    let (rel, tid) = address_names(t);
    let condition = e.reference.condition.as_deref().filter(|_| !e.owned);
    format!(
        "(SELECT tableoid AS {}, ctid AS {}, * FROM {}{})",
        ident(&rel),
        ident(&tid),
        qualified(t),
        condition
            .map(|cond| format!(" WHERE ({cond})"))
            .unwrap_or_default()
    )
}

/// The prefix of the names pg_forget gives its own columns where a table's
/// columns are in scope too (a child row's address in `child_source`, the
/// flags an UPDATE's masks are evaluated beside): `forget_`, with underscores
/// added while a column of the table starts with it, so that no user column
/// makes a name ambiguous and no mask or condition reads one of ours.
fn own_prefix(t: &Table) -> String {
    let mut prefix = "forget_".to_string();
    while t.columns.iter().any(|c| c.name.starts_with(&prefix)) {
        prefix.push('_');
    }
    prefix
}

/// What `child_source` calls a child row's tableoid and ctid.
fn address_names(t: &Table) -> (String, String) {
    let p = own_prefix(t);
    (format!("{p}rel"), format!("{p}tid"))
}

/// `c`'s address columns (see `child_source`) as forget_rel, forget_tid.
fn child_address(ctx: &Ctx, b: &Branch) -> String {
    let (rel, tid) = address_names(ctx.table(ctx.graph.edges[b.edge].child));
    format!(
        "c.{} AS forget_rel, c.{} AS forget_tid",
        ident(&rel),
        ident(&tid)
    )
}

/// In an export, the rows of the subject table (or of its partitions and
/// inheritors) that reference the subject row (a `manager_id`) are other
/// subjects: they are listed, tagged `o`, but nothing is followed below
/// them, neither their own rows nor the rows that reference them (GDPR Art.
/// 15(4): an access request must not disclose other people's data). Actions
/// follow them as PostgreSQL's cascade would.
const OTHER_SUBJECT: &str = "'o'";

fn below_other_subjects(ctx: &Ctx, parent: usize) -> bool {
    ctx.plan.action == crate::model::Action::Export && holds_subjects(ctx, parent)
}

/// Node 0, or a node whose table is a partition or an inheritor of the
/// subject table (reached through a foreign key of its own): its rows are
/// subjects, and in node 0 only the one asked for is not another.
fn holds_subjects(ctx: &Ctx, node: usize) -> bool {
    let (subject, t) = (ctx.table(0), ctx.table(node));
    node == 0 || t.partition_root == subject.oid || subject.inheritors.contains(&t.oid)
}

/// `filter` and, in an export below the subject table, not below another subject.
fn own_rows_only(ctx: &Ctx, parent: usize, filter: Option<String>) -> Option<String> {
    if !below_other_subjects(ctx, parent) {
        return filter;
    }
    let own = format!("p.forget_fate OPERATOR(pg_catalog.<>) {OTHER_SUBJECT}");
    Some(match filter {
        Some(f) => format!("({f}) AND {own}"),
        None => own,
    })
}

/// A branch's fate and filter (`fate_expression`), in an export with the
/// rows of other subjects tagged and not followed (`OTHER_SUBJECT`).
fn branch_fate(ctx: &Ctx, b: &Branch) -> (String, Option<String>) {
    let e = &ctx.graph.edges[b.edge];
    let (fate, filter) = fate_expression(b, "p");
    let filter = own_rows_only(ctx, e.parent, filter);
    if below_other_subjects(ctx, e.child) {
        (format!("{OTHER_SUBJECT}::pg_catalog.text"), filter)
    } else {
        (fate, filter)
    }
}

fn branch_part(ctx: &Ctx, n: &NodePlan, b: &Branch) -> String {
    let e = &ctx.graph.edges[b.edge];
    let (fate, filter) = branch_fate(ctx, b);
    format!(
        "SELECT {}{}, p.forget_root, {fate} AS forget_fate\nFROM {} c JOIN n{} p ON {}{}",
        child_address(ctx, b),
        columns_of(ctx, n, "c"),
        child_source(ctx, b),
        e.parent,
        match_condition(ctx, b, "c", "p"),
        filter.map(|f| format!("\nWHERE {f}")).unwrap_or_default()
    )
}

/// Self-references: one recursive term that joins the rows found so far
/// (referenced once, as PostgreSQL requires) to each self edge laterally.
fn recursive_part(ctx: &Ctx, n: &NodePlan) -> String {
    let inner: Vec<String> = n
        .recursive
        .iter()
        .map(|b| {
            let (fate, filter) = branch_fate(ctx, b);
            format!(
                "SELECT {}{}, {fate} AS forget_fate FROM {} c WHERE {}{}",
                child_address(ctx, b),
                columns_of(ctx, n, "c"),
                child_source(ctx, b),
                match_condition(ctx, b, "c", "p"),
                filter.map(|f| format!(" AND {f}")).unwrap_or_default()
            )
        })
        .collect();
    let cols: String = (0..n.exposed.len())
        .map(|i| format!(", x.forget_c{i}"))
        .collect();
    format!(
        "SELECT x.forget_rel, x.forget_tid{cols}, p.forget_root, x.forget_fate\nFROM n{} p CROSS JOIN LATERAL (\n{}\n) x",
        n.node,
        inner.join("\nUNION ALL\n")
    )
}

fn tags_in(tags: &[String]) -> String {
    tags.iter()
        .map(|t| literal(t))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows of node's table reached to be deleted: a TID scan of the listed
/// ctids (a constant-time lookup each, the list sorted once), and their
/// tableoids where the table reads several relations.
fn is_deleted(table: &Table, alias: &str, node: usize) -> String {
    Source {
        table,
        node_table: table,
        only: false,
    }
    .reached(alias, node, Some("d"))
}

/// A node whose rows can be deleted in one pass, the way a DBA would write
/// it (`DELETE FROM child USING parent rows WHERE child.fk = parent.key`),
/// without first collecting their addresses: every row it reaches is
/// deleted, through one edge without a link condition, from one relation
/// (no partitions, inheritors or ancestors), which no other step reaches and
/// no other node hangs from. On a big subject the collected addresses, the
/// scan by them and the count over them cost twice the DELETE itself.
fn deleted_in_one_pass(ctx: &Ctx, n: &NodePlan) -> bool {
    let t = ctx.table(n.node);
    let only_deleted = n.fates.len() == 1 && n.deletes();
    let one_edge = n.node != 0 && n.branches.len() == 1 && n.recursive.is_empty();
    let plain = one_edge && {
        let e = &ctx.graph.edges[n.branches[0].edge];
        e.reference.condition.is_none() || e.owned
    };
    let table_of = |k: usize| ctx.graph.nodes[k].table;
    let alone = ctx
        .plan
        .nodes
        .iter()
        .all(|o| o.node == n.node || table_of(o.node) != table_of(n.node));
    let a_leaf = ctx.plan.nodes.iter().all(|o| {
        o.branches
            .iter()
            .chain(&o.recursive)
            .all(|b| ctx.graph.edges[b.edge].parent != n.node)
    });
    only_deleted && plain && alone && a_leaf && !t.has_descendants() && !t.descendant
}

/// The DELETE of a node deleted in one pass, joined to its parent's reach
/// CTE as `p`.
fn one_pass_delete(ctx: &Ctx, n: &NodePlan) -> String {
    let b = &n.branches[0];
    let e = &ctx.graph.edges[b.edge];
    let (fate, filter) = fate_expression(b, "p");
    format!(
        "DELETE FROM {} c USING n{} p WHERE {} AND ({fate}) OPERATOR(pg_catalog.=) 'd'{}",
        qualified(ctx.table(n.node)),
        e.parent,
        match_condition(ctx, b, "c", "p"),
        filter.map(|f| format!(" AND {f}")).unwrap_or_default()
    )
}

fn direct_delete_cte(ctx: &Ctx, n: &NodePlan) -> String {
    format!(
        "d{} AS ({} RETURNING p.forget_root)",
        n.node,
        one_pass_delete(ctx, n)
    )
}

/// A one-pass delete as a statement of its own, with the reach CTEs of the
/// nodes above it (only those: the statement is planned and kept once).
/// Below the deleted subject row, when the subject's CTE holds that row
/// alone (no self-reference or other edge adds rows to it), by its key: the
/// rows whose reference holds the key, the way a DBA writes it (the subject
/// row is locked and visible, and the join to it cost a fifth of the DELETE).
///
/// With `keep_undo`, the rows the DELETE returns are copied whole into
/// forget.undo (deletion id $3): exactly what it removed, in the version it
/// removed (a row updated meanwhile is deleted and copied as it is now, or
/// neither, when it no longer belongs to the subject). Copying the rows of
/// the DELETE's snapshot in a CTE of its own cost a fifth less, but then a
/// concurrent update left a copy that did not match what was deleted.
fn separate_delete_statement(ctx: &Ctx, n: &NodePlan, keep_undo: bool) -> String {
    let b = &n.branches[0];
    let e = &ctx.graph.edges[b.edge];
    let key = ctx.subject.key_column;
    let root = ctx.node_plan(0);
    let table = qualified(ctx.table(n.node));
    let child = ctx.table(n.node).column(&e.child_cols[0]);
    let by_key = e.parent == 0
        && root.branches.is_empty()
        && root.recursive.is_empty()
        && root_fate(ctx.plan) == Fate::Delete
        && b.below_deleted == Some(Fate::Delete)
        && e.parent_cols.len() == 1
        && e.parent_cols[0] == key
        && !is_array_link(e)
        && child.map(|c| &c.type_sql) == ctx.subject.table.column(key).map(|c| &c.type_sql);
    // With `keep_undo`: the DELETE returns each row it removed, whole, and
    // the statement copies those; its row count is the copy's, the same.
    let statement = |ctes: Vec<String>, delete: String| {
        if keep_undo {
            let mut ctes = ctes;
            ctes.push(format!(
                "forget_deleted AS ({delete} RETURNING c.tableoid AS forget_rel, pg_catalog.to_jsonb(c.*) AS forget_row)"
            ));
            format!(
                "WITH RECURSIVE\n{}\nINSERT INTO forget.undo_current (deletion_id, tbl, operation, row_data) \
                 SELECT $3, d.forget_rel::pg_catalog.regclass, 'insert', d.forget_row FROM forget_deleted d",
                ctes.join(",\n")
            )
        } else if ctes.is_empty() {
            delete
        } else {
            format!("WITH RECURSIVE\n{}\n{delete}", ctes.join(",\n"))
        }
    };
    if let (true, Some(child)) = (by_key, child) {
        // The key as the subject rows hold it, read once (an InitPlan): with
        // the key column's collation, as the join and ON DELETE CASCADE
        // compare (a nondeterministic collation matches 'abc' to 'ABC'); an
        // array, for a key column that is not unique or a subject table with
        // inheritance children holding the same key.
        let s = ctx.subject;
        let reached = format!(
            "c.{} {} ANY (ARRAY(SELECT r.{k} FROM {} r WHERE r.{k} OPERATOR(pg_catalog.=) ANY (CAST($1 AS {}[]))))",
            ident(&child.name),
            equality(child),
            qualified(s.table),
            s.key_type,
            k = ident(key),
        );
        return statement(Vec::new(), format!("DELETE FROM {table} c WHERE {reached}"));
    }
    let mut above = std::collections::BTreeSet::new();
    let mut todo = vec![e.parent];
    while let Some(node) = todo.pop() {
        if above.insert(node) {
            let p = ctx.node_plan(node);
            todo.extend(p.branches.iter().map(|b| ctx.graph.edges[b.edge].parent));
        }
    }
    let ctes: Vec<String> = ctx
        .plan
        .nodes
        .iter()
        .filter(|p| above.contains(&p.node))
        .map(|p| reach_cte(ctx, p))
        .collect();
    statement(ctes, one_pass_delete(ctx, n))
}

/// The DELETE of a node's rows by address; with `keep`, followed by the
/// copy of each row it deleted, whole, into forget.undo (deletion id $3),
/// named by the relation that held it (a partition, an inheritor). Copied
/// from what the DELETE returns: a row two nodes reach (a partition reached
/// through its parent's link and its own foreign key) is deleted, and so
/// copied, once; a row a trigger or a policy kept is not copied.
fn delete_cte(ctx: &Ctx, n: &NodePlan, keep: bool) -> Vec<String> {
    if !n.deletes() {
        return Vec::new();
    }
    let t = ctx.table(n.node);
    if !keep {
        return vec![format!(
            "d{} AS (DELETE FROM {} WHERE {})",
            n.node,
            qualified(t),
            is_deleted(t, "", n.node)
        )];
    }
    // A table with inheritance children: each relation on its own (ONLY),
    // so that the copy of a child's row has the child's own columns too (a
    // DELETE on the parent returns the parent's columns only). Partitions
    // have their parent's columns: one DELETE on the parent returns them.
    let deletes: Vec<(String, String)> = if t.inheritors.is_empty() {
        vec![(qualified(t), is_deleted(t, "t.", n.node))]
    } else {
        sources(ctx.tables, t)
            .iter()
            .map(|src| (src.from(), src.reached("t.", n.node, Some("d"))))
            .collect()
    };
    deletes
        .into_iter()
        .enumerate()
        .flat_map(|(i, (from, reached))| {
            [
                format!(
                    "d{node}_{i} AS (DELETE FROM {from} t WHERE {reached} \
                     RETURNING t.tableoid AS forget_rel, pg_catalog.to_jsonb(t.*) AS forget_row)",
                    node = n.node,
                ),
                format!(
                    "kd{node}_{i} AS (INSERT INTO forget.undo_current (deletion_id, tbl, operation, row_data) \
                     SELECT $3, d.forget_rel::pg_catalog.regclass, 'insert', d.forget_row FROM d{node}_{i} d)",
                    node = n.node,
                ),
            ]
        })
        .collect()
}

/// One UPDATE per table combines nullified references, masks and the
/// subject's marks, each applied only to the rows whose fate asks for it.
type Assignments = Vec<(String, Vec<(String, String)>)>;

/// The columns a table's UPDATE sets, each with its (flag, value) cases, and
/// the fate tags involved.
fn assignments(ctx: &Ctx, n: &NodePlan) -> (Assignments, Vec<String>) {
    let mut assignments: Assignments = Vec::new();
    let mut assign = |col: &str, flag: String, value: String| match assignments
        .iter_mut()
        .find(|(c, _)| c == col)
    {
        Some((_, cases)) => cases.push((flag, value)),
        None => assignments.push((col.to_string(), vec![(flag, value)])),
    };
    let mut flags = Vec::new();
    let p = own_prefix(ctx.table(n.node));
    for e in n.nullified_edges() {
        let tag = Fate::Nullify(e).tag();
        let edge = &ctx.graph.edges[e];
        for (col, pc) in edge.child_cols.iter().zip(&edge.parent_cols) {
            // An array keeps its other elements, in their order: only the
            // values of the parent rows reached (the subjects') go.
            let value = if is_array_link(edge) {
                format!(
                    "ARRAY(SELECT forget_u.forget_e FROM pg_catalog.unnest(forget_t.{c}) WITH ORDINALITY AS forget_u(forget_e, forget_i) \
                     WHERE forget_u.forget_e IS NULL OR NOT (forget_u.forget_e OPERATOR(pg_catalog.=) ANY \
                     (ARRAY(SELECT p.{v} FROM n{parent} p))) ORDER BY forget_u.forget_i)",
                    c = ident(col),
                    v = ctx.exposed(edge.parent, pc),
                    parent = edge.parent
                )
            } else {
                "NULL".into()
            };
            assign(col, format!("f.{p}{tag}"), value);
        }
        flags.push(tag);
    }
    for e in n.kept_unlinked_edges() {
        let tag = Fate::MaskNullify(e).tag();
        for col in &ctx.graph.edges[e].child_cols {
            assign(col, format!("f.{p}{tag}"), "NULL".into());
        }
        for (col, expr) in &n.masks {
            assign(col, format!("f.{p}{tag}"), format!("({expr})"));
        }
        flags.push(tag);
    }
    if n.fates.contains(&Fate::Mask) {
        for (col, expr) in &n.masks {
            assign(col, format!("f.{p}m"), format!("({expr})"));
        }
        if n.node == 0 {
            let marks = &ctx.plan.marks;
            if let Some((col, ty)) = &marks.deactivate {
                assign(col, format!("f.{p}m"), format!("CAST($2 AS {ty})"));
            }
            if let Some(col) = &marks.minimized_column {
                assign(col, format!("f.{p}m"), "pg_catalog.now()".into());
            }
        }
        flags.push("m".into());
    }
    (assignments, flags)
}

/// One UPDATE per table: each row once (grouped by ctid), not when it is
/// also deleted, and only when one of its fates changes it. The join on ctid
/// is a TID probe per row; a `ctid = ANY(array)` filter on top of it would
/// scan the array for every row, quadratic in the size of a cleanup batch.
fn update_cte(ctx: &Ctx, n: &NodePlan) -> Option<String> {
    let (assignments, flags) = assignments(ctx, n);
    if assignments.is_empty() {
        return None;
    }
    let sets: Vec<String> = assignments
        .iter()
        .map(|(col, cases)| {
            let whens: String = cases
                .iter()
                .map(|(f, v)| format!(" WHEN {f} THEN {v}"))
                .collect();
            format!(
                "{} = CASE{whens} ELSE forget_t.{} END",
                ident(col),
                ident(col)
            )
        })
        .collect();
    let p = own_prefix(ctx.table(n.node));
    let flag_cols: String = flags
        .iter()
        .map(|t| {
            format!(
                ", pg_catalog.bool_or(forget_fate OPERATOR(pg_catalog.=) {}) AS {p}{t}",
                literal(t)
            )
        })
        .collect();
    Some(format!(
        "u{node} AS (UPDATE {} AS forget_t SET {}\n\
         FROM {} f\n\
         WHERE forget_t.ctid OPERATOR(pg_catalog.=) f.{p}tid \
         AND forget_t.tableoid OPERATOR(pg_catalog.=) f.{p}rel)",
        qualified(ctx.table(n.node)),
        sets.join(", "),
        rows_to_update(n.node, &p, &flags, &flag_cols),
        node = n.node
    ))
}

/// The rows of node's table that its UPDATE changes, one per address:
/// reached with one of `flags` and not also deleted. `extra` adds aggregate
/// columns. The UPDATE and its undo copy both join this on the address, so
/// they act on the same rows, each found by a TID probe.
/// Its columns are named with `prefix` (`own_prefix` of the table).
fn rows_to_update(node: usize, prefix: &str, flags: &[String], extra: &str) -> String {
    format!(
        "(SELECT forget_rel AS {prefix}rel, forget_tid AS {prefix}tid{extra} FROM n{node} GROUP BY forget_rel, forget_tid \
         HAVING NOT pg_catalog.bool_or(forget_fate OPERATOR(pg_catalog.=) 'd') \
         AND pg_catalog.bool_or(forget_fate OPERATOR(pg_catalog.=) ANY (ARRAY[{}])))",
        tags_in(flags)
    )
}

fn count_part(step: usize, node: usize, op: Operation, n: &NodePlan) -> String {
    let tags: Vec<String> = match op {
        Operation::Delete => vec!["d".into()],
        Operation::Nullify => n
            .nullified_edges()
            .into_iter()
            .map(|e| Fate::Nullify(e).tag())
            .collect(),
        Operation::Anonymize => n.masked_tags(),
    };
    let tags = tags_in(&tags);
    let op_name = op.name();
    if op == Operation::Delete {
        return format!(
            "SELECT {step} AS forget_step, '{op_name}' AS forget_op, y.forget_root, y.forget_rel, y.forget_tid FROM n{node} y \
             WHERE y.forget_fate OPERATOR(pg_catalog.=) ANY (ARRAY[{tags}])"
        );
    }
    // A row that is also deleted (reached another way) is not updated. A
    // window over the CTE says so in one sort: a NOT EXISTS against the CTE
    // would be a nested loop, quadratic in the rows of a cleanup batch.
    format!(
        "SELECT {step} AS forget_step, '{op_name}' AS forget_op, y.forget_root, y.forget_rel, y.forget_tid \
         FROM (SELECT forget_root, forget_rel, \
         forget_tid, forget_fate, \
         pg_catalog.bool_or(forget_fate OPERATOR(pg_catalog.=) 'd') OVER (PARTITION BY forget_rel, forget_tid) AS forget_gone \
         FROM n{node}) y WHERE y.forget_fate OPERATOR(pg_catalog.=) ANY (ARRAY[{tags}]) AND NOT y.forget_gone"
    )
}

fn json_object_of(alias: &str, columns: &[String]) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("{}, {alias}.{}", literal(c), ident(c)))
        .collect();
    format!("pg_catalog.jsonb_build_object({})", pairs.join(", "))
}

/// Copies rows about to be updated (primary key and the old values of the
/// columns that change) into forget.undo, in the UPDATE's snapshot. Deleted
/// rows are copied from what their DELETE returns (`delete_cte`).
fn undo_update_cte(ctx: &Ctx, n: &NodePlan) -> Option<String> {
    let t = ctx.table(n.node);
    let (assignments, flags) = assignments(ctx, n);
    if assignments.is_empty() {
        return None;
    }
    let changed: Vec<String> = assignments.iter().map(|(c, _)| c.clone()).collect();
    let p = own_prefix(t);
    Some(format!(
        "ku{node} AS (INSERT INTO forget.undo_current (deletion_id, tbl, operation, row_data) \
             SELECT $3, t.tableoid::pg_catalog.regclass, 'update', \
             pg_catalog.jsonb_build_object('key', {}, 'old', {}) FROM {} t \
             JOIN {} f ON t.ctid OPERATOR(pg_catalog.=) f.{p}tid \
             AND t.tableoid OPERATOR(pg_catalog.=) f.{p}rel)",
        json_object_of("t", &t.primary_key),
        json_object_of("t", &changed),
        qualified(t),
        rows_to_update(n.node, &p, &flags, ""),
        node = n.node,
    ))
}

/// What a restore puts back into one relation (the one that held the rows).
pub struct RestoreTable<'a> {
    pub table: &'a Table,
    pub inserts: bool,
    /// Columns whose old values are set again.
    pub updated_columns: Vec<String>,
    /// Columns that find an updated row again (the primary key of the table
    /// the action changed, as the undo data recorded it).
    pub key_columns: Vec<String>,
}

/// One statement that puts back deleted rows and old values for deletion
/// $1; foreign keys are checked at its end, so order does not matter, and a
/// conflict (a unique value taken meanwhile) fails it whole. Deleted rows go
/// back into the relation that held them, each copy once (with `rows_once`
/// false, undo data of 0.1.0's format: equal copies once, since two edges
/// may have reached one row), without their generated columns (PostgreSQL
/// computes them again); identity columns keep their values.
pub fn restore_statement(tables: &[RestoreTable], rows_once: bool) -> String {
    let mut ctes = Vec::new();
    let mut counts = Vec::new();
    for r in tables {
        let (t, oid) = (qualified(r.table), r.table.oid);
        let undo = |op: &str| {
            format!(
                "u.deletion_id OPERATOR(pg_catalog.=) $1 AND u.tbl OPERATOR(pg_catalog.=) {oid}::pg_catalog.oid \
                 AND u.operation OPERATOR(pg_catalog.=) '{op}'"
            )
        };
        if r.inserts {
            let columns: Vec<String> = r
                .table
                .columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| ident(&c.name))
                .collect();
            let values: Vec<String> = columns.iter().map(|c| format!("x.{c}")).collect();
            // Undo data of format 1 (0.1.0) may hold a row twice, reached
            // by two paths: equal copies are taken once, as 0.1.0 did. Of
            // format 2 each copy is a row (two equal rows of a table without
            // a primary key are two), and no sort is needed.
            let distinct = if rows_once { "" } else { "DISTINCT " };
            ctes.push(format!(
                "ri{oid} AS (INSERT INTO {t} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM \
                 (SELECT {distinct}u.row_data FROM forget.undo_current u WHERE {}) d \
                 CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::{t}, d.row_data) x RETURNING 1)",
                columns.join(", "),
                values.join(", "),
                undo("insert")
            ));
            counts.push(format!(
                "SELECT {oid}::pg_catalog.oid, 'insert'::pg_catalog.text, (SELECT pg_catalog.count(*) FROM ri{oid})"
            ));
        }
        if !r.updated_columns.is_empty() {
            let sets: Vec<String> = r
                .updated_columns
                .iter()
                .map(|c| format!("{} = o.{}", ident(c), ident(c)))
                .collect();
            let keys: Vec<String> = r
                .key_columns
                .iter()
                .map(|c| format!("t.{} OPERATOR(pg_catalog.=) k.{}", ident(c), ident(c)))
                .collect();
            // ONLY: the relation that held the row, not its inheritors.
            let only = if r.table.partitioned { "" } else { "ONLY " };
            ctes.push(format!(
                "ru{oid} AS (UPDATE {only}{t} t SET {} FROM forget.undo_current u \
                 CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::{t}, u.row_data -> 'old') o \
                 CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::{t}, u.row_data -> 'key') k \
                 WHERE {} AND {} RETURNING 1)",
                sets.join(", "),
                undo("update"),
                keys.join(" AND ")
            ));
            counts.push(format!(
                "SELECT {oid}::pg_catalog.oid, 'update'::pg_catalog.text, (SELECT pg_catalog.count(*) FROM ru{oid})"
            ));
        }
    }
    format!(
        "WITH {}\n{}",
        ctes.join(",\n"),
        counts.join("\nUNION ALL\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::build;
    use crate::graph::tests::fk;
    use crate::model::{Action, Column, Masks, OnDelete, Policies};
    use crate::plan::{plan, Settings, SubjectMarks};

    fn table(oid: Oid, name: &str, cols: &[&str]) -> Table {
        Table {
            oid,
            schema: "public".into(),
            name: name.into(),
            columns: cols
                .iter()
                .map(|c| Column {
                    name: c.to_string(),
                    type_sql: "bigint".into(),
                    not_null: false,
                    generated: false,
                    string: false,
                    equality: None,
                })
                .collect(),
            primary_key: vec!["id".into()],
            partitioned: false,
            row_security: false,
            inheritors: Vec::new(),
            descendant: false,
            partition_root: oid,
            rules: Default::default(),
        }
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(literal(r"it's \ ok"), r"E'it''s \\ ok'");
    }

    #[test]
    fn a_delete_renders_one_statement_with_a_dml_cte_per_table() {
        let g = build(
            1,
            &[
                fk(2, "client_id", 1, OnDelete::NoAction),
                fk(3, "client_id", 1, OnDelete::SetNull),
            ],
        );
        let tables = HashMap::from([
            (1, table(1, "Clients", &["id"])),
            (2, table(2, "invoices", &["id", "client_id"])),
            (3, table(3, "notes", &["id", "client_id"])),
        ]);
        let (p, m) = (Policies::default(), Masks::default());
        let pl = plan(
            &g,
            &Settings {
                action: Action::Delete,
                policies: &p,
                masks: &m,
                marks: SubjectMarks::default(),
            },
        );
        let subject = SubjectSql {
            table: &tables[&1],
            key_column: "id",
            key_type: "bigint",
        };
        let r = action_statement(&pl, &g, &tables, &subject, Mode::Execute);
        assert!(r.sql.contains(r#"DELETE FROM "public"."Clients""#));
        assert!(r.sql.contains(r#"DELETE FROM "public"."invoices""#));
        assert!(r.sql.contains(r#"UPDATE "public"."notes" AS forget_t SET "client_id" = CASE WHEN f.forget_n1 THEN NULL"#));
        assert_eq!(r.steps.len(), 3);
        let dry = action_statement(&pl, &g, &tables, &subject, Mode::DryRun);
        assert!(!dry.sql.contains("DELETE") && !dry.sql.contains("UPDATE"));
        assert_eq!(dry.steps, r.steps);
        assert!(r.first.is_empty() && dry.first.is_empty());
    }
}
