//! Reads the extension's configuration and PostgreSQL's catalog into the
//! plain values of `model`. The only module that queries the catalog.

use crate::errors::{invalid, spi};
use crate::model::{
    Action, Column, Masks, Oid, OnDelete, Origin, Policies, Policy, Reference, Table,
};
use pgrx::prelude::*;
use std::collections::HashMap;

/// A registered subject.
#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    pub table: Oid,
    pub key_column: String,
    /// format_type() of the key, schema-qualified where needed.
    pub key_type: String,
    /// The same without its type modifier (`character varying` for
    /// `character varying(3)`, `numeric` for `numeric(10,2)`): a key given
    /// as text is cast to it to see whether the cast to `key_type` lost
    /// anything.
    pub key_base_type: String,
    pub key_type_oid: Oid,
    pub active_column: Option<String>,
    pub active_value: String,
    pub inactive_value: String,
    pub identity: Vec<String>,
    pub minimized_column: Option<String>,
    pub search_path: String,
    /// The role whose privileges the subject's actions use for user code
    /// (register_subject's run_as, else the subject table's owner).
    pub run_as: Oid,
}

const SUBJECT_COLUMNS: &str = "s.name::text, s.tbl::oid, s.key_column::text, \
    k.key_type, s.active_column::text, s.active_value, s.inactive_value, \
    COALESCE(s.identity::text[], '{}'), s.minimized_column::text, s.search_path, k.atttypid, \
    COALESCE(s.run_as::pg_catalog.oid, c.relowner), k.key_base_type";

fn subject_from(row: &pgrx::spi::SpiHeapTupleData) -> Subject {
    Subject {
        name: spi(row.get::<String>(1)).unwrap_or_default(),
        table: spi(row.get::<pg_sys::Oid>(2)).map(u32::from).unwrap_or(0),
        key_column: spi(row.get::<String>(3)).unwrap_or_default(),
        key_type: spi(row.get::<String>(4)).unwrap_or_default(),
        active_column: spi(row.get::<String>(5)),
        active_value: spi(row.get::<String>(6)).unwrap_or_default(),
        inactive_value: spi(row.get::<String>(7)).unwrap_or_default(),
        identity: spi(row.get::<Vec<String>>(8)).unwrap_or_default(),
        minimized_column: spi(row.get::<String>(9)),
        search_path: spi(row.get::<String>(10)).unwrap_or_default(),
        key_type_oid: oid_at(row, 11),
        run_as: oid_at(row, 12),
        key_base_type: spi(row.get::<String>(13)).unwrap_or_default(),
    }
}

/// Every registered subject.
pub fn subjects() -> Vec<Subject> {
    Spi::connect(|client| {
        let rows = spi(client.select(
            &format!(
                // LATERAL: one index probe of pg_attribute per subject. A
                // plain join was planned as a hash of all of pg_attribute
                // (1.5 ms) against a subjects table never analyzed.
                "SELECT {SUBJECT_COLUMNS} FROM forget.subjects s \
                 LEFT JOIN LATERAL (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) AS key_type, a.atttypid, \
                 pg_catalog.format_type(a.atttypid, NULL) AS key_base_type \
                 FROM pg_catalog.pg_attribute a WHERE a.attrelid = s.tbl AND a.attname = s.key_column \
                 AND NOT a.attisdropped) k ON true \
                 LEFT JOIN pg_catalog.pg_class c ON c.oid = s.tbl ORDER BY s.name"
            ),
            None,
            &[],
        ));
        rows.map(|row| subject_from(&row)).collect()
    })
}

/// The subject named, or the only one when no name is given (22023 otherwise).
pub fn subject(name: Option<&str>) -> Subject {
    pick(subjects(), name)
}

/// The subject named among `all`, or the only one (22023 otherwise).
pub fn pick(all: Vec<Subject>, name: Option<&str>) -> Subject {
    let found = match name {
        Some(n) => all.into_iter().find(|s| s.name == n),
        None if all.len() == 1 => all.into_iter().next(),
        None if all.is_empty() => {
            invalid("no subject is registered: call forget.register_subject() first")
        }
        None => invalid("several subjects are registered: name the subject"),
    };
    let s = found.unwrap_or_else(|| invalid(format!("unknown subject \"{}\"", name.unwrap_or(""))));
    if s.key_type.is_empty() {
        invalid(format!(
            "subject \"{}\": key column \"{}\" no longer exists",
            s.name, s.key_column
        ));
    }
    s
}

/// Every foreign key and every declared link. A foreign key is taken as
/// declared, and once more for each partition of a partitioned table it
/// references (PostgreSQL's clone of the constraint on the referenced side,
/// which cascades from that partition's rows): a partition reached on its
/// own, through a foreign key of its own, takes the rows that reference its
/// rows through its parent along. The clones on the referencing side are
/// left out: the partitioned table they belong to stands for its partitions.
pub fn references() -> Vec<Reference> {
    Spi::connect(|client| {
        let mut refs: Vec<Reference> = spi(client.select(
            "SELECT c.conname::text, c.conrelid::oid, c.confrelid::oid, c.confdeltype::text,
                    c.conparentid <> 0,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY k(n, i)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
             FROM pg_catalog.pg_constraint c
             WHERE c.contype = 'f'
               AND (c.conparentid = 0
                    OR c.conrelid = (SELECT p.conrelid FROM pg_catalog.pg_constraint p WHERE p.oid = c.conparentid))
             ORDER BY c.conrelid, c.conname",
            None,
            &[],
        ))
        .map(|row| Reference {
            child: oid_at(&row, 2),
            child_cols: spi(row.get::<Vec<String>>(6)).unwrap_or_default(),
            parent: oid_at(&row, 3),
            parent_cols: spi(row.get::<Vec<String>>(7)).unwrap_or_default(),
            origin: Origin::ForeignKey {
                name: spi(row.get::<String>(1)).unwrap_or_default(),
                on_delete: OnDelete::from_confdeltype(&spi(row.get::<String>(4)).unwrap_or_default()),
                cloned: spi(row.get::<bool>(5)).unwrap_or(false),
            },
            condition: None,
        })
        .collect();
        refs.extend(
            spi(client.select(
                "SELECT l.id, l.child::oid, l.child_column::text, l.parent::oid, l.parent_column::text, l.condition,
                        COALESCE((SELECT t.typcategory = 'A' FROM pg_catalog.pg_attribute a
                                  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                                  WHERE a.attrelid = l.child AND a.attname = l.child_column), false)
                 FROM forget.links l ORDER BY l.id",
                None,
                &[],
            ))
            .map(|row| Reference {
                child: oid_at(&row, 2),
                child_cols: vec![spi(row.get::<String>(3)).unwrap_or_default()],
                parent: oid_at(&row, 4),
                parent_cols: vec![spi(row.get::<String>(5)).unwrap_or_default()],
                origin: Origin::Link {
                    id: spi(row.get::<i64>(1)).unwrap_or_default(),
                    array: spi(row.get::<bool>(7)).unwrap_or(false),
                },
                condition: spi(row.get::<String>(6)),
            }),
        );
        refs
    })
}

fn oid_at(row: &pgrx::spi::SpiHeapTupleData, ordinal: usize) -> Oid {
    spi(row.get::<pg_sys::Oid>(ordinal))
        .map(u32::from)
        .unwrap_or(0)
}

/// Names, columns, primary keys and descendants of the given tables, and of
/// the tables that inherit from them.
pub fn tables(oids: &[Oid]) -> HashMap<Oid, Table> {
    let mut out = tables_only(oids);
    let inheritors: Vec<Oid> = out
        .values()
        .flat_map(|t| t.inheritors.iter().copied())
        .filter(|o| !out.contains_key(o))
        .collect();
    if !inheritors.is_empty() {
        out.extend(tables_only(&inheritors));
    }
    out
}

fn tables_only(oids: &[Oid]) -> HashMap<Oid, Table> {
    let ids: Vec<pg_sys::Oid> = oids.iter().map(|o| pg_sys::Oid::from(*o)).collect();
    Spi::connect(|client| {
        let mut out: HashMap<Oid, Table> = HashMap::new();
        let rows = spi(client.select(
            "SELECT c.oid, n.nspname::text, c.relname::text, a.attname::text,
                    pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    a.attgenerated <> '', c.relkind = 'p', c.relrowsecurity,
                    c.relispartition OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
                    CASE WHEN c.relhasrules THEN
                        (SELECT pg_catalog.string_agg(DISTINCT w.ev_type::text, '') FROM pg_catalog.pg_rewrite w
                         WHERE w.ev_class = c.oid AND w.ev_type IN ('2', '4')) END,
                    (SELECT t.typcategory = 'S' FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid),
                    (SELECT pg_catalog.quote_ident(n.nspname) || '.' || o.oprname
                       FROM pg_catalog.pg_type t
                       JOIN pg_catalog.pg_opclass oc ON oc.opcdefault
                            AND oc.opcintype = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
                       JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname = 'btree'
                       JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amopstrategy = 3
                            AND ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype
                       JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr
                       JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
                      WHERE t.oid = a.atttypid AND n.nspname <> 'pg_catalog'),
                    COALESCE(pg_catalog.pg_partition_root(c.oid), c.oid)
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.oid = ANY ($1) ORDER BY c.oid, a.attnum",
            None,
            &[ids.clone().into()],
        ));
        for row in rows {
            let oid = oid_at(&row, 1);
            let table = out.entry(oid).or_insert_with(|| Table {
                oid,
                schema: spi(row.get::<String>(2)).unwrap_or_default(),
                name: spi(row.get::<String>(3)).unwrap_or_default(),
                columns: Vec::new(),
                primary_key: Vec::new(),
                partitioned: spi(row.get::<bool>(8)).unwrap_or(false),
                row_security: spi(row.get::<bool>(9)).unwrap_or(false),
                inheritors: Vec::new(),
                descendant: spi(row.get::<bool>(10)).unwrap_or(false),
                partition_root: spi(row.get::<pg_sys::Oid>(14))
                    .map(u32::from)
                    .unwrap_or(oid),
                rules: {
                    // pg_rewrite.ev_type: '2' UPDATE, '4' DELETE.
                    let events = spi(row.get::<String>(11)).unwrap_or_default();
                    crate::model::Rewritten {
                        delete: events.contains('4'),
                        update: events.contains('2'),
                    }
                },
            });
            table.columns.push(Column {
                name: spi(row.get::<String>(4)).unwrap_or_default(),
                type_sql: spi(row.get::<String>(5)).unwrap_or_default(),
                not_null: spi(row.get::<bool>(6)).unwrap_or(false),
                generated: spi(row.get::<bool>(7)).unwrap_or(false),
                string: spi(row.get::<bool>(12)).unwrap_or(false),
                equality: spi(row.get::<String>(13)),
            });
        }
        let keys = spi(client.select(
            "SELECT i.indrelid, ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(n, o)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
             FROM pg_catalog.pg_index i WHERE i.indisprimary AND i.indrelid = ANY ($1)",
            None,
            &[ids.clone().into()],
        ));
        for row in keys {
            if let Some(t) = out.get_mut(&oid_at(&row, 1)) {
                t.primary_key = spi(row.get::<Vec<String>>(2)).unwrap_or_default();
            }
        }
        // Inheritance (not partitioning), at any depth.
        let inheritors = spi(client.select(
            "WITH RECURSIVE d(root, rel) AS (
                 SELECT i.inhparent, i.inhrelid FROM pg_catalog.pg_inherits i
                 JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                 WHERE i.inhparent = ANY ($1) AND p.relkind <> 'p'
                 UNION
                 SELECT d.root, i.inhrelid FROM d JOIN pg_catalog.pg_inherits i ON i.inhparent = d.rel)
             SELECT root, pg_catalog.array_agg(rel ORDER BY rel) FROM d GROUP BY root",
            None,
            &[ids.into()],
        ));
        for row in inheritors {
            if let Some(t) = out.get_mut(&oid_at(&row, 1)) {
                t.inheritors = spi(row.get::<Vec<pg_sys::Oid>>(2))
                    .unwrap_or_default()
                    .into_iter()
                    .map(u32::from)
                    .collect();
            }
        }
        out
    })
}

/// Explicit edge policies for one action.
pub fn policies(action: Action) -> Policies {
    let mut p = Policies::default();
    Spi::connect(|client| {
        let rows = spi(client.select(
            "SELECT tbl::oid, via::text, policy FROM forget.policies WHERE action = $1",
            None,
            &[action.name().into()],
        ));
        for row in rows {
            let policy = Policy::parse(&spi(row.get::<String>(3)).unwrap_or_default())
                .unwrap_or(Policy::Keep);
            p.by_edge
                .insert((oid_at(&row, 1), spi(row.get::<String>(2))), policy);
        }
    });
    p
}

/// Masks for one action (the anonymize masks serve a delete's anonymize edges).
pub fn masks(action: Action) -> Masks {
    // Delete applies anonymize masks to rows its policies keep.
    let action = match action {
        Action::Minimize => "minimize",
        Action::Export => "export",
        _ => "anonymize",
    };
    let mut m = Masks::default();
    Spi::connect(|client| {
        let rows = spi(client.select(
            "SELECT tbl::oid, col::text, expression FROM forget.masks WHERE action = $1 ORDER BY tbl, col",
            None,
            &[action.into()],
        ));
        for row in rows {
            m.by_table.entry(oid_at(&row, 1)).or_default().push((
                spi(row.get::<String>(2)).unwrap_or_default(),
                spi(row.get::<String>(3)).unwrap_or_default(),
            ));
        }
    });
    m
}

/// A blocker that applies to a subject and action.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub query: String,
    pub message: String,
    pub search_path: String,
}

pub fn rules(subject: &str, action: &str) -> Vec<Rule> {
    Spi::connect(|client| {
        spi(client.select(
            "SELECT name, query, message, search_path FROM forget.rules
             WHERE $2 = ANY (actions) AND (subject IS NULL OR subject = $1) ORDER BY name",
            None,
            &[subject.into(), action.into()],
        ))
        .map(|row| Rule {
            name: spi(row.get::<String>(1)).unwrap_or_default(),
            query: spi(row.get::<String>(2)).unwrap_or_default(),
            message: spi(row.get::<String>(3)).unwrap_or_default(),
            search_path: spi(row.get::<String>(4)).unwrap_or_default(),
        })
        .collect()
    })
}

/// The qualified, quoted names of the functions hooked to an event.
pub fn hooks(event: &str) -> Vec<String> {
    Spi::connect(|client| {
        spi(client.select(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
             FROM forget.hooks h JOIN pg_catalog.pg_proc p ON p.oid = h.fn
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE h.event = $1 ORDER BY h.fn::oid",
            None,
            &[event.into()],
        ))
        .map(|row| spi(row.get::<String>(1)).unwrap_or_default())
        .collect()
    })
}

/// The functions a non-internal trigger on a relation of `rel` runs, as
/// (tgname, tgrelid, fn): its own, and those its WHEN condition calls,
/// directly or through an operator (pg_depend records both).
macro_rules! trigger_functions {
    () => {
        "
    SELECT t.tgname, t.tgrelid, d.refobjid AS fn
    FROM rel JOIN pg_catalog.pg_trigger t ON t.tgrelid = rel.oid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.objid = t.oid
    WHERE NOT t.tgisinternal AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION
    SELECT t.tgname, t.tgrelid, o.oprcode::pg_catalog.oid
    FROM rel JOIN pg_catalog.pg_trigger t ON t.tgrelid = rel.oid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.objid = t.oid
    JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid
    WHERE NOT t.tgisinternal AND d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass"
    };
}

/// Tables (with their partitions and inheritors), the functions of their
/// triggers (a role granted TRIGGER on a table may add one) and hook
/// functions that an action of `subject` would run the code of (triggers,
/// policies, bodies) although their owner is neither its run-as role (nor a
/// role with its privileges), nor a superuser, nor trusted for the subject:
/// ("relation, trigger or function", "owner").
pub fn untrusted(subject: &Subject, tables: &[Oid], functions: &[String]) -> Vec<(String, String)> {
    let ids: Vec<pg_sys::Oid> = tables.iter().map(|o| pg_sys::Oid::from(*o)).collect();
    Spi::connect(|client| {
        spi(client.select(
            concat!("WITH RECURSIVE rel(oid) AS (
                 SELECT pg_catalog.unnest($1::pg_catalog.oid[])
                 UNION
                 SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN rel ON i.inhparent = rel.oid),
             owned(object, owner) AS (
                 SELECT c.oid::pg_catalog.regclass::pg_catalog.text, c.relowner
                 FROM rel JOIN pg_catalog.pg_class c ON c.oid = rel.oid
                 UNION ALL
                 SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text, p.proowner
                 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                 WHERE pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) = ANY ($4)
                 UNION ALL
                 -- A role with the TRIGGER privilege on a table may hang its
                 -- own function on it, or call one in the trigger's WHEN
                 -- condition: the owners of the functions are judged.
                 SELECT pg_catalog.format('trigger %I on %s (%s)', f.tgname, f.tgrelid::pg_catalog.regclass,
                                          p.oid::pg_catalog.regprocedure), p.proowner
                 FROM (", trigger_functions!(), ") f JOIN pg_catalog.pg_proc p ON p.oid = f.fn)
             SELECT o.object, o.owner::pg_catalog.regrole::pg_catalog.text
             FROM owned o JOIN pg_catalog.pg_roles r ON r.oid = o.owner
             WHERE NOT r.rolsuper AND NOT pg_catalog.pg_has_role(o.owner, $2, 'USAGE')
               AND NOT EXISTS (SELECT 1 FROM forget.trusted t WHERE t.subject = $3 AND t.role = o.owner)
             ORDER BY 1"),
            None,
            &[
                ids.into(),
                pg_sys::Oid::from(subject.run_as).into(),
                subject.name.as_str().into(),
                functions.to_vec().into(),
            ],
        ))
        .map(|r| {
            (
                spi(r.get::<String>(1)).unwrap_or_default(),
                spi(r.get::<String>(2)).unwrap_or_default(),
            )
        })
        .collect()
    })
}

/// The relations (`tables` with their partitions and inheritors) and the
/// functions (hooks by qualified name, the relations' trigger functions,
/// and `procs` and the functions of `opers`) whose owners `untrusted` and
/// `untrusted_functions` judge.
pub fn owned_objects(
    tables: &[Oid],
    hooks: &[String],
    procs: &[u32],
    opers: &[u32],
) -> (Vec<pg_sys::Oid>, Vec<pg_sys::Oid>) {
    let oids =
        |v: &[u32]| -> Vec<pg_sys::Oid> { v.iter().map(|o| pg_sys::Oid::from(*o)).collect() };
    Spi::connect(|client| {
        let row = spi(client.select(
            concat!("WITH RECURSIVE rel(oid) AS (
                 SELECT pg_catalog.unnest($1::pg_catalog.oid[])
                 UNION
                 SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN rel ON i.inhparent = rel.oid)
             SELECT ARRAY(SELECT oid FROM rel),
                    ARRAY(SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                          WHERE pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) = ANY ($2)
                          UNION SELECT f.fn FROM (", trigger_functions!(), ") f
                          UNION SELECT pg_catalog.unnest($3::pg_catalog.oid[])
                          UNION SELECT o.oprcode::pg_catalog.oid FROM pg_catalog.pg_operator o WHERE o.oid = ANY ($4))"),
            None,
            &[
                oids(tables).into(),
                hooks.to_vec().into(),
                oids(procs).into(),
                oids(opers).into(),
            ],
        ))
        .first();
        (
            spi(row.get::<Vec<pg_sys::Oid>>(1)).unwrap_or_default(),
            spi(row.get::<Vec<pg_sys::Oid>>(2)).unwrap_or_default(),
        )
    })
}

/// Functions (and the functions of operators) owned by roles the subject
/// does not trust, as `untrusted` reports tables: ("function", "owner").
pub fn untrusted_functions(
    subject: &Subject,
    procs: &[u32],
    opers: &[u32],
) -> Vec<(String, String)> {
    if procs.is_empty() && opers.is_empty() {
        return Vec::new();
    }
    let procs: Vec<pg_sys::Oid> = procs.iter().map(|o| pg_sys::Oid::from(*o)).collect();
    let opers: Vec<pg_sys::Oid> = opers.iter().map(|o| pg_sys::Oid::from(*o)).collect();
    Spi::connect(|client| {
        spi(client.select(
            "SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text, p.proowner::pg_catalog.regrole::pg_catalog.text
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
             WHERE (p.oid = ANY ($1) OR p.oid IN (SELECT o.oprcode FROM pg_catalog.pg_operator o WHERE o.oid = ANY ($2)))
               AND NOT r.rolsuper AND NOT pg_catalog.pg_has_role(p.proowner, $3, 'USAGE')
               AND NOT EXISTS (SELECT 1 FROM forget.trusted t WHERE t.subject = $4 AND t.role = p.proowner)
             ORDER BY 1",
            None,
            &[
                procs.into(),
                opers.into(),
                pg_sys::Oid::from(subject.run_as).into(),
                subject.name.as_str().into(),
            ],
        ))
        .map(|r| {
            (
                spi(r.get::<String>(1)).unwrap_or_default(),
                spi(r.get::<String>(2)).unwrap_or_default(),
            )
        })
        .collect()
    })
}

/// 42501 when `untrusted` names anything: its owner's code would run with
/// the run-as role's privileges.
pub fn require_trusted(subject: &Subject, untrusted: &[(String, String)]) {
    if let Some((object, owner)) = untrusted.first() {
        let run_as = spi(crate::catalog::read_one::<String>(
            "SELECT $1::pg_catalog.regrole::pg_catalog.text",
            &[pg_sys::Oid::from(subject.run_as).into()],
        ))
        .unwrap_or_default();
        pgrx::pg_sys::panic::ErrorReport::new(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "{object} is owned by {owner}, whom subject \"{}\" does not trust: its code would run with the privileges of {run_as}",
                subject.name
            ),
            "pg_forget",
        )
        .set_hint(format!(
            "If {owner} may act as {run_as}: SELECT forget.trust('{owner}', '{}');",
            subject.name.replace('\'', "''")
        ))
        .report(PgLogLevel::ERROR);
    }
}

/// A declaration of DBA-written SQL, as binding::verify_subject reads it.
pub struct Declaration {
    pub what: String,
    pub kind: crate::binding::Kind,
    /// The relation it is analysed over, quoted and qualified.
    pub table: String,
    pub text: String,
    pub path: String,
    /// What it was bound to when declared (None: declared before 0.2.0).
    pub bound: Option<Vec<String>>,
}

/// The masks and link conditions on `tables`, the rules and the cleanup
/// conditions of `subject`.
pub fn declarations(subject: &Subject, tables: &[Oid], action: &str) -> Vec<Declaration> {
    use crate::binding::Kind;
    let ids: Vec<pg_sys::Oid> = tables.iter().map(|o| pg_sys::Oid::from(*o)).collect();
    let subject_table = pg_sys::Oid::from(subject.table);
    Spi::connect(|client| {
        spi(client.select(
            "SELECT 'mask', 'mask on ' || m.tbl::pg_catalog.text || '.' || m.col, m.tbl::pg_catalog.text,
                    m.expression, m.search_path, m.bound
             FROM forget.masks m WHERE m.tbl = ANY ($1)
             UNION ALL
             SELECT 'link', 'link condition on ' || l.child::pg_catalog.text, l.child::pg_catalog.text,
                    l.condition, l.search_path, l.bound
             FROM forget.links l WHERE l.condition IS NOT NULL AND l.child = ANY ($1)
             UNION ALL
             SELECT 'rule', 'rule ' || r.name, '', r.query, r.search_path,
                    NULLIF(ARRAY(SELECT pg_catalog.substr(b, pg_catalog.length($2) + 3)
                                 FROM pg_catalog.unnest(r.bound) b WHERE pg_catalog.starts_with(b, $2 || ': ')), '{}')
             FROM forget.rules r WHERE (r.subject IS NULL OR r.subject = $2) AND $4 = ANY (r.actions)
             UNION ALL
             SELECT 'condition', 'cleanup condition ' || c.name, $3::pg_catalog.regclass::pg_catalog.text,
                    c.predicate, c.search_path, c.bound
             FROM forget.cleanup_conditions c WHERE c.subject = $2
             UNION ALL
             SELECT 'condition', 'minimize_when', $3::pg_catalog.regclass::pg_catalog.text,
                    s.minimize_when, s.search_path, s.bound
             FROM forget.cleanup_settings s WHERE s.subject = $2 AND s.minimize_when IS NOT NULL",
            None,
            &[ids.into(), subject.name.as_str().into(), subject_table.into(), action.into()],
        ))
        .map(|r| Declaration {
            kind: match spi(r.get::<String>(1)).unwrap_or_default().as_str() {
                "mask" => Kind::Mask,
                "link" => Kind::LinkCondition,
                "rule" => Kind::Rule,
                _ => Kind::Condition,
            },
            what: spi(r.get::<String>(2)).unwrap_or_default(),
            table: spi(r.get::<String>(3)).unwrap_or_default(),
            text: spi(r.get::<String>(4)).unwrap_or_default(),
            path: spi(r.get::<String>(5)).unwrap_or_default(),
            bound: spi(r.get::<Vec<String>>(6)),
        })
        .collect()
    })
}

/// `Spi::get_one_with_args` for a query that only reads, on a read-only SPI
/// connection: no transaction id, fine on a hot standby (pgrx's own helpers
/// use a connection that may write).
pub fn read_one<A: FromDatum + IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<A>, pgrx::spi::SpiError> {
    Spi::connect(|client| client.select(sql, Some(1), args)?.first().get_one())
}

/// `Spi::get_two_with_args` for a query that only reads (see read_one).
pub fn read_two<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<(Option<A>, Option<B>), pgrx::spi::SpiError> {
    Spi::connect(|client| client.select(sql, Some(1), args)?.first().get_two())
}
