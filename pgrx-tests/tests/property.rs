//! Property test: random schemas (foreign-key trees and DAGs, self-references,
//! composite keys, nullable and NOT NULL references, every ON DELETE rule,
//! tables partitioned by LIST (grp) whose references in are composite,
//! inheritance children holding some of a table's rows, stored generated
//! columns, a BEFORE INSERT OR UPDATE trigger that derives a column and an
//! AFTER DELETE trigger that logs into a table of another schema) with
//! random data. After delete_client, exactly the rows an independent
//! oracle computes are gone or nullified, every other row is unchanged, and
//! every foreign key still holds (PostgreSQL checked them at commit). Before
//! that, a delete with a grace period followed by restore_client gives back
//! every table byte for byte.
//!
//! PGFORGET_PROPERTY_CASES (default 40) and PGFORGET_PROPERTY_SEED choose the
//! schemas; a failure prints the seed that reproduces it.

mod common;
use common::*;
use std::collections::{BTreeMap, HashSet};

/// xorshift64*: small, deterministic, good enough to draw schemas.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Rule {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
}

struct Ref {
    parent: usize,
    composite: bool,
    nullable: bool,
    rule: Rule,
}

struct Row {
    id: i32,
    grp: i32,
    /// Per reference: the parent's (id, grp), or None.
    refs: Vec<Option<(i32, i32)>>,
    /// Stored in the table's inheritance child `tK_c` rather than in `tK`.
    in_child: bool,
}

/// How a table is built beyond its columns and references.
#[derive(Default, Clone, Copy, Debug)]
struct Features {
    /// PARTITION BY LIST (grp), partitions tK_p0..tK_p2; primary key (id, grp).
    partitioned: bool,
    /// An inheritance child `tK_c (extra text)` without foreign keys.
    child: bool,
    /// `twice int GENERATED ALWAYS AS (id * 2) STORED`.
    generated: bool,
    /// `shadow text` kept by a BEFORE INSERT OR UPDATE trigger.
    shadow: bool,
    /// An AFTER DELETE trigger logging into `<schema>_log.deleted`.
    log: bool,
}

struct Schema {
    name: String,
    refs: Vec<Vec<Ref>>,
    rows: Vec<Vec<Row>>,
    features: Vec<Features>,
}

fn generate(rng: &mut Rng, name: String) -> Schema {
    let tables = 2 + rng.below(6);
    // The subject table may reference itself (people managing people).
    let subject_self = match rng.below(5) {
        0 => vec![Ref {
            parent: 0,
            composite: false,
            nullable: true,
            rule: Rule::SetNull,
        }],
        1 => vec![Ref {
            parent: 0,
            composite: false,
            nullable: true,
            rule: Rule::Cascade,
        }],
        _ => Vec::new(),
    };
    let mut refs: Vec<Vec<Ref>> = vec![subject_self];
    for t in 1..tables {
        let n = 1 + rng.below(2);
        let mut list = Vec::new();
        for m in 0..n {
            let self_ref = m > 0 && rng.chance(25);
            let parent = if self_ref {
                t
            } else if m == 0 && t == 1 {
                0
            } else {
                rng.below(t)
            };
            let nullable = self_ref || rng.chance(50);
            let rule = match rng.below(4) {
                0 => Rule::NoAction,
                1 => Rule::Restrict,
                2 => Rule::Cascade,
                _ if nullable => Rule::SetNull,
                _ => Rule::Cascade,
            };
            list.push(Ref {
                parent,
                composite: rng.chance(30),
                nullable,
                rule,
            });
        }
        refs.push(list);
    }
    let mut rows: Vec<Vec<Row>> = Vec::new();
    for t in 0..tables {
        let count = 3 + rng.below(12) as i32;
        let mut table_rows: Vec<Row> = Vec::new();
        for id in 1..=count {
            let mut values = Vec::new();
            for r in &refs[t] {
                let candidates: Vec<(i32, i32)> = if r.parent == t {
                    table_rows.iter().map(|p| (p.id, p.grp)).collect()
                } else {
                    rows[r.parent].iter().map(|p| (p.id, p.grp)).collect()
                };
                let value = if candidates.is_empty() || (r.nullable && rng.chance(30)) {
                    None
                } else {
                    Some(candidates[rng.below(candidates.len())])
                };
                values.push(value);
            }
            if values
                .iter()
                .zip(&refs[t])
                .any(|(v, r)| v.is_none() && !r.nullable)
            {
                continue;
            }
            table_rows.push(Row {
                id,
                grp: id % 3,
                refs: values,
                in_child: false,
            });
        }
        rows.push(table_rows);
    }
    // Physical shapes, drawn after the data so that the references keep
    // their meaning: partitioned tables (not the subject), whose references
    // in become composite; inheritance children for tables nothing
    // references (foreign keys do not see inherited rows).
    let mut features = vec![Features::default(); tables];
    for (t, f) in features.iter_mut().enumerate() {
        f.partitioned = t > 0 && rng.chance(30);
        f.generated = rng.chance(30);
        f.shadow = rng.chance(30);
        f.log = rng.chance(30);
    }
    for list in refs.iter_mut() {
        for r in list.iter_mut() {
            if features[r.parent].partitioned {
                r.composite = true;
            }
        }
    }
    let referenced: HashSet<usize> = refs.iter().flatten().map(|r| r.parent).collect();
    for t in 1..tables {
        if !features[t].partitioned && !referenced.contains(&t) && rng.chance(50) {
            features[t].child = true;
            for row in rows[t].iter_mut() {
                row.in_child = rng.chance(50);
            }
        }
    }
    Schema {
        name,
        refs,
        rows,
        features,
    }
}

fn rule_sql(rule: Rule) -> &'static str {
    match rule {
        Rule::NoAction => "NO ACTION",
        Rule::Restrict => "RESTRICT",
        Rule::Cascade => "CASCADE",
        Rule::SetNull => "SET NULL",
    }
}

fn ddl(s: &Schema) -> String {
    // The log lives outside the schema: snapshot() compares the schema's
    // tables only.
    let log = format!("{}_log", s.name);
    let mut sql = format!(
        "CREATE SCHEMA {name};\nCREATE SCHEMA {log};\n\
         CREATE TABLE {log}.deleted (tbl text NOT NULL, id int NOT NULL);\n\
         CREATE FUNCTION {log}.log_delete() RETURNS trigger LANGUAGE plpgsql AS $f$\n\
         BEGIN INSERT INTO {log}.deleted (tbl, id) VALUES (TG_ARGV[0], OLD.id); RETURN OLD; END $f$;\n\
         CREATE FUNCTION {log}.shadow() RETURNS trigger LANGUAGE plpgsql AS $f$\n\
         BEGIN NEW.shadow := {shadow}; RETURN NEW; END $f$;\n",
        name = s.name,
        shadow = shadow_expr("NEW"),
    );
    for (t, refs) in s.refs.iter().enumerate() {
        let f = s.features[t];
        let mut cols = vec![
            if f.partitioned {
                "id int NOT NULL".to_string()
            } else {
                "id int PRIMARY KEY".to_string()
            },
            "grp int NOT NULL".to_string(),
            "note text".to_string(),
        ];
        let mut constraints = vec!["UNIQUE (id, grp)".to_string()];
        if f.partitioned {
            constraints.insert(0, "PRIMARY KEY (id, grp)".to_string());
        }
        if f.generated {
            cols.push("twice int GENERATED ALWAYS AS (id * 2) STORED".to_string());
        }
        if f.shadow {
            cols.push("shadow text".to_string());
        }
        for (m, r) in refs.iter().enumerate() {
            let null = if r.nullable { "" } else { " NOT NULL" };
            let target = format!("{}.t{}", s.name, r.parent);
            if r.composite {
                cols.push(format!("r{m} int{null}"));
                cols.push(format!("r{m}g int{null}"));
                constraints.push(format!(
                    "FOREIGN KEY (r{m}, r{m}g) REFERENCES {target} (id, grp) ON DELETE {}",
                    rule_sql(r.rule)
                ));
            } else {
                cols.push(format!("r{m} int{null}"));
                constraints.push(format!(
                    "FOREIGN KEY (r{m}) REFERENCES {target} (id) ON DELETE {}",
                    rule_sql(r.rule)
                ));
            }
        }
        sql += &format!(
            "CREATE TABLE {}.t{t} ({}, {}){};\n",
            s.name,
            cols.join(", "),
            constraints.join(", "),
            if f.partitioned {
                " PARTITION BY LIST (grp)"
            } else {
                ""
            }
        );
        if f.partitioned {
            for g in 0..3 {
                sql += &format!(
                    "CREATE TABLE {0}.t{t}_p{g} PARTITION OF {0}.t{t} FOR VALUES IN ({g});\n",
                    s.name
                );
            }
        }
        // The child's reference columns carry no foreign keys: pg_forget
        // reaches its rows through the parent.
        let mut physical = vec![format!("{}.t{t}", s.name)];
        if f.child {
            sql += &format!(
                "CREATE TABLE {0}.t{t}_c (extra text) INHERITS ({0}.t{t});\n",
                s.name
            );
            physical.push(format!("{}.t{t}_c", s.name));
        }
        for p in &physical {
            if f.shadow {
                sql += &format!(
                    "CREATE TRIGGER shadow BEFORE INSERT OR UPDATE ON {p} FOR EACH ROW EXECUTE FUNCTION {log}.shadow();\n"
                );
            }
            if f.log {
                sql += &format!(
                    "CREATE TRIGGER log AFTER DELETE ON {p} FOR EACH ROW EXECUTE FUNCTION {log}.log_delete('t{t}');\n"
                );
            }
        }
        for (m, r) in refs.iter().enumerate() {
            let c = if r.composite {
                format!("r{m}, r{m}g")
            } else {
                format!("r{m}")
            };
            sql += &format!("CREATE INDEX ON {}.t{t} ({c});\n", s.name);
        }
    }
    for (t, rows) in s.rows.iter().enumerate() {
        for row in rows {
            let mut names = vec!["id".to_string(), "grp".into(), "note".into()];
            let mut values = vec![
                row.id.to_string(),
                row.grp.to_string(),
                format!("'n{}'", row.id),
            ];
            for (m, (v, r)) in row.refs.iter().zip(&s.refs[t]).enumerate() {
                let (id, grp) = v
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .unwrap_or(("NULL".into(), "NULL".into()));
                names.push(format!("r{m}"));
                values.push(id);
                if r.composite {
                    names.push(format!("r{m}g"));
                    values.push(grp);
                }
            }
            let target = if row.in_child {
                names.push("extra".into());
                values.push(format!("'x{}'", row.id));
                format!("{}.t{t}_c", s.name)
            } else {
                format!("{}.t{t}", s.name)
            };
            sql += &format!(
                "INSERT INTO {target} ({}) VALUES ({});\n",
                names.join(", "),
                values.join(", ")
            );
        }
    }
    sql
}

/// What the shadow trigger stores for `row` (a record variable or alias):
/// every column but the derived and generated ones.
fn shadow_expr(row: &str) -> String {
    format!("(pg_catalog.to_jsonb({row}) - 'shadow' - 'twice')::text")
}

/// The relations holding table t's rows, each read on its own (ONLY for
/// a plain table, so that a child's own columns are seen).
fn physical_tables(s: &Schema, t: usize) -> Vec<String> {
    let f = s.features[t];
    if f.partitioned {
        (0..3).map(|g| format!("{}.t{t}_p{g}", s.name)).collect()
    } else if f.child {
        vec![
            format!("ONLY {}.t{t}", s.name),
            format!("{}.t{t}_c", s.name),
        ]
    } else {
        vec![format!("{}.t{t}", s.name)]
    }
}

/// What PostgreSQL's own ON DELETE rules would do (delete for everything but
/// SET NULL), computed to a fixpoint: (deleted rows, nullified references).
fn oracle(s: &Schema, subject: i32) -> (HashSet<(usize, i32)>, HashSet<(usize, i32, usize)>) {
    let mut deleted: HashSet<(usize, i32)> = HashSet::from([(0, subject)]);
    let mut nullified = HashSet::new();
    loop {
        let before = (deleted.len(), nullified.len());
        for (t, rows) in s.rows.iter().enumerate() {
            for row in rows {
                if deleted.contains(&(t, row.id)) {
                    continue;
                }
                for (m, (v, r)) in row.refs.iter().zip(&s.refs[t]).enumerate() {
                    let Some((pid, pgrp)) = v else { continue };
                    let parent = s.rows[r.parent]
                        .iter()
                        .find(|p| p.id == *pid && (!r.composite || p.grp == *pgrp));
                    if parent.is_some_and(|p| deleted.contains(&(r.parent, p.id))) {
                        if r.rule == Rule::SetNull {
                            nullified.insert((t, row.id, m));
                        } else {
                            deleted.insert((t, row.id));
                        }
                    }
                }
            }
        }
        if (deleted.len(), nullified.len()) == before {
            return (deleted, nullified);
        }
    }
}

fn render_row(
    row: &Row,
    refs: &[Ref],
    t: usize,
    nullified: &HashSet<(usize, i32, usize)>,
) -> String {
    let mut parts = vec![row.id.to_string(), row.grp.to_string()];
    for (m, (v, r)) in row.refs.iter().zip(refs).enumerate() {
        let v = if nullified.contains(&(t, row.id, m)) {
            None
        } else {
            *v
        };
        parts.push(v.map(|x| x.0.to_string()).unwrap_or("-".into()));
        if r.composite {
            parts.push(v.map(|x| x.1.to_string()).unwrap_or("-".into()));
        }
    }
    parts.join("|")
}

fn actual_rows(c: &mut postgres::Client, s: &Schema, t: usize) -> Vec<String> {
    let mut cols = vec!["id::text".to_string(), "grp::text".to_string()];
    for (m, r) in s.refs[t].iter().enumerate() {
        cols.push(format!("coalesce(r{m}::text, '-')"));
        if r.composite {
            cols.push(format!("coalesce(r{m}g::text, '-')"));
        }
    }
    let sql = format!(
        "SELECT concat_ws('|', {}) FROM {}.t{t} ORDER BY id",
        cols.join(", "),
        s.name
    );
    c.query(&sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn delete_client_matches_the_oracle_on_random_schemas() {
    let cases: u64 = std::env::var("PGFORGET_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let base: u64 = std::env::var("PGFORGET_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261122);
    let mut c = fresh_db("e2e_property");
    // What the cases covered, printed at the end: [partitioned tables,
    // inheritance children, generated, shadow, log, rows deleted in
    // partitioned tables, rows deleted from children, rows nullified in
    // partitioned tables or children].
    let mut covered = [0usize; 8];
    for case in 0..cases {
        let seed = base + case;
        let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
        let s = generate(&mut rng, format!("p{case}"));
        c.batch_execute(&ddl(&s)).unwrap();
        c.execute(
            "SELECT forget.register_subject($1, $2::text::regclass)",
            &[&s.name, &format!("{}.t0", s.name)],
        )
        .unwrap();
        let subject = s.rows[0][rng.below(s.rows[0].len())].id;
        let (deleted, nullified) = oracle(&s, subject);
        for (t, f) in s.features.iter().enumerate() {
            covered[0] += f.partitioned as usize;
            covered[1] += f.child as usize;
            covered[2] += f.generated as usize;
            covered[3] += f.shadow as usize;
            covered[4] += f.log as usize;
            for row in &s.rows[t] {
                let gone = deleted.contains(&(t, row.id));
                let nulled = (0..row.refs.len()).any(|m| nullified.contains(&(t, row.id, m)));
                covered[5] += (gone && f.partitioned) as usize;
                covered[6] += (gone && row.in_child) as usize;
                covered[7] += (!gone && nulled && (f.partitioned || row.in_child)) as usize;
            }
        }

        // An anonymization with a grace period, then a restore: every table
        // is what it was. Masks on every table's note; random anonymize
        // policies on the edges into the subject table.
        let mut config = String::new();
        for (t, refs) in s.refs.iter().enumerate() {
            config += &format!(
                "SELECT forget.mask('{}.t{t}', 'note', $$'masked'$$);\n",
                s.name
            );
            for (m, r) in refs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.parent == 0 && t != 0)
            {
                let choices: &[&str] = if r.nullable {
                    &["anonymize", "delete", "keep", "nullify"]
                } else {
                    &["anonymize", "delete", "keep"]
                };
                let policy = choices[rng.below(choices.len())];
                config += &format!(
                    "SELECT forget.set_policy('{}.t{t}', 'r{m}', 'anonymize', '{policy}');\n",
                    s.name
                );
            }
        }
        c.batch_execute(&config).unwrap();
        let before = snapshot(&mut c, &s.name);
        c.query(
            "SELECT * FROM forget.anonymize_client($1::bigint, grace => '1 hour', subject => $2)",
            &[&(subject as i64), &s.name],
        )
        .unwrap_or_else(|e| {
            panic!(
                "seed {seed}: anonymize with grace failed: {e}\n{}\n{config}",
                ddl(&s)
            )
        });
        c.query(
            "SELECT * FROM forget.restore_client($1::bigint, subject => $2)",
            &[&(subject as i64), &s.name],
        )
        .unwrap_or_else(|e| {
            panic!(
                "seed {seed}: restore of the anonymization failed: {e}\n{}\n{config}",
                ddl(&s)
            )
        });
        assert_eq!(
            snapshot(&mut c, &s.name),
            before,
            "seed {seed}: restore undid the anonymization\n{}\n{config}",
            ddl(&s)
        );

        // A delete with a grace period, then a restore: the same.
        let before = snapshot(&mut c, &s.name);
        c.query(
            "SELECT * FROM forget.delete_client($1::bigint, grace => '1 hour', subject => $2)",
            &[&(subject as i64), &s.name],
        )
        .unwrap_or_else(|e| panic!("seed {seed}: delete with grace failed: {e}"));
        c.query(
            "SELECT * FROM forget.restore_client($1::bigint, subject => $2)",
            &[&(subject as i64), &s.name],
        )
        .unwrap_or_else(|e| panic!("seed {seed}: restore failed: {e}\n{}", ddl(&s)));
        assert_eq!(
            snapshot(&mut c, &s.name),
            before,
            "seed {seed}: restore gave back every row\n{}",
            ddl(&s)
        );

        let plan = c
            .query("SELECT tbl::text, operation, rows FROM forget.delete_client($1::bigint, dry_run => true, subject => $2)", &[&(subject as i64), &s.name])
            .unwrap_or_else(|e| panic!("seed {seed}: dry run failed: {e}"));
        let mut planned: BTreeMap<(String, String), i64> = BTreeMap::new();
        for r in &plan {
            planned.insert((r.get(0), r.get(1)), r.get(2));
        }
        c.batch_execute(&format!("TRUNCATE {}_log.deleted", s.name))
            .unwrap();
        c.query(
            "SELECT * FROM forget.delete_client($1::bigint, subject => $2)",
            &[&(subject as i64), &s.name],
        )
        .unwrap_or_else(|e| panic!("seed {seed}: delete failed: {e}\n{}", ddl(&s)));

        for t in 0..s.rows.len() {
            let expected: Vec<String> = s.rows[t]
                .iter()
                .filter(|r| !deleted.contains(&(t, r.id)))
                .map(|r| render_row(r, &s.refs[t], t, &nullified))
                .collect();
            assert_eq!(
                actual_rows(&mut c, &s, t),
                expected,
                "seed {seed}, table t{t}\n{}",
                ddl(&s)
            );
            let name = format!("{}.t{t}", s.name);
            let gone = deleted.iter().filter(|(x, _)| *x == t).count() as i64;
            let nulled = s.rows[t]
                .iter()
                .filter(|r| {
                    !deleted.contains(&(t, r.id))
                        && (0..r.refs.len()).any(|m| nullified.contains(&(t, r.id, m)))
                })
                .count() as i64;
            assert_eq!(
                planned
                    .get(&(name.clone(), "delete".into()))
                    .copied()
                    .unwrap_or(0),
                gone,
                "seed {seed}: planned deletes in {name}"
            );
            assert_eq!(
                planned
                    .get(&(name.clone(), "nullify".into()))
                    .copied()
                    .unwrap_or(0),
                nulled,
                "seed {seed}: planned nullifications in {name}"
            );
            // The triggers ran for every row the delete changed: each row
            // deleted was logged once, and each row's derived column
            // matches its values (nullified ones included).
            if s.features[t].log {
                let mut logged: Vec<i32> = c
                    .query(
                        &format!("SELECT id FROM {}_log.deleted WHERE tbl = $1", s.name),
                        &[&format!("t{t}")],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                logged.sort();
                let mut expected: Vec<i32> = deleted
                    .iter()
                    .filter(|(x, _)| *x == t)
                    .map(|(_, id)| *id)
                    .collect();
                expected.sort();
                assert_eq!(
                    logged,
                    expected,
                    "seed {seed}: AFTER DELETE trigger log of {name}\n{}",
                    ddl(&s)
                );
            }
            if s.features[t].shadow {
                for p in physical_tables(&s, t) {
                    let stale = count(
                        &mut c,
                        &format!(
                            "SELECT t::text FROM {p} t WHERE shadow IS DISTINCT FROM {}",
                            shadow_expr("t")
                        ),
                    );
                    assert_eq!(
                        stale,
                        0,
                        "seed {seed}: rows of {p} whose BEFORE trigger did not run\n{}",
                        ddl(&s)
                    );
                }
            }
        }
        c.batch_execute(&format!(
            "DROP SCHEMA {0} CASCADE; DROP SCHEMA {0}_log CASCADE; DELETE FROM forget.undo; DELETE FROM forget.deleted_clients; \
             DELETE FROM forget.policies; DELETE FROM forget.masks; DELETE FROM forget.subjects WHERE name = '{0}'",
            s.name
        ))
        .unwrap();
    }
    eprintln!(
        "{cases} cases: {} partitioned tables, {} inheritance children, {} generated columns, \
         {} shadow triggers, {} delete logs; rows deleted in partitions {}, in children {}; \
         nullified there {}",
        covered[0],
        covered[1],
        covered[2],
        covered[3],
        covered[4],
        covered[5],
        covered[6],
        covered[7]
    );
}
