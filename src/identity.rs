//! The one place that switches the context user code runs in: the
//! search_path (and the settings) of DBA-written SQL, hooks and the triggers
//! they fire, and of the extension's own statements in between.
//!
//! User code sees the search_path declared with it (a subject's, a rule's),
//! with `pg_temp` moved to its end: a temporary object of the caller's can
//! then never stand in for a declared one (PostgreSQL searches `pg_temp`
//! first for tables and types unless it is named, and SECURITY DEFINER
//! functions should name it last). The extension's own statements run with
//! `pg_catalog, pg_temp` only.

use crate::catalog::Subject;
use pgrx::prelude::*;

/// The search_path of the extension's own statements.
pub const PINNED_PATH: &str = "pg_catalog, pg_temp";

/// A declared search_path with `pg_temp` last (and only there).
pub fn user_path(path: &str) -> String {
    let mut parts: Vec<&str> = path
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let bare = p.trim_matches('"');
            bare != "pg_temp" && !bare.starts_with("pg_temp_")
        })
        .collect();
    parts.push("pg_temp");
    parts.join(", ")
}

/// Runs `f` with `path` as search_path, `pg_temp` last (DBA-written SQL,
/// hooks and triggers resolve names as they did when declared), then pins
/// the extension's path again.
pub fn with_search_path<T>(path: &str, f: impl FnOnce() -> T) -> T {
    set_setting("search_path", &user_path(path));
    let out = f();
    set_setting("search_path", PINNED_PATH);
    out
}

/// No JIT compilation for the extension's statements. A plan for a batch of
/// keys can be estimated above jit_above_cost, and then every execution
/// compiles its expressions anew (JIT code is not kept with a cached plan):
/// measured at a third of a 500-key minimize, for statements that touch a
/// few rows per key.
pub const NO_JIT: &[(&str, &str)] = &[("jit", "off")];

/// Runs `f` with planner settings changed, then puts back what was there.
pub fn with_settings<T>(settings: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    let before: Vec<(&str, String)> = settings
        .iter()
        .map(|(name, value)| {
            let old = current_setting(name).unwrap_or_default();
            set_setting(name, value);
            (*name, old)
        })
        .collect();
    let out = f();
    for (name, old) in before {
        set_setting(name, &old);
    }
    out
}

/// A setting's value as SHOW prints it; None when no such setting exists
/// (a custom `forget.*` setting nobody has set).
pub fn current_setting(name: &str) -> Option<String> {
    let name = std::ffi::CString::new(name).expect("setting name");
    let value = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    (!value.is_null()).then(|| {
        unsafe { std::ffi::CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned()
    })
}

/// SET LOCAL, without a query: the function-level SET clause of the calling
/// wrapper restores it on exit whatever happens.
pub fn set_setting(name: &str, value: &str) {
    let name = std::ffi::CString::new(name).expect("setting name");
    let value = std::ffi::CString::new(value)
        .unwrap_or_else(|_| crate::errors::invalid("setting contains a NUL byte"));
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::user_path;

    #[test]
    fn pg_temp_goes_last_and_only_there() {
        assert_eq!(user_path("app, public"), "app, public, pg_temp");
        assert_eq!(user_path("pg_temp, app"), "app, pg_temp");
        assert_eq!(
            user_path("\"$user\", pg_temp_3, public"),
            "\"$user\", public, pg_temp"
        );
        assert_eq!(user_path(""), "pg_temp");
        assert_eq!(
            user_path("pg_catalog,\"pg_temp\" ,x"),
            "pg_catalog, x, pg_temp"
        );
    }
}

/// What the extension is acting on in this backend, while user code of one
/// of its actions runs: the subject's name and, for an action with a grace
/// period or a restore, its recovery record. The views forget.undo_current,
/// forget.deactivations_current and forget.minimized_current show the run-as
/// role that much of the extension's records, and nothing else.
#[derive(Clone)]
struct Acting {
    subject: String,
    recovery: Option<i64>,
}

thread_local! {
    static ACTING: std::cell::RefCell<Option<Acting>> = const { std::cell::RefCell::new(None) };
}

/// The subject whose action's user code is running in this backend, else
/// NULL (forget.*_current views).
#[pg_extern(
    schema = "forget_internal",
    name = "_acting_subject",
    stable,
    parallel_restricted
)]
fn acting_subject() -> Option<String> {
    ACTING.with(|a| a.borrow().as_ref().map(|a| a.subject.clone()))
}

/// The recovery record of the action whose user code is running in this
/// backend, else NULL (forget.undo_current).
#[pg_extern(
    schema = "forget_internal",
    name = "_acting_recovery",
    stable,
    parallel_restricted
)]
fn acting_recovery() -> Option<i64> {
    ACTING.with(|a| a.borrow().as_ref().and_then(|a| a.recovery))
}

/// Puts back the identity, the security context, what is being acted on
/// and the error context when user code is done (or fails: an error unwinds
/// through it).
struct Restore {
    user: pg_sys::Oid,
    context: i32,
    acting: Option<Acting>,
    /// The error context entry pushed for user code, if any.
    errcontext: Option<Box<ErrorContext>>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
        if let Some(e) = self.errcontext.take() {
            unsafe { pg_sys::error_context_stack = e.entry.previous };
        }
        let previous = self.acting.take();
        ACTING.with(|a| *a.borrow_mut() = previous);
    }
}

/// A line in the CONTEXT of every error raised while user code runs, so
/// that a failing trigger or hook says that pg_forget ran it, for which
/// subject and as which role.
struct ErrorContext {
    entry: pg_sys::ErrorContextCallback,
    text: std::ffi::CString,
}

extern "C-unwind" {
    fn errcontext_msg(fmt: *const std::ffi::c_char, ...) -> std::ffi::c_int;
}

thread_local! {
    /// The context of the last error raised in user code (innermost first),
    /// read while PostgreSQL builds the error: pgrx passes an error on to
    /// the caller without it, so as_run_as puts it in the DETAIL.
    static CAPTURED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

unsafe extern "C-unwind" fn error_context(arg: *mut std::ffi::c_void) {
    let e = unsafe { &*(arg as *const ErrorContext) };
    unsafe {
        pg_sys::set_errcontext_domain(std::ptr::null());
        errcontext_msg(c"%s".as_ptr(), e.text.as_ptr());
    }
    // The whole stack once, from the outermost user-code entry: reading it
    // runs every callback again, this one included.
    if !CAPTURING.with(|c| c.replace(true)) {
        let stack = unsafe { pg_sys::GetErrorContextStack() };
        if !stack.is_null() {
            let text = unsafe { std::ffi::CStr::from_ptr(stack) }
                .to_string_lossy()
                .into_owned();
            unsafe { pg_sys::pfree(stack.cast()) };
            CAPTURED.with(|c| *c.borrow_mut() = Some(text));
        }
        CAPTURING.with(|c| c.set(false));
    }
}

/// Raises again an error from user code, its context (which pgrx drops)
/// added to its DETAIL.
fn with_context(e: pg_sys::panic::CaughtError, ran_as: &str) -> ! {
    // Where it was raised (the innermost context: the trigger or hook
    // function and line), and that pg_forget ran it, for whom, as whom.
    let context = CAPTURED
        .with(|c| c.borrow_mut().take())
        .and_then(|c| c.lines().next().map(str::to_string))
        .filter(|first| !first.starts_with("user code run by pg_forget"))
        .map(|first| format!("{first}; {ran_as}"));
    match e {
        pg_sys::panic::CaughtError::PostgresError(r) => {
            let detail = match (r.detail(), context) {
                (Some(d), Some(c)) => Some(format!("{d}\nRaised in {c}")),
                (None, Some(c)) => Some(format!("Raised in {c}")),
                (d, None) => d.map(str::to_string),
            };
            let mut report = pg_sys::panic::ErrorReport::new(
                r.sql_error_code(),
                r.message().to_string(),
                "pg_forget",
            );
            if let Some(d) = detail {
                report = report.set_detail(d);
            }
            if let Some(h) = r.hint() {
                report = report.set_hint(h.to_string());
            }
            report.report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        }
        other => other.rethrow(),
    }
}

fn push_error_context(text: String) -> Box<ErrorContext> {
    let mut e = Box::new(ErrorContext {
        entry: pg_sys::ErrorContextCallback {
            previous: unsafe { pg_sys::error_context_stack },
            callback: Some(error_context),
            arg: std::ptr::null_mut(),
        },
        text: std::ffi::CString::new(text.replace('\0', "")).expect("no NUL"),
    });
    e.entry.arg = &*e as *const ErrorContext as *mut std::ffi::c_void;
    unsafe { pg_sys::error_context_stack = &mut e.entry };
    e
}

/// Runs user code of an action on `subject`: as its run-as role, in a
/// security-restricted operation (as PostgreSQL runs index expressions
/// during VACUUM: no SET ROLE, no temporary objects, no cursors left open),
/// with `path` as search_path (`pg_temp` last). What it reads and writes,
/// and the triggers it fires, get the run-as role's privileges only.
/// `recovery` is the recovery record the action keeps undo data in (or a
/// restore reads it from).
pub fn as_run_as<T>(
    run_as: u32,
    subject: &str,
    recovery: Option<i64>,
    path: &str,
    f: impl FnOnce() -> T,
) -> T {
    let (mut user, mut context) = (pg_sys::InvalidOid, 0i32);
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let previous = ACTING.with(|a| {
        a.borrow_mut().replace(Acting {
            subject: subject.to_string(),
            recovery,
        })
    });
    let role = unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::Oid::from(run_as), true);
        if name.is_null() {
            run_as.to_string()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    };
    let ran_as = format!("user code run by pg_forget for subject \"{subject}\" as role {role}");
    let _restore = Restore {
        user,
        context,
        acting: previous,
        errcontext: Some(push_error_context(ran_as.clone())),
    };
    let restricted = context
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    unsafe { pg_sys::SetUserIdAndSecContext(pg_sys::Oid::from(run_as), restricted) };
    CAPTURED.with(|c| *c.borrow_mut() = None);
    PgTryBuilder::new(std::panic::AssertUnwindSafe(move || {
        with_search_path(path, f)
    }))
    .catch_others(|e| with_context(e, &ran_as))
    .execute()
}

/// User code of an action on a subject (the data statement, masks, link
/// and cleanup conditions, hooks, the triggers they fire): as its run-as
/// role, with its declared search_path.
pub fn as_subject<T>(subject: &Subject, recovery: Option<i64>, f: impl FnOnce() -> T) -> T {
    as_run_as(
        subject.run_as,
        &subject.name,
        recovery,
        &subject.search_path,
        f,
    )
}

/// Runs `f` as the caller of the extension's function (the role of the
/// session, or the one it SET ROLE to), in a security-restricted operation
/// with the extension's pinned search_path: for what only the caller's own
/// privileges may decide, such as the row level security of a subject table.
pub fn as_caller<T>(f: impl FnOnce() -> T) -> T {
    let (mut user, mut context) = (pg_sys::InvalidOid, 0i32);
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let previous = ACTING.with(|a| a.borrow().clone());
    let _restore = Restore {
        user,
        context,
        acting: previous,
        errcontext: None,
    };
    let restricted = context
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    unsafe { pg_sys::SetUserIdAndSecContext(pg_sys::GetOuterUserId(), restricted) };
    f()
}
