//! What a DBA's SQL text is, as PostgreSQL's own parser reads it: a mask, a
//! cleanup condition or a link condition must be exactly one expression, a
//! rule exactly one query that changes nothing. The text is later placed in
//! parentheses inside the extension's statements; a text that could end them
//! early (`1); ALTER ROLE … SUPERUSER; SELECT (1`, with the parenthesis
//! hidden in an `E''` string or a comment for a hand-written scanner) is
//! refused here, since PostgreSQL's lexer reads strings and comments the
//! way it will when the text runs.

use crate::errors::invalid;
use pgrx::prelude::*;
use pgrx::PgList;

/// The statements PostgreSQL parses `sql` into; a syntax error is 22023
/// naming what was declared and the text.
fn statements(what: &str, text: &str, sql: &str) -> Vec<*mut pg_sys::Node> {
    let sql =
        std::ffi::CString::new(sql).unwrap_or_else(|_| invalid("SQL text contains a NUL byte"));
    PgTryBuilder::new(|| unsafe {
        let raw = pg_sys::raw_parser(sql.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        PgList::<pg_sys::RawStmt>::from_pg(raw)
            .iter_ptr()
            .map(|r| (*r).stmt)
            .collect()
    })
    .catch_others(|e| {
        let reason = match &e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r) => r.message().to_string(),
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
        };
        invalid(format!("{what} is not valid SQL ({reason}): {text}"))
    })
    .execute()
}

fn is(node: *mut pg_sys::Node, tag: pg_sys::NodeTag) -> bool {
    !node.is_null() && unsafe { (*node).type_ } == tag
}

fn len<T>(list: *mut pg_sys::List) -> usize {
    unsafe { PgList::<T>::from_pg(list).len() }
}

/// The text as it is stored and placed in the extension's statements: a
/// line comment in it is ended by a newline, so that it cannot swallow what
/// follows it there.
fn normalized(text: &str) -> String {
    if text.contains("--") && !text.ends_with('\n') {
        format!("{text}\n")
    } else {
        text.to_string()
    }
}

/// `text` as it is to be stored; 22023 unless it is exactly one SQL
/// expression.
pub fn one_expression(what: &str, text: &str) -> String {
    // The text on its own must be the one target of a SELECT (so
    // `true) OR (true` is no expression, though it would be one inside the
    // parentheses the extension puts around it); the newline ends a trailing
    // `--` comment.
    let stmts = statements(what, text, &format!("SELECT {text}\n"));
    let only = match stmts.as_slice() {
        [s] if is(*s, pg_sys::NodeTag::T_SelectStmt) => *s as *mut pg_sys::SelectStmt,
        _ => invalid(format!("{what} must be a single expression: {text}")),
    };
    let s = unsafe { &*only };
    let unnamed_target = len::<pg_sys::Node>(s.targetList) == 1
        && unsafe {
            let target = PgList::<pg_sys::ResTarget>::from_pg(s.targetList)
                .get_ptr(0)
                .expect("one target");
            (*target).name.is_null()
        };
    let bare = s.op == pg_sys::SetOperation::SETOP_NONE
        && unnamed_target
        && s.fromClause.is_null()
        && s.whereClause.is_null()
        && s.groupClause.is_null()
        && s.havingClause.is_null()
        && s.windowClause.is_null()
        && s.valuesLists.is_null()
        && s.sortClause.is_null()
        && s.limitOffset.is_null()
        && s.limitCount.is_null()
        && s.lockingClause.is_null()
        && s.withClause.is_null()
        && s.distinctClause.is_null()
        && s.intoClause.is_null();
    if !bare {
        invalid(format!("{what} must be a single expression: {text}"));
    }
    normalized(text)
}

/// `text` as it is to be stored; 22023 unless it is exactly one query that
/// changes nothing: a SELECT (or VALUES, or a set operation) without INTO
/// and without data-modifying WITH parts.
pub fn one_query(what: &str, text: &str) -> String {
    let stmts = statements(what, text, &format!("{text}\n"));
    let only = match stmts.as_slice() {
        [s] if is(*s, pg_sys::NodeTag::T_SelectStmt) => *s as *mut pg_sys::SelectStmt,
        _ => invalid(format!("{what} must be a single query (SELECT): {text}")),
    };
    let s = unsafe { &*only };
    let reads_only = s.intoClause.is_null()
        && (s.withClause.is_null()
            || unsafe {
                PgList::<pg_sys::CommonTableExpr>::from_pg((*s.withClause).ctes)
                    .iter_ptr()
                    .all(|cte| is((*cte).ctequery, pg_sys::NodeTag::T_SelectStmt))
            });
    if !reads_only {
        invalid(format!(
            "{what} must be a query that changes nothing: {text}"
        ));
    }
    normalized(text)
}
