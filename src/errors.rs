//! The errors of SPEC.md, each with its SQLSTATE.

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// 22023: invalid configuration or argument; the message names the object.
pub fn invalid(message: impl Into<String>) -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message.into()
    );
}

/// P0002: the key names no (live) subject.
pub fn not_found(subject: &str, key: &str) -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
        format!("{subject} {} not found", shown(key))
    );
}

/// A caller's value (a key) as messages show it: control characters
/// escaped (`\n`, `\u{1b}`), so a message, and the server log line it
/// becomes, cannot be split into lines a reader would take for others.
pub fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(char::is_control) {
        value
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        value.into()
    }
}

/// 22004: a NULL key.
pub fn null_key() -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        "key must not be NULL"
    );
}

/// 55000: blocked by rules, or a recovery window that has expired.
pub fn not_allowed(message: impl Into<String>) -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        message.into()
    );
}

/// An SPI failure that PostgreSQL did not already raise as an error.
pub fn spi<T>(result: Result<T, pgrx::spi::SpiError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => internal(format!("pg_forget: {e}")),
    }
}

fn internal(message: String) -> ! {
    ereport!(ERROR, PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message);
}

/// A refusal applications can map without parsing the message (SQLSTATE
/// 55000): `constraint` goes to the error's CONSTRAINT field (the first
/// failing rule's name, or `pending_deletion`, `recovery_window`), `detail`
/// to DETAIL (one failing rule per line), `hint` to HINT.
///
/// pgrx raises errors with a message, DETAIL and HINT only, so a refusal is
/// carried out of the Rust function (`refusable`) and raised by PL/pgSQL,
/// which sets every field: the SQL-facing function calls
/// `forget_internal._refused()` after the Rust one returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub constraint: String,
}

thread_local! {
    static PENDING: std::cell::RefCell<Option<Refusal>> = const { std::cell::RefCell::new(None) };
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Refuses the action. Inside `refusable` the refusal unwinds to it (every
/// value on the way is dropped); elsewhere it is raised at once, with every
/// field but CONSTRAINT.
pub fn refuse(refusal: Refusal) -> ! {
    if CATCHING.with(|c| c.get()) > 0 {
        std::panic::panic_any(refusal);
    }
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        refusal.message,
        "pg_forget",
    );
    if let Some(detail) = refusal.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = refusal.hint {
        report = report.set_hint(hint);
    }
    report.report(pgrx::PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Runs `f`; a refusal inside it is kept for `forget_internal._refused()`
/// and gives None.
pub fn refusable<T>(f: impl FnOnce() -> T) -> Option<T> {
    PENDING.with(|p| p.borrow_mut().take());
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    match result {
        Ok(value) => Some(value),
        Err(payload) => match payload.downcast::<Refusal>() {
            Ok(refusal) => {
                PENDING.with(|p| *p.borrow_mut() = Some(*refusal));
                None
            }
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// The refusal `refusable` kept, taken (at most one row): what
/// `forget_internal._refused()` raises.
#[pg_extern(schema = "forget_internal", name = "_take_refusal", volatile)]
fn take_refusal() -> TableIterator<
    'static,
    (
        name!(message, String),
        name!(detail, Option<String>),
        name!(hint, Option<String>),
        name!(constraint_name, String),
    ),
> {
    let pending = PENDING.with(|p| p.borrow_mut().take());
    TableIterator::new(
        pending
            .into_iter()
            .map(|r| (r.message, r.detail, r.hint, r.constraint)),
    )
}
