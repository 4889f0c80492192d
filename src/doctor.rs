//! check(): the configuration doctor. Every finding comes with a concrete
//! hint: the CREATE INDEX or forget.mask call to run.

use crate::catalog;
use crate::errors::spi;
use crate::graph::{self, Graph};
use crate::model::{Action, OnDelete, Origin, Policy, Table};
use crate::plan;
use crate::render::{ident, literal, qualified};
use pgrx::prelude::*;
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
    spi(Spi::get_one_with_args::<bool>(
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
            if policy == Policy::Nullify
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
            if action == Action::Delete && policy == Policy::Keep {
                if let Origin::ForeignKey { name, on_delete } = &e.reference.origin {
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
        for col in t
            .columns
            .iter()
            .filter(|c| looks_personal(&c.name) && !masked.contains(&&c.name))
        {
            let expr = if col.name.to_ascii_lowercase().contains("mail") {
                "forget.random_email()"
            } else {
                "NULL"
            };
            out.push(finding(
                "warning",
                format!("{}.{}", t.display_name(), col.name),
                "looks personal and has no anonymize mask".into(),
                format!(
                    "SELECT forget.mask({}, {}, {});",
                    literal(&t.display_name()),
                    literal(&col.name),
                    literal(expr)
                ),
            ));
        }
    }
    out
}

fn broken_masks() -> Vec<Finding> {
    Spi::connect(|client| {
        spi(client.select(
            "SELECT m.tbl::pg_catalog.text, m.col::pg_catalog.text, m.action, m.expression,
                    forget._mask_problem(m.tbl, m.col, m.expression, m.search_path)
             FROM forget.masks m ORDER BY 1, 2, 3",
            None,
            &[],
        ))
        .filter_map(|r| {
            let problem: Option<String> = spi(r.get(5));
            problem.map(|p| {
                let (tbl, col): (String, String) = (spi(r.get(1)).unwrap_or_default(), spi(r.get(2)).unwrap_or_default());
                let action: String = spi(r.get(3)).unwrap_or_default();
                finding(
                    "error",
                    format!("mask {tbl}.{col} ({action})"),
                    format!("no longer validates: {p}"),
                    format!("SELECT forget.mask({}, {}, 'NULL', {});  -- or DELETE FROM forget.masks for a dropped column", literal(&tbl), literal(&col), literal(&action)),
                )
            })
        })
        .collect()
    })
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

#[pg_extern(name = "_check")]
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
    findings.extend(cut_edges(&g, &tables));
    TableIterator::new(findings)
}

#[cfg(test)]
mod tests {
    use super::looks_personal;

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
