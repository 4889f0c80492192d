//! Rules (blockers): a DBA's query with `$1` for the subject's key, where
//! every row returned is one blocking object. One key is checked with the
//! query as written; a cleanup batch checks all its keys in one statement
//! per rule, the query's `$1` turned into a reference to each key.

use crate::cache::Entry;
use crate::catalog::Subject;
use crate::errors::spi;
use crate::execute::key_datum;
use crate::identity::as_run_as;

/// A rule runs as the subject's run-as role, with its own declared path.
fn as_rule<T>(subject: &Subject, path: &str, f: impl FnOnce() -> T) -> T {
    as_run_as(subject.run_as, &subject.name, None, path, f)
}
use pgrx::prelude::*;

/// One rule's verdict for one key.
pub struct Verdict {
    pub rule: String,
    pub blocking: i64,
    pub message: String,
}

/// A rule's query for one key ($1 of the key's type) or for a batch of keys
/// ($1 text[]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleForm {
    OneKey,
    ManyKeys,
}

/// The statement for a rule in `form`, with the type of its $1. OneKey
/// counts the blocking objects of the key $1; ManyKeys returns which of the
/// keys in $1 the rule blocks, the query running once per key in one
/// statement.
pub fn statement(form: RuleForm, query: &str, subject: &Subject) -> (String, pg_sys::Oid) {
    match form {
        RuleForm::OneKey => (
            format!("SELECT pg_catalog.count(*) FROM ({query}) forget_rule"),
            pg_sys::Oid::from(subject.key_type_oid),
        ),
        RuleForm::ManyKeys => (
            format!(
                "SELECT forget_batch.forget_key FROM (SELECT t AS forget_key, CAST(t AS {}) AS k \
                 FROM pg_catalog.unnest($1::pg_catalog.text[]) AS t) AS forget_batch \
                 WHERE EXISTS ({})",
                subject.key_type,
                replace_param(query, "(forget_batch.k)")
            ),
            pg_sys::TEXTARRAYOID,
        ),
    }
}

/// Every rule's verdict for one key.
pub fn evaluate(entry: &Entry, key: &str) -> Vec<Verdict> {
    let subject = &entry.prepared.subject;
    entry
        .rule_plans(RuleForm::OneKey)
        .iter()
        .map(|(rule, plan)| {
            let blocking = as_rule(subject, &rule.search_path, || {
                Spi::connect(|client| {
                    spi(client.select(plan, Some(1), &[key_datum(subject, key)]))
                        .first()
                        .get_one::<i64>()
                        .ok()
                        .flatten()
                })
            })
            .unwrap_or(0);
            Verdict {
                rule: rule.name.clone(),
                blocking,
                message: rule.message.clone(),
            }
        })
        .collect()
}

/// Each blocked key with the names of the rules that block it (in rule
/// order): one statement per rule for all of the keys.
pub fn blocked_by(
    entry: &Entry,
    keys: &[String],
) -> std::collections::HashMap<String, Vec<String>> {
    let mut blocked: std::collections::HashMap<String, Vec<String>> = Default::default();
    if keys.is_empty() {
        return blocked;
    }
    for (rule, plan) in entry.rule_plans(RuleForm::ManyKeys).iter() {
        as_rule(&entry.prepared.subject, &rule.search_path, || {
            Spi::connect(|client| {
                for row in spi(client.select(plan, None, &[keys.to_vec().into()])) {
                    if let Some(key) = spi(row.get::<String>(1)) {
                        let rules = blocked.entry(key).or_default();
                        if !rules.contains(&rule.name) {
                            rules.push(rule.name.clone());
                        }
                    }
                }
            })
        });
    }
    blocked
}

/// `sql` with each parameter reference `$1` replaced by `replacement`.
/// String constants (also E'' and dollar-quoted), quoted identifiers and
/// comments are copied as they are, and so are `$12` and names like `a$1`.
pub fn replace_param(sql: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(sql.len() + replacement.len());
    let mut i = 0;
    while i < sql.len() {
        let rest = &sql[i..];
        let len = match rest.as_bytes()[0] {
            b'$' if is_param_1(rest) => {
                out.push_str(replacement);
                i += 2;
                continue;
            }
            b'$' => dollar_quoted_len(rest),
            b'\'' => quoted_len(rest, b'\'', false),
            b'"' => quoted_len(rest, b'"', false),
            b'-' if rest.starts_with("--") => rest.find('\n').unwrap_or(rest.len()),
            b'/' if rest.starts_with("/*") => block_comment_len(rest),
            b'E' | b'e' if rest[1..].starts_with('\'') => 1 + quoted_len(&rest[1..], b'\'', true),
            c if is_ident_start(c) => rest.bytes().take_while(|&c| is_ident_char(c)).count(),
            _ => 1,
        };
        out.push_str(&rest[..len]);
        i += len;
    }
    out
}

fn is_param_1(s: &str) -> bool {
    s.starts_with("$1") && !s[2..].starts_with(|c: char| c.is_ascii_digit())
}

/// Letters, `_` and every byte of a multibyte character, as PostgreSQL's
/// scanner has them (so a multibyte character is never split).
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Length of a quoted token starting at `s[0]`: a doubled quote stays
/// inside, and so does a backslash-escaped one in an E'' string.
fn quoted_len(s: &str, quote: u8, backslash_escapes: bool) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash_escapes => i += 2,
            c if c == quote && b.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Length of `$tag$ ... $tag$` starting at `s[0]`, or 1 when the `$` opens
/// no dollar quote (a `$` that is neither that nor `$1`).
fn dollar_quoted_len(s: &str) -> usize {
    let tag_len = s[1..]
        .bytes()
        .take_while(|&c| is_ident_char(c) && c != b'$')
        .count();
    let opens =
        s[1 + tag_len..].starts_with('$') && !s[1..].starts_with(|c: char| c.is_ascii_digit());
    if !opens {
        return 1;
    }
    let tag = &s[..tag_len + 2];
    match s[tag.len()..].find(tag) {
        Some(end) => tag.len() + end + tag.len(),
        None => s.len(),
    }
}

/// Length of a `/* ... */` comment starting at `s[0]`; they nest.
fn block_comment_len(s: &str) -> usize {
    let (mut depth, mut i) = (0, 0);
    while i < s.len() {
        if s[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if s[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::replace_param;

    fn k(sql: &str) -> String {
        replace_param(sql, "K")
    }

    #[test]
    fn the_parameter_is_replaced_wherever_it_is_a_parameter() {
        assert_eq!(
            k("SELECT 1 FROM t WHERE a = $1"),
            "SELECT 1 FROM t WHERE a = K"
        );
        assert_eq!(
            k("a=$1::bigint AND b IN ($1,2)"),
            "a=K::bigint AND b IN (K,2)"
        );
        assert_eq!(k("x = $1\n"), "x = K\n");
    }

    #[test]
    fn strings_identifiers_and_comments_keep_their_text() {
        assert_eq!(k("a = '$1' AND b = $1"), "a = '$1' AND b = K");
        assert_eq!(k("a = 'it''s $1' OR $1 > 0"), "a = 'it''s $1' OR K > 0");
        assert_eq!(k(r"a = E'\'$1' AND $1 = 2"), r"a = E'\'$1' AND K = 2");
        assert_eq!(
            k(r"a = '\' AND b = $1"),
            r"a = '\' AND b = K",
            "standard strings have no escapes"
        );
        assert_eq!(
            k(r#"SELECT "$1", "a""$1" FROM t WHERE c = $1"#),
            r#"SELECT "$1", "a""$1" FROM t WHERE c = K"#
        );
        assert_eq!(
            k("a = $1 -- not $1\nAND b = $1"),
            "a = K -- not $1\nAND b = K"
        );
        assert_eq!(
            k("/* $1 /* nested $1 */ $1 */ $1"),
            "/* $1 /* nested $1 */ $1 */ K"
        );
        assert_eq!(
            k("a = $$ $1 $$ AND $x$ $1 $$ $x$ = $1"),
            "a = $$ $1 $$ AND $x$ $1 $$ $x$ = K"
        );
    }

    #[test]
    fn other_parameters_and_names_with_dollars_stay() {
        assert_eq!(k("a = $12 AND b = $1"), "a = $12 AND b = K");
        assert_eq!(
            k("SELECT a$1, é$1 FROM t$1 WHERE x = $1"),
            "SELECT a$1, é$1 FROM t$1 WHERE x = K"
        );
        assert_eq!(k("SELECT 'é' || $1"), "SELECT 'é' || K");
    }
}

/// Rules declared for `deactivate` (service accounts, say): each of `keys`
/// that some rule blocks, with the rules' names and messages in rule order.
/// deactivate() refuses such a subject (55000); deactivate_inactive skips
/// it. One statement per rule for all of the keys, prepared once per
/// configuration version; what the rules mean is checked against their
/// binding first (55000 when it moved).
pub fn deactivation_blocked(
    subject: &Subject,
    keys: &[String],
) -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let mut blocked: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    let rules = crate::catalog::rules(&subject.name, "deactivate");
    if rules.is_empty() || keys.is_empty() {
        return blocked;
    }
    crate::binding::verify_subject(
        subject,
        &[subject.table],
        "deactivate",
        crate::binding::RULES,
    );
    for rule in rules {
        let plan = crate::identity::with_search_path(&rule.search_path, || {
            crate::cache::statement(
                format!(
                    "deactivate rule {} {} {}",
                    subject.name, rule.name, rule.search_path
                ),
                &[pg_sys::TEXTARRAYOID],
                || statement(RuleForm::ManyKeys, &rule.query, subject).0,
            )
        });
        as_rule(subject, &rule.search_path, || {
            Spi::connect(|client| {
                for row in spi(client.select(plan.as_ref(), None, &[keys.to_vec().into()])) {
                    if let Some(key) = spi(row.get::<String>(1)) {
                        blocked
                            .entry(key)
                            .or_default()
                            .push((rule.name.clone(), rule.message.clone()));
                    }
                }
            })
        });
    }
    blocked
}
