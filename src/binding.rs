//! Names are bound when declared. A mask, rule, cleanup condition or link
//! condition is stored with the objects PostgreSQL resolved its names to
//! when it was declared (relations, functions, operators, domains, as
//! schema-qualified text that survives a dump and restore). Before an action
//! runs it, the text is resolved again the same way; if it now means other
//! objects — a look-alike overload created later in a schema on the path
//! (`public.format(text, bigint)` beside `pg_catalog.format`), a temporary
//! table — the action stops (55000) instead of running them.

use crate::errors::{not_allowed, spi};
use pgrx::prelude::*;
use std::collections::BTreeSet;

/// What one node of an analysed query refers to: (kind, oid).
type Found = BTreeSet<(&'static str, u32)>;

unsafe extern "C-unwind" fn walker(
    node: *mut pg_sys::Node,
    context: *mut std::ffi::c_void,
) -> bool {
    use pg_sys::NodeTag::*;
    if node.is_null() {
        return false;
    }
    let found = unsafe { &mut *(context as *mut Found) };
    unsafe {
        match (*node).type_ {
            T_Query => {
                return pg_sys::query_tree_walker(
                    node as *mut pg_sys::Query,
                    Some(walker),
                    context,
                    pg_sys::QTW_EXAMINE_RTES_BEFORE as i32,
                );
            }
            T_RangeTblEntry => {
                let rte = node as *mut pg_sys::RangeTblEntry;
                if (*rte).rtekind == pg_sys::RTEKind::RTE_RELATION {
                    found.insert(("class", u32::from((*rte).relid)));
                }
                return false;
            }
            T_FuncExpr => {
                found.insert(("proc", u32::from((*(node as *mut pg_sys::FuncExpr)).funcid)));
            }
            T_OpExpr | T_DistinctExpr | T_NullIfExpr => {
                found.insert(("oper", u32::from((*(node as *mut pg_sys::OpExpr)).opno)));
            }
            T_ScalarArrayOpExpr => {
                found.insert((
                    "oper",
                    u32::from((*(node as *mut pg_sys::ScalarArrayOpExpr)).opno),
                ));
            }
            T_Aggref => {
                found.insert(("proc", u32::from((*(node as *mut pg_sys::Aggref)).aggfnoid)));
            }
            T_WindowFunc => {
                found.insert((
                    "proc",
                    u32::from((*(node as *mut pg_sys::WindowFunc)).winfnoid),
                ));
            }
            T_CoerceToDomain => {
                found.insert((
                    "type",
                    u32::from((*(node as *mut pg_sys::CoerceToDomain)).resulttype),
                ));
            }
            _ => {}
        }
        pg_sys::expression_tree_walker(node, Some(walker), context)
    }
}

/// The objects `sql` (one statement, with parameters of `types`) refers to
/// as PostgreSQL resolves it now, under the current search_path: sorted
/// texts such as `proc format(text,"any")`, `class billing.invoices`.
pub fn objects(sql: &str, types: &[pg_sys::Oid]) -> Vec<String> {
    describe(&found_in(sql, types))
}

fn found_in(sql: &str, types: &[pg_sys::Oid]) -> Found {
    let text = std::ffi::CString::new(sql).expect("no NUL in checked SQL");
    let mut found = Found::new();
    unsafe {
        let raw = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        for stmt in pgrx::PgList::<pg_sys::RawStmt>::from_pg(raw).iter_ptr() {
            let queries = pg_sys::pg_analyze_and_rewrite_fixedparams(
                stmt,
                text.as_ptr(),
                types.as_ptr(),
                types.len() as i32,
                std::ptr::null_mut(),
            );
            for query in pgrx::PgList::<pg_sys::Node>::from_pg(queries).iter_ptr() {
                walker(query, &mut found as *mut Found as *mut std::ffi::c_void);
            }
        }
    }
    found
}

/// The objects as text, schema-qualified unless in pg_catalog.
fn describe(found: &Found) -> Vec<String> {
    let kinds: Vec<String> = found.iter().map(|(k, _)| k.to_string()).collect();
    let oids: Vec<pg_sys::Oid> = found.iter().map(|(_, o)| pg_sys::Oid::from(*o)).collect();
    // pg_temp named last: a temporary type of the caller never makes a
    // built-in one print qualified.
    crate::identity::with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
        Spi::connect(|client| {
            spi(client.select(
                "SELECT k || ' ' || CASE k WHEN 'class' THEN o::pg_catalog.regclass::pg_catalog.text
                                       WHEN 'proc' THEN o::pg_catalog.regprocedure::pg_catalog.text
                                       WHEN 'oper' THEN o::pg_catalog.regoperator::pg_catalog.text
                                       ELSE o::pg_catalog.regtype::pg_catalog.text END
                 FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.oid[])) AS x(k, o)
                 ORDER BY 1",
                None,
                &[kinds.into(), oids.into()],
            ))
            .filter_map(|r| spi(r.get::<String>(1)))
            .collect()
        })
    })
}

/// 55000 when `sql` (what `what` runs as) no longer refers to the objects it
/// did when declared (no record: declared before 0.2.0, nothing to
/// compare). Returns the functions it calls, directly and through operators
/// (proc and operator OIDs), for the trust check.
pub fn verify(
    what: &str,
    declared: Option<&[String]>,
    sql: &str,
    types: &[pg_sys::Oid],
) -> (Vec<u32>, Vec<u32>) {
    let found = found_in(sql, types);
    if let Some(declared) = declared {
        let now = describe(&found);
        if now.as_slice() != declared {
            let gone: Vec<&String> = declared.iter().filter(|d| !now.contains(d)).collect();
            let new: Vec<&String> = now.iter().filter(|n| !declared.contains(n)).collect();
            not_allowed(format!(
                "{what} no longer means what it meant when declared: it now resolves to {new:?} instead of {gone:?}; \
                 declare it again if that is intended"
            ));
        }
    }
    let of = |kind: &str| -> Vec<u32> {
        found
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, o)| *o)
            .collect()
    };
    (of("proc"), of("oper"))
}

/// Kinds of declared SQL, each analysed in the statement it runs in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// An expression over a table's row (`table` is the masked table).
    Mask,
    /// A predicate over the child table's row.
    LinkCondition,
    /// A predicate over the subject row `s`.
    Condition,
    /// A query with `$1` = the subject key.
    Rule,
}

impl Kind {
    pub fn bit(self) -> u8 {
        match self {
            Kind::Mask => 1,
            Kind::LinkCondition => 2,
            Kind::Condition => 4,
            Kind::Rule => 8,
        }
    }
}

/// What the actions run: masks, link conditions and rules; an export only
/// link conditions; eligibility only rules; a cleanup batch its conditions.
pub const ACTION: &[Kind] = &[Kind::Mask, Kind::LinkCondition, Kind::Rule];
pub const EXPORT: &[Kind] = &[Kind::Mask, Kind::LinkCondition];
pub const RULES: &[Kind] = &[Kind::Rule];
pub const CONDITIONS: &[Kind] = &[Kind::Condition];

/// The statement a declaration is analysed in: the same names resolve as
/// where it runs. `table` is a quoted, qualified relation name.
pub fn analysis_sql(kind: Kind, table: &str, text: &str) -> String {
    match kind {
        Kind::Mask => format!("SELECT ({text}\n) FROM {table}"),
        Kind::LinkCondition => format!("SELECT 1 FROM {table} WHERE ({text}\n)"),
        Kind::Condition => format!("SELECT 1 FROM {table} s WHERE ({text}\n)"),
        Kind::Rule => format!("SELECT pg_catalog.count(*) FROM ({text}\n) forget_rule"),
    }
}

/// What a declaration refers to now, as the run-as role with its path:
/// stored when it is declared.
pub fn bind(
    run_as: u32,
    subject: &str,
    path: &str,
    kind: Kind,
    table: &str,
    text: &str,
    types: &[pg_sys::Oid],
) -> Vec<String> {
    crate::identity::as_run_as(run_as, subject, None, path, || {
        objects(&analysis_sql(kind, table, text), types)
    })
}

/// The declarations of `kinds` that `action` on `subject` runs (masks and
/// link conditions on `tables`, its rules for the action, its cleanup
/// conditions), resolved again and compared with what they were bound to
/// (55000 on a difference).
pub fn verify_subject(
    subject: &crate::catalog::Subject,
    tables: &[u32],
    action: &str,
    kinds: &[Kind],
) {
    let (mut procs, mut opers) = (Vec::new(), Vec::new());
    for d in crate::catalog::declarations(subject, tables, action)
        .into_iter()
        .filter(|d| kinds.contains(&d.kind))
    {
        let types: Vec<pg_sys::Oid> = match d.kind {
            Kind::Rule => vec![pg_sys::Oid::from(subject.key_type_oid)],
            _ => Vec::new(),
        };
        let sql = analysis_sql(d.kind, &d.table, &d.text);
        let (p, o) =
            crate::identity::as_run_as(subject.run_as, &subject.name, None, &d.path, || {
                verify(&d.what, d.bound.as_deref(), &sql, &types)
            });
        procs.extend(p);
        opers.extend(o);
    }
    // The functions declared SQL calls run as the run-as role too: their
    // owners must be trusted like the owners of tables and hooks (a body
    // replaced later by its owner is not a change of name).
    let (_, functions) = crate::catalog::owned_objects(&[], &[], &procs, &opers);
    crate::invalidation::watch_objects(&[], &functions);
    let untrusted = crate::catalog::untrusted_functions(subject, &procs, &opers);
    crate::catalog::require_trusted(subject, &untrusted);
}
