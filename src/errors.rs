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
        format!("{subject} {key} not found")
    );
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
