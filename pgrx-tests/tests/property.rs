//! Property test: random schemas (foreign-key trees and DAGs, self-references,
//! composite keys, nullable and NOT NULL references, every ON DELETE rule)
//! with random data. After delete_client, exactly the rows an independent
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
}

struct Schema {
    name: String,
    refs: Vec<Vec<Ref>>,
    rows: Vec<Vec<Row>>,
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
            });
        }
        rows.push(table_rows);
    }
    Schema { name, refs, rows }
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
    let mut sql = format!("CREATE SCHEMA {};\n", s.name);
    for (t, refs) in s.refs.iter().enumerate() {
        let mut cols = vec![
            "id int PRIMARY KEY".to_string(),
            "grp int NOT NULL".to_string(),
            "note text".to_string(),
        ];
        let mut constraints = vec!["UNIQUE (id, grp)".to_string()];
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
            "CREATE TABLE {}.t{t} ({}, {});\n",
            s.name,
            cols.join(", "),
            constraints.join(", ")
        );
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
            let mut values = vec![
                row.id.to_string(),
                row.grp.to_string(),
                format!("'n{}'", row.id),
            ];
            for (v, r) in row.refs.iter().zip(&s.refs[t]) {
                let (id, grp) = v
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .unwrap_or(("NULL".into(), "NULL".into()));
                values.push(id);
                if r.composite {
                    values.push(grp);
                }
            }
            sql += &format!(
                "INSERT INTO {}.t{t} VALUES ({});\n",
                s.name,
                values.join(", ")
            );
        }
    }
    sql
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
        }
        c.batch_execute(&format!(
            "DROP SCHEMA {} CASCADE; DELETE FROM forget.undo; DELETE FROM forget.deleted_clients; \
             DELETE FROM forget.policies; DELETE FROM forget.masks; DELETE FROM forget.subjects WHERE name = '{}'",
            s.name, s.name
        ))
        .unwrap();
    }
}
