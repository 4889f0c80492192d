//! check(): the configuration doctor. Every finding comes with a concrete
//! hint: the CREATE INDEX or forget.mask call to run.

use crate::catalog;
use crate::cleanup;
use crate::errors::spi;
use crate::graph::{self, Graph};
use crate::model::{Action, OnDelete, Origin, Policy, Reference, Table};
use crate::plan;
use crate::render::{ident, literal, qualified};
use pgrx::prelude::*;
use serde_json::Value;
use std::collections::HashMap;

type Finding = (String, String, String, String);

fn finding(severity: &str, object: String, problem: String, hint: String) -> Finding {
    (severity.to_string(), object, problem, hint)
}

/// Columns whose names suggest personal data.
pub fn looks_personal(column: &str) -> bool {
    let c = column.to_ascii_lowercase();
    let words = [
        "email",
        "e_mail",
        "phone",
        "mobile",
        "fax",
        "firstname",
        "first_name",
        "lastname",
        "last_name",
        "fullname",
        "full_name",
        "surname",
        "street",
        "address",
        "postcode",
        "postal",
        "zip",
        "birth",
        "dob",
        "iban",
        "ip_addr",
        "ip_address",
    ];
    words.iter().any(|w| c.contains(w)) || c == "name" || c == "ip" || c.ends_with("_ip")
}

/// Whether an index on `table` starts with exactly the columns `cols`.
fn indexed(table: u32, cols: &[String]) -> bool {
    spi(crate::catalog::read_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND
            (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname)
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = i.indrelid
                AND a.attnum = ANY ((i.indkey::pg_catalog.int2[])[0:pg_catalog.cardinality($2) - 1]))
            = (SELECT pg_catalog.array_agg(c ORDER BY c) FROM pg_catalog.unnest($2) c))",
        &[pg_sys::Oid::from(table).into(), cols.to_vec().into()],
    ))
    .unwrap_or(false)
}

fn missing_indexes(g: &Graph, tables: &HashMap<u32, Table>) -> Vec<Finding> {
    g.edges
        .iter()
        .filter(|e| !e.owned)
        .filter(|e| !indexed(e.reference.child, &e.child_cols))
        .map(|e| {
            let t = &tables[&e.reference.child];
            let cols: Vec<String> = e.child_cols.iter().map(|c| ident(c)).collect();
            finding(
                "warning",
                format!("{}({})", t.display_name(), e.child_cols.join(", ")),
                "no index on this referencing column: every action scans the table".into(),
                format!("CREATE INDEX ON {} ({});", qualified(t), cols.join(", ")),
            )
        })
        .collect()
}

fn policy_problems(g: &Graph, tables: &HashMap<u32, Table>) -> Vec<Finding> {
    let mut out = Vec::new();
    for action in [Action::Delete, Action::Anonymize, Action::Minimize] {
        let policies = catalog::policies(action);
        for e in g.edges.iter().filter(|e| !e.owned) {
            let t = &tables[&e.reference.child];
            let object = format!("{}({})", t.display_name(), e.child_cols.join(", "));
            let policy = plan::effective_policy(e, action, &policies);
            // On an array link, nullify removes the subject's element.
            let array = matches!(e.reference.origin, Origin::Link { array: true, .. });
            if policy == Policy::Nullify
                && !array
                && e.child_cols
                    .iter()
                    .any(|c| t.column(c).is_some_and(|x| x.not_null))
            {
                out.push(finding(
                    "error",
                    object.clone(),
                    format!("{} would nullify a NOT NULL column", action.name()),
                    format!(
                        "SELECT forget.set_policy({}, {}, {}, 'delete');",
                        literal(&t.display_name()),
                        literal(&e.child_cols[0]),
                        literal(action.name())
                    ),
                ));
            }
            // A delete that only unlinks rows leaves what they say about the
            // subject where no later export or delete can find it.
            if action == Action::Delete && policy == Policy::Nullify && !array {
                let personal: Vec<&str> = t
                    .columns
                    .iter()
                    .filter(|c| {
                        looks_personal(&c.name) && !c.generated && !e.child_cols.contains(&c.name)
                    })
                    .map(|c| c.name.as_str())
                    .collect();
                if !personal.is_empty() {
                    out.push(finding(
                        "warning",
                        object.clone(),
                        format!(
                            "a delete sets this reference to NULL and keeps the rows, with their personal columns ({}): no later export or delete of the subject finds them",
                            personal.join(", ")
                        ),
                        format!(
                            "SELECT forget.set_policy({}, {}, 'delete', 'delete');",
                            literal(&t.display_name()),
                            literal(&e.child_cols[0])
                        ),
                    ));
                }
            }
            if action == Action::Delete && policy == Policy::Keep {
                if let Origin::ForeignKey {
                    name, on_delete, ..
                } = &e.reference.origin
                {
                    let problem = if *on_delete == OnDelete::Cascade {
                        format!("kept by the delete policy, but foreign key {name} cascades: PostgreSQL deletes these rows anyway")
                    } else {
                        format!("kept by the delete policy: foreign key {name} makes every delete of a subject with such rows fail")
                    };
                    out.push(finding(
                        "error",
                        object,
                        problem,
                        format!("SELECT forget.set_policy({}, {}, 'delete', 'delete');  -- or 'nullify'", literal(&t.display_name()), literal(&e.child_cols[0])),
                    ));
                }
            }
        }
    }
    out
}

/// Tables whose rows outlive an anonymization (the subject's, and those its
/// edges do not delete) and their personal-looking columns without a mask.
fn unmasked_columns(g: &Graph, tables: &HashMap<u32, Table>) -> Vec<Finding> {
    let policies = catalog::policies(Action::Anonymize);
    let masks = catalog::masks(Action::Anonymize);
    let mut out = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let survives = i == 0
            || g.incoming(i).any(|(_, e)| {
                plan::effective_policy(e, Action::Anonymize, &policies) != Policy::Delete
            });
        if !survives {
            continue;
        }
        let t = &tables[&node.table];
        let masked: Vec<&String> = masks.for_table(node.table).iter().map(|(c, _)| c).collect();
        // check() only reads (it works in a read-only transaction and on a
        // standby): masks are checked without trying them on rows.
        let trial = false;
        for col in t
            .columns
            .iter()
            .filter(|c| looks_personal(&c.name) && !c.generated && !masked.contains(&&c.name))
        {
            // Only columns of a type that can hold such data: a boolean or a
            // timestamp named after an email (email_valid, email_confirmed_at)
            // is about the address, not the address itself.
            let candidates = mask_candidates(&col.name, &col.type_sql);
            if candidates.is_empty() {
                continue;
            }
            // The first suggestion that validates for this column: the hint
            // is a statement that works when run. Suggestions name only
            // pg_catalog's functions and qualified ones (forget.*), so they
            // are checked under pg_catalog alone: nothing another role put
            // in a schema runs as the role checking them.
            let works = candidates
                .iter()
                .find(|expr| mask_works(t.oid, &col.name, expr, "pg_catalog", trial));
            let hint = match works {
                Some(expr) => format!(
                    "SELECT forget.mask({}, {}, {});",
                    literal(&t.display_name()),
                    literal(&col.name),
                    literal(expr)
                ),
                None => format!(
                    "no suggested mask fits {} {}: write one (SELECT forget.mask(...))",
                    col.name, col.type_sql
                ),
            };
            out.push(finding(
                "warning",
                format!("{}.{}", t.display_name(), col.name),
                "looks personal and has no anonymize mask".into(),
                hint,
            ));
        }
    }
    out
}

/// Masks to suggest for a personal-looking column, best first, by its type
/// (and length limit); none for types that cannot hold such data.
fn mask_candidates(column: &str, type_sql: &str) -> Vec<String> {
    let text_like = ["text", "character varying", "character", "citext", "name"]
        .iter()
        .any(|t| type_sql == *t || type_sql.starts_with(&format!("{t}(")));
    // varchar(n), char(n): what fits in n characters.
    let limit: Option<usize> = type_sql
        .split_once('(')
        .and_then(|(_, rest)| rest.trim_end_matches(')').parse().ok());
    let c = column.to_ascii_lowercase();
    let owned = |list: &[&str]| list.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if text_like {
        match limit {
            Some(n) => {
                let mut out = owned(&["NULL"]);
                if !c.contains("mail") && n >= 9 {
                    out.push("'Anonymous'".into());
                }
                out.push(format!("pg_catalog.left(forget.random_string(), {n})"));
                out.push("''".into());
                out
            }
            None if c.contains("mail") => owned(&["forget.random_email()", "NULL"]),
            None => owned(&["NULL", "'Anonymous'", "forget.random_string()", "''"]),
        }
    } else if type_sql == "inet" || type_sql == "cidr" {
        owned(&["NULL", "'0.0.0.0'"])
    } else if type_sql == "date" || type_sql.starts_with("timestamp") {
        if c.contains("birth") || c == "dob" || c.ends_with("_dob") {
            owned(&["NULL", "'1900-01-01'"])
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    }
}

/// Whether a mask can work for a column, checked as every role that would
/// run it.
fn mask_works(table: u32, col: &str, expression: &str, path: &str, trial: bool) -> bool {
    crate::config::checkers_of_table(table)
        .into_iter()
        .all(|(role, subject)| {
            crate::identity::as_run_as(role, &subject, None, path, || {
                crate::config::mask_problem(table, col, expression, path, trial).is_none()
            })
        })
}

fn broken_masks() -> Vec<Finding> {
    // check() only reads (it works in a read-only transaction and on a
    // standby): masks are checked without trying them on rows.
    let trial = false;
    let masks: Vec<(u32, String, String, String, String)> = Spi::connect(|client| {
        spi(client.select(
            "SELECT m.tbl::pg_catalog.oid, m.col::pg_catalog.text, m.action, m.search_path, m.expression
             FROM forget.masks m ORDER BY m.tbl::pg_catalog.text, 2, 3",
            None,
            &[],
        ))
        .map(|r| {
            (
                spi(r.get::<pg_sys::Oid>(1)).map(u32::from).unwrap_or(0),
                spi(r.get(2)).unwrap_or_default(),
                spi(r.get(3)).unwrap_or_default(),
                spi(r.get(4)).unwrap_or_default(),
                spi(r.get(5)).unwrap_or_default(),
            )
        })
        .collect()
    });
    // Each mask is checked as every role that runs it.
    let broken: Vec<(u32, String, String, String, String)> = masks
        .into_iter()
        .filter_map(|(oid, col, action, path, expression)| {
            crate::config::checkers_of_table(oid)
                .into_iter()
                .find_map(|(role, subject)| {
                    crate::identity::as_run_as(role, &subject, None, &path, || {
                        crate::config::mask_problem(oid, &col, &expression, &path, trial)
                    })
                })
                .map(|problem| (oid, col, action, path, problem))
        })
        .collect();
    let tables = catalog::tables(&broken.iter().map(|b| b.0).collect::<Vec<_>>());
    broken
        .into_iter()
        .map(|(oid, col, action, path, problem)| {
            let t = tables.get(&oid);
            let name = t.map(Table::display_name).unwrap_or_else(|| oid.to_string());
            let column = t.and_then(|t| t.column(&col));
            // A replacement that works for the column, if it still exists.
            let mut candidates = column
                .map(|c| mask_candidates(&c.name, &c.type_sql))
                .unwrap_or_default();
            candidates.extend(["NULL", "forget.random_string()", "'0'", "0", "false"].map(String::from));
            let works = column.and_then(|_| {
                candidates
                    .into_iter()
                    .find(|e| mask_works(oid, &col, e, &path, trial))
            });
            let hint = match works {
                Some(expr) => format!(
                    "SELECT forget.mask({}, {}, {}, {});",
                    literal(&name),
                    literal(&col),
                    literal(&expr),
                    literal(&action)
                ),
                None => format!(
                    "DELETE FROM forget.masks WHERE tbl = {}::regclass AND col = {} AND action = {};",
                    literal(&name),
                    literal(&col),
                    literal(&action)
                ),
            };
            finding(
                "error",
                format!("mask {name}.{col} ({action})"),
                format!("cannot work: {problem}"),
                hint,
            )
        })
        .collect()
}

/// A table read again for every row of an outer scan: whole, or all the
/// rows an index selects by something other than the outer row.
#[derive(Debug, PartialEq)]
struct PerRowScan {
    table: String,
    /// The index condition of an index scan that does not use the outer
    /// row (None: the whole table is read).
    selected_by: Option<String>,
    /// What relates its rows to the outer row: its filter, or the join
    /// filter of the nested loop it is the inner side of.
    conditions: Vec<String>,
    /// Columns of the table compared for equality with another table's.
    columns: Vec<String>,
}

/// From an EXPLAIN (FORMAT JSON, VERBOSE) plan, the tables read again for
/// every outer row: sequential scans on the inner side of a nested loop or
/// in a subplan run per row (a hashed subplan reads its table once), the
/// tables under a Materialize there (its rows are all compared again), and
/// index scans there that compare with the outer row only in a filter (the
/// index serves something else, so every row it selects is read).
fn per_row_scans(explain: &Value) -> Vec<PerRowScan> {
    let text = explain.to_string();
    let mut out = Vec::new();
    for top in explain.as_array().into_iter().flatten() {
        walk(&top["Plan"], None, &text, &mut out);
    }
    out
}

fn field(node: &Value, name: &str) -> String {
    node[name].as_str().unwrap_or_default().to_string()
}

fn children(node: &Value) -> impl Iterator<Item = &Value> {
    node["Plans"].as_array().into_iter().flatten()
}

fn scan(node: &Value, conditions: Vec<String>) -> PerRowScan {
    PerRowScan {
        selected_by: None,
        table: format!(
            "{}.{}",
            ident(&field(node, "Schema")),
            ident(&field(node, "Relation Name"))
        ),
        columns: equality_columns(&field(node, "Alias"), &conditions.join(" AND ")),
        conditions,
    }
}

/// The scans of tables in a plan subtree.
fn scans_under(node: &Value) -> Vec<&Value> {
    let own = node["Relation Name"].is_string().then_some(node);
    own.into_iter()
        .chain(children(node).flat_map(scans_under))
        .collect()
}

/// `per_row` is None while the node runs once, else the join filter that
/// relates it to the outer row (when a nested loop's).
fn walk(node: &Value, per_row: Option<Vec<String>>, text: &str, out: &mut Vec<PerRowScan>) {
    let kind = field(node, "Node Type");
    if let Some(above) = &per_row {
        let filter = node["Filter"].as_str().map(str::to_string);
        let conditions: Vec<String> = above.iter().cloned().chain(filter).collect();
        if kind == "Seq Scan" {
            out.push(scan(node, conditions));
        } else if kind == "Index Scan" || kind == "Index Only Scan" {
            let found = scan(node, conditions);
            if !found.columns.is_empty() {
                out.push(PerRowScan {
                    selected_by: node["Index Cond"].as_str().map(str::to_string),
                    ..found
                });
            }
        }
        if kind == "Materialize" {
            // Its subtree runs once; its rows are what every outer row is
            // compared with. The tables to index are those the join compares.
            let scans: Vec<PerRowScan> = scans_under(node)
                .into_iter()
                .map(|n| scan(n, above.clone()))
                .collect();
            let (compared, others): (Vec<_>, Vec<_>) =
                scans.into_iter().partition(|s| !s.columns.is_empty());
            out.extend(if compared.is_empty() {
                others.into_iter().take(1).collect()
            } else {
                compared
            });
            for child in children(node) {
                walk(child, None, text, out);
            }
            return;
        }
    }
    for child in children(node) {
        let relation = field(child, "Parent Relationship");
        let subplan = field(child, "Subplan Name");
        let per_row_subplan =
            relation == "SubPlan" && !text.contains(&format!("(hashed {subplan})"));
        // The inner side of a nested loop runs per outer row and is related
        // to it by the loop's join filter; a subplan run per row by its own.
        let child_per_row = if kind == "Nested Loop" && relation == "Inner" {
            Some(
                node["Join Filter"]
                    .as_str()
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
            )
        } else if per_row_subplan {
            Some(Vec::new())
        } else {
            per_row.clone()
        };
        walk(child, child_per_row, text, out);
    }
}

/// Columns of `alias` compared for equality with another table's column in
/// EXPLAIN's deparsed conditions, such as "(r.person_id = s.id)".
fn equality_columns(alias: &str, conditions: &str) -> Vec<String> {
    let mine = |side: &str| {
        side.strip_prefix(alias)
            .and_then(|rest| rest.strip_prefix('.'))
            .map(str::to_string)
    };
    // Another table's column: alias.column, not a literal such as 'a.b';
    // or $n, the outer row's value passed into a subplan.
    let theirs = |side: &str| {
        let param = side.len() > 1
            && side.starts_with('$')
            && side[1..].bytes().all(|b| b.is_ascii_digit());
        param
            || (!side.starts_with('\'')
                && !side.contains(' ')
                && side.contains('.')
                && mine(side).is_none())
    };
    let mut columns: Vec<String> = Vec::new();
    for part in conditions.split(['(', ')']) {
        let Some((left, right)) = part.split_once(" = ") else {
            continue;
        };
        let (left, right) = (left.trim(), right.trim());
        let column = match (mine(left), mine(right)) {
            (Some(c), None) if theirs(right) => c,
            (None, Some(c)) if theirs(left) => c,
            _ => continue,
        };
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    columns
}

/// Whether an index already starts with the compared columns: the planner
/// then read the table whole only because it is small today.
fn already_indexed(scan: &PerRowScan) -> bool {
    if scan.columns.is_empty() {
        return false;
    }
    let oid = spi(crate::catalog::read_one::<pg_sys::Oid>(
        "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
        &[scan.table.as_str().into()],
    ));
    let columns: Vec<String> = scan.columns.iter().map(|c| unquoted(c)).collect();
    oid.is_some_and(|oid| indexed(oid.to_u32(), &columns))
}

/// An identifier as EXPLAIN prints it, without its quotes.
fn unquoted(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_string(),
    }
}

/// Cleanup conditions (and minimize_when) that read a table whole for every
/// subject examined: a batch then costs rows examined × table size.
fn slow_cleanup_conditions(subject: &str) -> Vec<Finding> {
    let plan = match cleanup::candidate_plan(subject) {
        None => return Vec::new(),
        Some(Ok(plan)) => plan,
        Some(Err(problem)) => {
            return vec![finding(
                "error",
                format!("cleanup conditions of {subject}"),
                format!("no longer plan: {problem}"),
                "redeclare it: forget.add_cleanup_condition (same name) or forget.set_cleanup (minimize_when); or forget.drop_cleanup_condition".into(),
            )]
        }
    };
    // One finding per table and columns, however many conditions read it.
    let mut seen = Vec::new();
    per_row_scans(&plan)
        .into_iter()
        .filter(|scan| !already_indexed(scan))
        .filter(|scan| {
            let key = (scan.table.clone(), scan.columns.clone());
            let new = !seen.contains(&key);
            seen.push(key);
            new
        })
        .map(|scan| {
            let conditions = scan.conditions.join(" AND ");
            let hint = if scan.columns.is_empty() {
                format!("index the columns of {} that these conditions compare with the {subject}: {conditions}", scan.table)
            } else {
                format!("CREATE INDEX ON {} ({});", scan.table, scan.columns.join(", "))
            };
            let rows = match &scan.selected_by {
                None => format!("all rows of {}", scan.table),
                Some(index_cond) => format!("all rows of {} where {index_cond}", scan.table),
            };
            finding(
                "warning",
                format!("cleanup conditions of {subject}"),
                format!("compares every {subject} examined with {rows}: no index serves {conditions}"),
                hint,
            )
        })
        .collect()
}

/// Tables of the graph (with partitions and inheritors) and hook functions
/// owned by roles the subject does not trust: its actions stop on them.
fn untrusted_owners(subject: &catalog::Subject, g: &Graph) -> Vec<Finding> {
    let hooks: Vec<String> = crate::config::HOOKED_ACTIONS
        .iter()
        .flat_map(|a| [format!("before_{a}"), format!("after_{a}")])
        .flat_map(|e| catalog::hooks(&e))
        .collect();
    catalog::untrusted(subject, &g.tables(), &hooks)
        .into_iter()
        .map(|(object, owner)| {
            finding(
                "error",
                object,
                format!(
                    "owned by {owner}, whom subject {} does not trust: its actions stop here (42501) rather than run {owner}'s code with the run-as role's privileges",
                    subject.name
                ),
                format!(
                    "SELECT forget.trust({}, {});  -- if {owner} may act as the run-as role",
                    literal(&owner),
                    literal(&subject.name)
                ),
            )
        })
        .collect()
}

/// Partitions that a reference of their siblings (or of their parent)
/// into the subject's graph does not cover: a foreign key declared on some
/// partitions only, so the others' rows are never reached. Pure: the
/// partitions as (partition, parent) pairs, the references, the graph's
/// tables. Returns (uncovered partition, the reference it lacks).
pub fn uncovered_partitions<'a>(
    partitions: &[(u32, u32)],
    references: &'a [Reference],
    graph_tables: &[u32],
) -> Vec<(u32, &'a Reference)> {
    let parent_of = |t: u32| {
        partitions
            .iter()
            .find(|(p, _)| *p == t)
            .map(|(_, parent)| *parent)
    };
    let covers = |r: &Reference, table: u32, like: &Reference| {
        r.child == table && r.parent == like.parent && r.child_cols == like.child_cols
    };
    let mut out: Vec<(u32, &Reference)> = Vec::new();
    for r in references
        .iter()
        .filter(|r| graph_tables.contains(&r.parent))
    {
        let Some(parent) = parent_of(r.child) else {
            continue;
        };
        for &(sibling, _) in partitions
            .iter()
            .filter(|(p, pp)| *pp == parent && *p != r.child)
        {
            let covered = references
                .iter()
                .any(|x| covers(x, sibling, r) || covers(x, parent, r));
            let reported = out.iter().any(|(t, x)| {
                *t == sibling && x.parent == r.parent && x.child_cols == r.child_cols
            });
            if !covered && !reported {
                out.push((sibling, r));
            }
        }
    }
    out
}

fn partition_findings(g: &Graph) -> Vec<Finding> {
    let partitions: Vec<(u32, u32)> = Spi::connect(|client| {
        spi(client.select(
            "SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent WHERE p.relkind = 'p'",
            None,
            &[],
        ))
        .map(|r| {
            (
                spi(r.get::<pg_sys::Oid>(1)).map(u32::from).unwrap_or(0),
                spi(r.get::<pg_sys::Oid>(2)).map(u32::from).unwrap_or(0),
            )
        })
        .collect()
    });
    if partitions.is_empty() {
        return Vec::new();
    }
    // PostgreSQL's clones on partitions are no references a sibling lacks.
    let references: Vec<Reference> = catalog::references()
        .into_iter()
        .filter(|r| !matches!(r.origin, Origin::ForeignKey { cloned: true, .. }))
        .collect();
    let found = uncovered_partitions(&partitions, &references, &g.tables());
    let mut oids: Vec<u32> = found
        .iter()
        .flat_map(|(t, r)| [*t, r.child, r.parent])
        .collect();
    oids.dedup();
    let tables = catalog::tables(&oids);
    let name = |oid: u32| {
        tables
            .get(&oid)
            .map(Table::display_name)
            .unwrap_or_else(|| oid.to_string())
    };
    found
        .into_iter()
        .map(|(partition, r)| {
            let hint = if r.child_cols.len() == 1 {
                format!(
                    "SELECT forget.add_link({}, {}, {}, {});",
                    literal(&name(partition)),
                    literal(&r.child_cols[0]),
                    literal(&name(r.parent)),
                    literal(&r.parent_cols[0])
                )
            } else {
                let cols = |c: &[String]| c.iter().map(|x| ident(x)).collect::<Vec<_>>().join(", ");
                format!(
                    "ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {} ({});",
                    tables.get(&partition).map(qualified).unwrap_or_default(),
                    cols(&r.child_cols),
                    tables.get(&r.parent).map(qualified).unwrap_or_default(),
                    cols(&r.parent_cols)
                )
            };
            finding(
                "error",
                format!("{}({})", name(partition), r.child_cols.join(", ")),
                format!(
                    "a partition without the reference to {} that {} has: its rows are never reached",
                    name(r.parent),
                    name(r.child)
                ),
                hint,
            )
        })
        .collect()
}

fn cut_edges(g: &Graph, tables: &HashMap<u32, Table>) -> Vec<Finding> {
    g.cut
        .iter()
        .map(|r| {
            let name = |oid: &u32| {
                tables
                    .get(oid)
                    .map(Table::display_name)
                    .unwrap_or_else(|| oid.to_string())
            };
            finding(
                "info",
                format!("{}({})", name(&r.child), r.child_cols.join(", ")),
                format!("closes a cycle back to {}: not followed", name(&r.parent)),
                "rows reached only through this reference are left alone".into(),
            )
        })
        .collect()
}

/// A table the subject references directly that is also reached through
/// another table: rows reached that other way may belong to another subject
/// (a workspace reached through a token it holds, owned by someone else).
/// Only where an action takes them along (as its plan says): the other
/// table's rows are deleted by it and the edge's rows below them are not
/// kept (a parent the action keeps, nullified say, leaves its children
/// alone). The hint sets a policy on the indirect edge, for each such
/// action: nullify where the column may be NULL, keep otherwise.
fn two_paths(subject: &catalog::Subject, g: &Graph, tables: &HashMap<u32, Table>) -> Vec<Finding> {
    let plans: Vec<(Action, plan::Plan)> = [Action::Delete, Action::Anonymize]
        .into_iter()
        .map(|a| (a, crate::execute::Prepared::new(subject.clone(), a).plan))
        .collect();
    let takes_along = |plan: &plan::Plan, edge: usize, e: &graph::Edge| {
        let parent_deleted = plan
            .node(e.parent)
            .is_some_and(|n| n.fates.contains(&plan::Fate::Delete));
        let below = plan
            .node(e.child)
            .and_then(|n| n.branches.iter().find(|b| b.edge == edge))
            .and_then(|b| b.below_deleted);
        parent_deleted && below.is_some_and(|f| f != plan::Fate::Keep)
    };
    let mut out = Vec::new();
    for (node, n) in g.nodes.iter().enumerate().skip(1) {
        let incoming: Vec<(usize, &graph::Edge)> = g
            .incoming(node)
            .filter(|(_, e)| !e.is_self_reference() && !e.owned)
            .collect();
        let direct: Vec<&graph::Edge> = incoming
            .iter()
            .filter(|(_, e)| e.parent == 0)
            .map(|(_, e)| *e)
            .collect();
        if direct.is_empty() {
            continue;
        }
        let Some(table) = tables.get(&n.table) else {
            continue;
        };
        for (i, e) in incoming.iter().filter(|(_, e)| e.parent != 0) {
            let taken: Vec<&str> = plans
                .iter()
                .filter(|(_, p)| takes_along(p, *i, e))
                .map(|(a, _)| a.name())
                .collect();
            if taken.is_empty() {
                continue;
            }
            let (_, cols) = e.referencing();
            let via = cols.join(", ");
            let parent = tables
                .get(&g.nodes[e.parent].table)
                .map(Table::display_name)
                .unwrap_or_default();
            let nullable = cols
                .iter()
                .all(|c| table.column(c).is_some_and(|x| !x.not_null));
            let policy = if nullable { "nullify" } else { "keep" };
            let statement = |action: &str| {
                format!(
                    "SELECT forget.set_policy({}, {}, {}, {});",
                    literal(&qualified(table)),
                    literal(&cols[0]),
                    literal(action),
                    literal(policy)
                )
            };
            out.push(finding(
                "warning",
                format!("{}({via})", table.display_name()),
                format!(
                    "reached through two paths: directly from the subject ({}) and through {parent} ({via}); rows reached through {parent} may belong to another subject, and the {} of this one would take them along",
                    direct.iter().map(|d| d.child_cols.join(", ")).collect::<Vec<_>>().join("; "),
                    taken.iter().map(|a| if *a == "delete" { "delete" } else { "anonymization" }).collect::<Vec<_>>().join(" or ")
                ),
                taken.iter().map(|a| statement(a)).collect::<Vec<_>>().join(" "),
            ));
        }
    }
    out
}

/// Names that suggest a reference to a subject: user_id, author_id,
/// created_by...; plus `<subject>_id` and `<subject table, singular>_id`.
fn reference_like_pattern(subject: &catalog::Subject, table: &Table) -> String {
    let singular = table
        .name
        .strip_suffix('s')
        .unwrap_or(&table.name)
        .to_lowercase();
    let names = [
        "user", "author", "owner", "creator", "member", "customer", "client", "person", "account",
        "profile", "employee", "contact",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([subject.name.to_lowercase(), singular])
    .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .collect::<Vec<_>>()
    .join("|");
    format!(
        "^(({names})_?id|(created|updated|modified|deleted|owned|assigned|approved|requested|reported)_by|.*_user_id)$"
    )
}

/// Columns anywhere in the database that look like references to the
/// subject (by name, and of the key's type or a text type) but have
/// neither a foreign key nor a link: rows no action reaches.
fn loose_references(subject: &catalog::Subject, refs: &[Reference]) -> Vec<Finding> {
    let subject_table = catalog::tables(&[subject.table]);
    let Some(st) = subject_table.get(&subject.table) else {
        return Vec::new();
    };
    let pattern = reference_like_pattern(subject, st);
    let found: Vec<(u32, String, String, String)> = Spi::connect(|client| {
        spi(client.select(
            "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                    a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'forget')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
               AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname OPERATOR(pg_catalog.~*) $1
               AND (a.atttypid = $2 OR a.atttypid IN ('text'::pg_catalog.regtype, 'varchar'::pg_catalog.regtype))
             ORDER BY 2, 3",
            None,
            &[pattern.as_str().into(), pg_sys::Oid::from(subject.key_type_oid).into()],
        ))
        .map(|r| {
            (
                r.get::<pg_sys::Oid>(1).ok().flatten().map(u32::from).unwrap_or(0),
                spi(r.get::<String>(2)).unwrap_or_default(),
                spi(r.get::<String>(3)).unwrap_or_default(),
                spi(r.get::<String>(4)).unwrap_or_default(),
            )
        })
        .collect()
    });
    found
        .into_iter()
        .filter(|(oid, _, col, _)| {
            !(*oid == subject.table && *col == subject.key_column)
                && !refs
                    .iter()
                    .any(|r| r.child == *oid && r.child_cols.iter().any(|c| c == col))
        })
        .map(|(_, table, col, type_sql)| {
            finding(
                "warning",
                format!("{table}({col})"),
                format!(
                    "looks like a reference to subject \"{}\" ({type_sql}) but has no foreign key or link: no delete, anonymization or export reaches its rows",
                    subject.name
                ),
                format!(
                    "SELECT forget.add_link({}, {}, {});",
                    literal(&table),
                    literal(&col),
                    literal(&qualified(st))
                ),
            )
        })
        .collect()
}

#[pg_extern(schema = "forget_internal", name = "_check")]
#[search_path(pg_catalog, pg_temp)]
fn check(
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(severity, String),
        name!(object, String),
        name!(problem, String),
        name!(hint, String),
    ),
> {
    let subject = catalog::subject(subject);
    let g = graph::build(subject.table, &catalog::references());
    let mut oids = g.tables();
    oids.extend(g.cut.iter().flat_map(|r| [r.child, r.parent]));
    let tables = catalog::tables(&oids);
    let mut findings = Vec::new();
    findings.extend(broken_masks());
    findings.extend(policy_problems(&g, &tables));
    findings.extend(missing_indexes(&g, &tables));
    findings.extend(unmasked_columns(&g, &tables));
    findings.extend(partition_findings(&g));
    findings.extend(untrusted_owners(&subject, &g));
    findings.extend(cut_edges(&g, &tables));
    findings.extend(two_paths(&subject, &g, &tables));
    findings.extend(loose_references(&subject, &catalog::references()));
    findings.extend(slow_cleanup_conditions(&subject.name));
    TableIterator::new(findings)
}

#[cfg(test)]
mod tests {
    use super::{equality_columns, looks_personal, per_row_scans, unquoted, PerRowScan};

    #[test]
    fn partitions_missing_their_siblings_reference_are_named_once() {
        use crate::graph::tests::{fk, link};
        use crate::model::OnDelete;
        // 10 is partitioned into 11, 12, 13; 11 and 12 reference the subject
        // 1, 13 does not. 20 is partitioned into 21, 22, covered by a link on 20.
        let partitions = [(11, 10), (12, 10), (13, 10), (21, 20), (22, 20)];
        let refs = vec![
            fk(11, "customer_id", 1, OnDelete::NoAction),
            fk(12, "customer_id", 1, OnDelete::NoAction),
            fk(21, "customer_id", 1, OnDelete::NoAction),
            link(20, "customer_id", 1, "id"),
            fk(13, "other_id", 99, OnDelete::NoAction),
        ];
        let found = super::uncovered_partitions(&partitions, &refs, &[1, 11, 12, 20, 21]);
        let named: Vec<(u32, &str)> = found
            .iter()
            .map(|(t, r)| (*t, r.child_cols[0].as_str()))
            .collect();
        assert_eq!(named, vec![(13, "customer_id")]);
    }
    use serde_json::json;

    fn seq_scan(relation: &str, alias: &str, filter: &str) -> serde_json::Value {
        json!({"Node Type": "Seq Scan", "Schema": "app", "Relation Name": relation,
               "Alias": alias, "Filter": filter})
    }

    #[test]
    fn tables_read_again_for_every_outer_row_are_found() {
        let outer = json!({"Node Type": "Index Scan", "Schema": "app", "Relation Name": "people",
                           "Alias": "s", "Parent Relationship": "Outer"});
        let mut inner = seq_scan("roles", "r", "(r.kind = 'board'::text)");
        inner["Parent Relationship"] = json!("Inner");
        let mut once = seq_scan("events", "e", "(e.id > 3)");
        once["Parent Relationship"] = json!("InitPlan");
        once["Subplan Name"] = json!("InitPlan 1 (returns $0)");
        let mut hashed = seq_scan("tags", "t", "(t.name = 'x'::text)");
        hashed["Parent Relationship"] = json!("SubPlan");
        hashed["Subplan Name"] = json!("SubPlan 2");
        let mut material = json!({"Node Type": "Materialize", "Parent Relationship": "Inner",
            "Plans": [{"Node Type": "Index Scan", "Schema": "app", "Relation Name": "visits",
                       "Alias": "v", "Parent Relationship": "Outer"}]});
        material["Plans"][0]["Parent Relationship"] = json!("Outer");
        let plan = json!([{"Plan": {"Node Type": "Limit", "Filter": "(NOT (hashed SubPlan 2))",
            "Plans": [
                {"Node Type": "Nested Loop", "Join Filter": "(r.person_id = s.id)", "Parent Relationship": "Outer",
                 "Plans": [outer, inner]},
                {"Node Type": "Nested Loop", "Join Filter": "(v.\"Person\" = s.id)", "Parent Relationship": "Outer",
                 "Plans": [{"Node Type": "Result", "Parent Relationship": "Outer"}, material]},
                once, hashed]}}]);
        assert_eq!(
            per_row_scans(&plan),
            vec![
                PerRowScan {
                    table: "\"app\".\"roles\"".into(),
                    selected_by: None,
                    conditions: vec![
                        "(r.person_id = s.id)".into(),
                        "(r.kind = 'board'::text)".into()
                    ],
                    columns: vec!["person_id".into()],
                },
                PerRowScan {
                    table: "\"app\".\"visits\"".into(),
                    selected_by: None,
                    conditions: vec!["(v.\"Person\" = s.id)".into()],
                    columns: vec!["\"Person\"".into()],
                },
            ]
        );
    }

    #[test]
    fn index_scans_that_compare_with_the_outer_row_only_in_a_filter_are_found() {
        let index_scan = |relation: &str, alias: &str, cond: Option<&str>, filter: Option<&str>| {
            let mut n = json!({"Node Type": "Index Scan", "Schema": "app", "Relation Name": relation,
                               "Alias": alias, "Parent Relationship": "Inner"});
            if let Some(c) = cond {
                n["Index Cond"] = json!(c);
            }
            if let Some(f) = filter {
                n["Filter"] = json!(f);
            }
            n
        };
        let outer = json!({"Node Type": "Index Scan", "Schema": "app", "Relation Name": "people",
                           "Alias": "s", "Parent Relationship": "Outer"});
        // In a subplan run per row: a whole index read, filtered by the outer value.
        let mut whole = index_scan("participations", "p", None, Some("(p.person_id = $0)"));
        whole["Parent Relationship"] = json!("SubPlan");
        whole["Subplan Name"] = json!("SubPlan 1");
        let plan = json!([{"Plan": {"Node Type": "Limit", "Filter": "(SubPlan 1)", "Plans": [
            {"Node Type": "Nested Loop", "Parent Relationship": "Outer", "Plans": [
                outer.clone(),
                index_scan("roles", "r", Some("(r.kind = 'board'::text)"), Some("(r.person_id = s.id)"))]},
            {"Node Type": "Nested Loop", "Parent Relationship": "Outer", "Plans": [
                outer.clone(), index_scan("visits", "v", Some("(v.person_id = s.id)"), None)]},
            {"Node Type": "Nested Loop", "Parent Relationship": "Outer", "Plans": [
                outer, index_scan("events", "e", Some("(e.id = 3)"), Some("(e.day > now())"))]},
            whole]}}]);
        assert_eq!(
            per_row_scans(&plan),
            vec![
                PerRowScan {
                    table: "\"app\".\"roles\"".into(),
                    selected_by: Some("(r.kind = 'board'::text)".into()),
                    conditions: vec!["(r.person_id = s.id)".into()],
                    columns: vec!["person_id".into()],
                },
                PerRowScan {
                    table: "\"app\".\"participations\"".into(),
                    selected_by: None,
                    conditions: vec!["(p.person_id = $0)".into()],
                    columns: vec!["person_id".into()],
                },
            ]
        );
    }

    #[test]
    fn compared_columns_are_read_from_the_conditions() {
        assert_eq!(
            equality_columns(
                "p",
                "(p.person_id = s.id) AND (s.id = p.other_id) AND (p.kind = 'a.b') AND (p.x = p.y)"
            ),
            vec!["person_id", "other_id"]
        );
        assert!(equality_columns("p", "((p.id)::text = s.key)").is_empty());
        assert_eq!(
            equality_columns("p", "(p.person_id = $0) AND (p.x = $12)"),
            vec!["person_id", "x"]
        );
        assert!(equality_columns("p", "(p.x = '$1') AND (p.y = $)").is_empty());
        assert_eq!(unquoted("\"Odd \"\"name\"\"\""), "Odd \"name\"");
        assert_eq!(unquoted("plain"), "plain");
    }

    #[test]
    fn personal_names_are_recognised() {
        for c in [
            "email",
            "Phone_Number",
            "lastname",
            "street_address",
            "birth_date",
            "iban",
            "ip",
            "last_login_ip",
            "name",
        ] {
            assert!(looks_personal(c), "{c}");
        }
        for c in ["id", "status", "total", "created_at", "shipping_method"] {
            assert!(!looks_personal(c), "{c}");
        }
    }
}
