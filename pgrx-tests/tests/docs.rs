//! The documentation is tested: every SQL example in README.md and docs/
//! runs, and shows what it really prints.
//!
//! The convention (docs/README.md, "How the examples are tested", says the
//! same for writers of pages):
//!
//! - Pages are README.md and every `*.md` file under docs/.
//! - Every ```` ```sql ```` fenced block runs, in page order, in one psql
//!   session (`psql -X -q`, statements read from standard input, so no
//!   command tags and no `psql:file:line:` prefixes; `\set SHOW_CONTEXT
//!   never`; `PGTZ=UTC`, `PGDATESTYLE=ISO, MDY`, client encoding UTF8).
//! - `<!-- docs-test: FILE... [NAME=VALUE...] [no-extension] -->` on a line
//!   of its own starts a new database for the blocks after it: the database
//!   is created with pg_forget installed (unless `no-extension`), and each
//!   FILE (a path from the repository root) is loaded with `psql -f`, the
//!   NAME=VALUE pairs given as psql variables. Blocks before any such
//!   comment run in a database with pg_forget installed and nothing else.
//! - A ```` ```sql ```` block followed by a ```` ```text ```` block (only
//!   blank lines between) must print exactly that text: psql's aligned
//!   output, NOTICEs and errors included, in order; trailing spaces and
//!   trailing blank lines are ignored; a line holding only `...` stands for
//!   one or more lines of any content. Show output only where it is
//!   deterministic (select the columns that are; timestamps and random
//!   values are not), or cut it with `...`.
//! - An error is expected only where the block's output shows it (a line
//!   starting `ERROR:`); any other error fails the test, naming the page,
//!   the line of the block and what psql printed.
//! - ```` ```sql norun ```` is SQL shown but not run: it needs something a
//!   test database does not have (pg_cron's own database, a replica,
//!   another server). Other fences (```` ```sh ````, ```` ```conf ````,
//!   ```` ```text ```` on their own) are never run.
//! - A role a page creates (`CREATE ROLE name`) is dropped before the page
//!   runs and after it. Each database is `docs_<page>_<n>`; one whose
//!   examples failed is kept for inspection.
//!
//! `PGFORGET_DOCS_BLESS=1` writes what each block printed into its
//! ```` ```text ```` block where they differ (a tool for writing pages:
//! review the diff).
//!
//! The other tests have oracles nobody writes by hand: the catalog's list of
//! public functions against the reference's headings, the settings the code
//! reads against the reference's settings table, the words the pages must
//! not contain, and every relative link.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// ---------------------------------------------------------------------------
// Pages and their blocks

/// README.md and every *.md under docs/, repository-relative, sorted.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let root = repo_root();
    let mut out = vec![PathBuf::from("README.md")];
    walk(&root.join("docs"), &root, &mut out);
    out
}

#[derive(Debug)]
struct Fence {
    /// 1-based line of the opening fence.
    line: usize,
    info: String,
    indent: usize,
    /// Content lines, the fence's indentation removed.
    body: Vec<String>,
    /// 0-based line range of the content in the file (for blessing).
    body_range: (usize, usize),
}

#[derive(Debug)]
enum Item {
    Fixture {
        line: usize,
        files: Vec<String>,
        vars: Vec<(String, String)>,
        extension: bool,
    },
    Fence(Fence),
}

/// The page as a sequence of fixture comments and fenced blocks.
fn parse(text: &str) -> Vec<Item> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let indent = lines[i].len() - trimmed.len();
        if let Some(info) = trimmed.strip_prefix("```") {
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                let l = lines[i];
                let strip = l.len() - l.trim_start().len();
                body.push(l[strip.min(indent)..].to_string());
                i += 1;
            }
            items.push(Item::Fence(Fence {
                line: start + 1,
                info: info.trim().to_string(),
                indent,
                body,
                body_range: (start + 1, i),
            }));
        } else if let Some(rest) = trimmed.strip_prefix("<!-- docs-test:") {
            let rest = rest.trim().strip_suffix("-->").unwrap_or_else(|| {
                panic!("line {}: a docs-test comment must end on its line", i + 1)
            });
            let mut files = Vec::new();
            let mut vars = Vec::new();
            let mut extension = true;
            for token in rest.split_whitespace() {
                if token == "no-extension" {
                    extension = false;
                } else if let Some((k, v)) = token.split_once('=') {
                    vars.push((k.to_string(), v.to_string()));
                } else {
                    files.push(token.to_string());
                }
            }
            items.push(Item::Fixture {
                line: i + 1,
                files,
                vars,
                extension,
            });
        }
        i += 1;
    }
    items
}

#[derive(Debug)]
struct Example<'a> {
    sql: &'a Fence,
    expected: Option<&'a Fence>,
}

#[derive(Debug)]
struct Segment<'a> {
    /// Line of the docs-test comment (0: the page's start).
    line: usize,
    files: Vec<String>,
    vars: Vec<(String, String)>,
    extension: bool,
    examples: Vec<Example<'a>>,
}

/// The page's runnable examples, grouped by the database they run in.
fn segments<'a>(items: &'a [Item], text: &str) -> Vec<Segment<'a>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![Segment {
        line: 0,
        files: vec![],
        vars: vec![],
        extension: true,
        examples: vec![],
    }];
    for (n, item) in items.iter().enumerate() {
        match item {
            Item::Fixture {
                line,
                files,
                vars,
                extension,
            } => out.push(Segment {
                line: *line,
                files: files.clone(),
                vars: vars.clone(),
                extension: *extension,
                examples: vec![],
            }),
            Item::Fence(f) if f.info == "sql" => {
                // The output block: the next fence, if only blank lines
                // stand between.
                let expected = match items.get(n + 1) {
                    Some(Item::Fence(next))
                        if next.info == "text"
                            && lines[f.body_range.1 + 1..next.line - 1]
                                .iter()
                                .all(|l| l.trim().is_empty()) =>
                    {
                        Some(next)
                    }
                    _ => None,
                };
                out.last_mut()
                    .unwrap()
                    .examples
                    .push(Example { sql: f, expected });
            }
            Item::Fence(f) => {
                let lang = f.info.split_whitespace().next().unwrap_or("");
                assert!(
                    lang != "sql" || f.info == "sql norun",
                    "line {}: unknown fence \"{}\" (sql, or sql norun)",
                    f.line,
                    f.info
                );
            }
        }
    }
    out.retain(|s| !s.examples.is_empty());
    out
}

// ---------------------------------------------------------------------------
// Running

fn slug(page: &Path) -> String {
    let s = page.to_string_lossy().to_lowercase();
    let s = s.strip_prefix("docs/").unwrap_or(&s);
    let s = s.strip_suffix(".md").unwrap_or(s);
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// psql as the examples run it: output and errors in one stream, in order.
fn psql_session(db: &str) -> Command {
    let base = psql_cmd(db);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(base.get_program())
        .args(base.get_args());
    deterministic_env(&mut cmd);
    cmd
}

fn deterministic_env(cmd: &mut Command) {
    cmd.env("PGTZ", "UTC")
        .env("PGDATESTYLE", "ISO, MDY")
        .env("PGCLIENTENCODING", "UTF8")
        .env("LC_ALL", "C")
        .env_remove("PGOPTIONS");
}

/// Roles the page creates (`CREATE ROLE name`).
fn created_roles(text: &str) -> BTreeSet<String> {
    let lower = text.to_lowercase();
    let mut roles = BTreeSet::new();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("create role ") {
        rest = &rest[at + "create role ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && name != "if" {
            roles.insert(name);
        }
    }
    roles
}

fn drop_roles(roles: &BTreeSet<String>) {
    if roles.is_empty() {
        return;
    }
    let mut admin = connect("postgres");
    for r in roles {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {r}"))
            .unwrap_or_else(|e| panic!("drop role {r} the docs created: {e}"));
    }
}

fn drop_db(name: &str) {
    connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
}

/// Whether `actual` matches `expected`, where a line `...` stands for one
/// or more lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => (1..=actual.len()).any(|n| matches(rest, &actual[n..])),
        Some((e, rest)) => !actual.is_empty() && actual[0] == *e && matches(rest, &actual[1..]),
    }
}

fn normalized(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines.iter().map(|l| l.trim_end().to_string()).collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    out
}

const MARK: &str = "@@docs-block ";

/// A line of psql's output that reports an error: the server's, or psql's
/// own about a meta-command.
fn is_error(line: &str) -> bool {
    [
        "ERROR:",
        "FATAL:",
        "PANIC:",
        "invalid command",
        "psql:",
        "no rows returned for \\g",
        "more than one row returned for \\g",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// Runs one page; returns its failures and the blessings (file line range
/// of an output block and what to put there).
/// Where an output block's content is (its lines in the file), its
/// indentation, and what to write there.
type Blessing = ((usize, usize), usize, Vec<String>);

fn run_page(page: &Path) -> (Vec<String>, Vec<Blessing>) {
    let text = std::fs::read_to_string(repo_root().join(page)).unwrap();
    let items = parse(&text);
    let segs = segments(&items, &text);
    let sql: String = segs
        .iter()
        .flat_map(|s| s.examples.iter())
        .flat_map(|e| e.sql.body.iter())
        .map(|l| format!("{l}\n"))
        .collect();
    let roles = created_roles(&sql);
    let mut failures = Vec::new();
    let mut blessings = Vec::new();
    let where_ = |line: usize| format!("{}:{}", page.display(), line);

    let db_name = |n: usize| format!("docs_{}_{}", slug(page), n);
    // The page's databases of an earlier run first: they may hold the roles.
    for n in 0..segs.len() {
        drop_db(&db_name(n));
    }
    drop_roles(&roles);
    let mut kept = false;
    for (n, seg) in segs.iter().enumerate() {
        let db = db_name(n);
        if seg.extension {
            drop(fresh_db(&db));
        } else {
            empty_db(&db);
        }
        let failures_before = failures.len();
        let mut loaded = true;
        for f in &seg.files {
            let mut cmd = psql_cmd(&db);
            deterministic_env(&mut cmd);
            for (k, v) in &seg.vars {
                cmd.args(["-v", &format!("{k}={v}")]);
            }
            let out = cmd.arg("-f").arg(repo_root().join(f)).output().unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{}: fixture {f} failed to load:\n{}",
                    where_(seg.line),
                    String::from_utf8_lossy(&out.stderr)
                ));
                loaded = false;
                break;
            }
        }
        if !loaded {
            continue;
        }

        // psql goes on after an error, so that one run reports every
        // failing block; an error is found in the block's output.
        let mut script = String::from("\\set SHOW_CONTEXT never\n\\set ON_ERROR_STOP 0\n");
        for (i, ex) in seg.examples.iter().enumerate() {
            script.push_str(&format!("\\echo '{MARK}{i}'\n"));
            let last = ex
                .sql
                .body
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("--"));
            if let Some(last) = last {
                if !(last.ends_with(';') || last.starts_with('\\') || last.contains(" \\g")) {
                    failures.push(format!(
                        "{}: the block does not end its last statement (a ; or a \\g... command)",
                        where_(ex.sql.line)
                    ));
                }
            }
            for l in &ex.sql.body {
                script.push_str(l);
                script.push('\n');
            }
        }
        script.push_str(&format!("\\echo '{MARK}end'\n"));

        let mut child = psql_session(&db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run psql");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(script.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let out = String::from_utf8_lossy(&out.stdout).to_string();

        // Split by the markers.
        let mut outputs: Vec<Option<Vec<String>>> = vec![None; seg.examples.len()];
        let mut current: Option<usize> = None;
        let mut ended = false;
        for line in out.lines() {
            if let Some(m) = line.strip_prefix(MARK) {
                if m == "end" {
                    ended = true;
                    current = None;
                } else {
                    let i: usize = m.parse().unwrap();
                    outputs[i] = Some(Vec::new());
                    current = Some(i);
                }
            } else if let Some(i) = current {
                outputs[i].as_mut().unwrap().push(line.to_string());
            }
        }
        for (i, ex) in seg.examples.iter().enumerate() {
            let Some(actual) = &outputs[i] else {
                failures.push(format!(
                    "{}: not run: psql stopped before this block (see the block before)",
                    where_(ex.sql.line)
                ));
                continue;
            };
            let actual = normalized(actual);
            let stopped_here = !ended && outputs[i + 1..].iter().all(|o| o.is_none());
            match ex.expected {
                None => {
                    if stopped_here || actual.iter().any(|l| is_error(l)) {
                        failures.push(format!(
                            "{}: the example failed:\n{}",
                            where_(ex.sql.line),
                            actual.join("\n")
                        ));
                    }
                }
                Some(expected) => {
                    let want = normalized(&expected.body);
                    // An error is shown, never hidden behind a `...`.
                    let errors = |v: &[String]| v.iter().filter(|l| is_error(l)).count();
                    if !matches(&want, &actual) || errors(&want) != errors(&actual) {
                        failures.push(format!(
                            "{}: the example printed something else than its output block (line {}).\n\
                             --- expected\n{}\n--- printed\n{}\n---",
                            where_(ex.sql.line),
                            expected.line,
                            want.join("\n"),
                            actual.join("\n")
                        ));
                        blessings.push((expected.body_range, expected.indent, actual.clone()));
                    } else if want == ["..."] {
                        // A placeholder: blessing fills it in.
                        blessings.push((expected.body_range, expected.indent, actual.clone()));
                    } else if stopped_here {
                        failures.push(format!(
                            "{}: psql stopped after this block",
                            where_(ex.sql.line)
                        ));
                    }
                }
            }
        }
        // A database whose examples failed stays, for a look at it.
        if failures.len() == failures_before {
            drop_db(&db);
        } else {
            kept = true;
            failures.push(format!(
                "{}: its database {db} is kept for inspection",
                page.display()
            ));
        }
    }
    if !kept {
        drop_roles(&roles);
    }
    (failures, blessings)
}

fn bless(page: &Path, mut blessings: Vec<Blessing>) {
    let path = repo_root().join(page);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    blessings.sort_by_key(|b| std::cmp::Reverse(b.0 .0));
    for ((from, to), indent, new) in blessings {
        let pad = " ".repeat(indent);
        let new: Vec<String> = new
            .into_iter()
            .map(|l| if l.is_empty() { l } else { format!("{pad}{l}") })
            .collect();
        lines.splice(from..to, new);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(&path, out).unwrap();
}

#[test]
fn every_sql_example_in_the_docs_runs_and_prints_its_output() {
    let only = std::env::var("PGFORGET_DOCS_PAGE").ok();
    let bless_mode = std::env::var("PGFORGET_DOCS_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in pages() {
        if let Some(only) = &only {
            if !page.to_string_lossy().contains(only.as_str()) {
                continue;
            }
        }
        let (f, b) = run_page(&page);
        ran += 1;
        eprintln!("docs: {} — {} failure(s)", page.display(), f.len());
        if bless_mode && !b.is_empty() {
            bless(&page, b);
        }
        failures.extend(f);
    }
    assert!(ran > 0, "no page ran");
    assert!(
        failures.is_empty(),
        "{} documentation example(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// The harness itself

#[test]
fn the_harness_parses_fixtures_outputs_and_wildcards() {
    let page = "intro\n\n<!-- docs-test: examples/a.sql n=3 -->\n\n```sql\nSELECT 1;\n```\n\n```text\n x\n...\n```\n\n```sql norun\nSELECT 2\n```\n\n```sh\nls\n```\n";
    let items = parse(page);
    let segs = segments(&items, page);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].files, vec!["examples/a.sql".to_string()]);
    assert_eq!(segs[0].vars, vec![("n".to_string(), "3".to_string())]);
    assert_eq!(segs[0].examples.len(), 1);
    let ex = &segs[0].examples[0];
    assert_eq!(ex.sql.body, vec!["SELECT 1;".to_string()]);
    assert_eq!(
        ex.expected.unwrap().body,
        vec![" x".to_string(), "...".to_string()]
    );

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches(&s(&["a", "...", "d"]), &s(&["a", "b", "c", "d"])));
    assert!(!matches(&s(&["a", "...", "d"]), &s(&["a", "d"])));
    assert!(!matches(&s(&["a"]), &s(&["a", "b"])));
    assert!(matches(&s(&["..."]), &s(&["x"])));
    assert_eq!(
        slug(Path::new("docs/cookbook/billing.md")),
        "cookbook_billing"
    );
    assert_eq!(
        created_roles("CREATE ROLE support_desk NOLOGIN; create role app;"),
        ["app".to_string(), "support_desk".to_string()]
            .into_iter()
            .collect()
    );
}

// ---------------------------------------------------------------------------
// Oracles

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The page's text outside fenced blocks.
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            out.push((i + 1, l.to_string()));
        }
    }
    out
}

/// Every anchor of a page (duplicates numbered as GitHub does).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut out = BTreeSet::new();
    for (_, l) in prose(text) {
        let t = l.trim_start();
        if t.starts_with('#') {
            let h = t.trim_start_matches('#');
            if h.starts_with(' ') {
                let a = anchor(&h.replace('`', ""));
                let n = seen.entry(a.clone()).or_insert(0);
                out.insert(if *n == 0 {
                    a.clone()
                } else {
                    format!("{a}-{n}")
                });
                *n += 1;
            }
        }
    }
    out
}

#[test]
fn every_public_function_has_a_reference_entry_and_every_entry_a_function() {
    let db = "docs_catalog";
    let mut c = fresh_db(db);
    let functions: BTreeSet<String> = texts(
        &mut c,
        "SELECT DISTINCT proname::text FROM pg_proc
         WHERE pronamespace = 'forget'::regnamespace AND proname NOT LIKE '\\_%'",
    )
    .into_iter()
    .collect();
    drop(c);
    drop_db(db);

    let text = std::fs::read_to_string(repo_root().join("docs/reference.md")).unwrap();
    // Function entries are `### forget.<name>`; tables are headed
    // ``### `forget.<table>` `` and are not entries.
    let entries: BTreeSet<String> = prose(&text)
        .into_iter()
        .filter_map(|(n, l)| {
            l.strip_prefix("### forget.").map(|name| {
                let name = name.trim().to_string();
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "docs/reference.md:{n}: an entry heading is `### forget.<name>` and nothing else"
                );
                name
            })
        })
        .collect();
    let missing: Vec<_> = functions.difference(&entries).collect();
    let unknown: Vec<_> = entries.difference(&functions).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/reference.md: functions without an entry (### forget.<name>): {missing:?}; \
         entries naming no function of schema forget: {unknown:?}"
    );
}

#[test]
fn no_page_refers_to_the_specification_or_its_numbering() {
    let mut bad = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(repo_root().join(&page)).unwrap();
        for (i, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let mut hits: Vec<&str> = ["../shared", "spec.md"]
                .into_iter()
                .filter(|w| lower.contains(w))
                .collect();
            for word in ["problem ", "issue "] {
                for (at, _) in lower.match_indices(word) {
                    let next = lower[at + word.len()..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        hits.push(word.trim());
                    }
                }
            }
            if !hits.is_empty() {
                bad.push(format!("{}:{}: {hits:?}: {line}", page.display(), i + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "pages must stand alone:\n{}",
        bad.join("\n")
    );
}

/// The targets of `[text](target)` links in the page's prose.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        // Inline code is no link.
        let mut plain = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                plain.push(c);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_points_at_a_file_and_anchor_that_exist() {
    let root = repo_root();
    let mut bad = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(root.join(&page)).unwrap();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, frag) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                root.join(&page)
            } else {
                root.join(page.parent().unwrap()).join(file)
            };
            if !path.exists() {
                bad.push(format!("{}:{line}: {target}: no such file", page.display()));
                continue;
            }
            if let Some(frag) = frag {
                if path.extension().is_some_and(|e| e == "md") {
                    let target_text = std::fs::read_to_string(&path).unwrap();
                    if !anchors(&target_text).contains(frag) {
                        bad.push(format!(
                            "{}:{line}: {target}: no such anchor",
                            page.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

/// Every setting the extension's code reads (`guc("forget.…")`,
/// `current_setting('forget.…'`) is a row of the reference's settings
/// table, and every row a setting the code reads.
#[test]
fn every_setting_the_code_reads_is_in_the_reference() {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "sql") {
                out.push(p);
            }
        }
    }
    let root = repo_root();
    let mut sources = Vec::new();
    files(&root.join("src"), &mut sources);
    files(&root.join("sql"), &mut sources);
    let mut read = BTreeSet::new();
    for f in sources {
        let text = std::fs::read_to_string(&f).unwrap();
        for call in ["guc(", "current_setting("] {
            for (at, _) in text.match_indices(call) {
                let rest = text[at + call.len()..].trim_start();
                let Some(rest) = rest.strip_prefix(['"', '\'']) else {
                    continue;
                };
                let Some(name) = rest.strip_prefix("forget.") else {
                    continue;
                };
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                read.insert(format!("forget.{name}"));
            }
        }
    }
    assert!(
        read.len() >= 5,
        "found too few settings in the sources: {read:?}"
    );
    let reference = std::fs::read_to_string(root.join("docs/reference.md")).unwrap();
    let documented: BTreeSet<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("| `forget."))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| format!("forget.{name}"))
        .collect();
    let missing: Vec<_> = read.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&read).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/reference.md, Settings: settings the code reads but the table lacks: {missing:?}; \
         rows naming a setting no code reads: {unknown:?}"
    );
}
