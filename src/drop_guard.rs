//! `DROP EXTENSION pg_forget` (or `DROP SCHEMA forget CASCADE`, or a
//! cascading drop of something it depends on, such as plpgsql) would destroy
//! the audit trail and the undo data of retained soft deletes with it. An event trigger at `ddl_command_start` refuses such a drop (2BP01,
//! naming what would be lost) unless `forget.allow_drop` is on, and removes
//! the extension's pg_cron jobs of this database when the drop goes ahead.
//! Event triggers do not fire with `session_replication_role = replica`
//! (which only a superuser can set): the guard keeps mistakes out, not a
//! superuser. pgrx has no event trigger support: the function is a plain V1 C function
//! that reads the DropStmt PostgreSQL hands it.

use crate::errors::spi;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// The V1 call convention record PostgreSQL looks up for a C function.
#[no_mangle]
pub extern "C" fn pg_finfo_forget_drop_guard() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The event trigger function (declared by `drop_guard_declaration`).
///
/// # Safety
/// Called by PostgreSQL's function manager with a valid `fcinfo`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn forget_drop_guard(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let context = unsafe { (*fcinfo).context };
    if context.is_null() || unsafe { (*context).type_ } != pg_sys::NodeTag::T_EventTriggerData {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "forget_internal._drop_guard() runs only as an event trigger"
        );
    }
    let data = context as *mut pg_sys::EventTriggerData;
    if unsafe { drops_pg_forget((*data).parsetree) } {
        guard();
    }
    pg_sys::Datum::from(0)
}

/// Whether a statement drops the extension: names it or its schema, or
/// drops with CASCADE an extension or schema that something of pg_forget
/// depends on (`DROP EXTENSION plpgsql CASCADE` takes pg_forget with it).
unsafe fn drops_pg_forget(node: *mut pg_sys::Node) -> bool {
    if node.is_null() || unsafe { (*node).type_ } != pg_sys::NodeTag::T_DropStmt {
        return false;
    }
    let stmt = node as *mut pg_sys::DropStmt;
    let (kind, ours) = match unsafe { (*stmt).removeType } {
        pg_sys::ObjectType::OBJECT_EXTENSION => ("pg_extension", "pg_forget"),
        pg_sys::ObjectType::OBJECT_SCHEMA => ("pg_namespace", "forget"),
        _ => return false,
    };
    let objects = unsafe { pgrx::PgList::<pg_sys::Node>::from_pg((*stmt).objects) };
    let names: Vec<String> = objects
        .iter_ptr()
        .filter(|o| !o.is_null() && unsafe { (**o).type_ } == pg_sys::NodeTag::T_String)
        .filter_map(|o| unsafe {
            std::ffi::CStr::from_ptr((*(o as *mut pg_sys::String)).sval)
                .to_str()
                .ok()
                .map(str::to_string)
        })
        .collect();
    if names.iter().any(|n| n == ours) {
        return true;
    }
    let cascade = unsafe { (*stmt).behavior } == pg_sys::DropBehavior::DROP_CASCADE;
    cascade && cascade_reaches_pg_forget(kind, &names)
}

/// Whether dropping the named extensions or schemas with CASCADE would drop
/// an object of pg_forget (and so pg_forget): a walk of pg_depend from them.
fn cascade_reaches_pg_forget(kind: &str, names: &[String]) -> bool {
    let roots = match kind {
        "pg_extension" => "SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid FROM pg_catalog.pg_extension e WHERE e.extname = ANY ($1)",
        _ => "SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY ($1)",
    };
    let sql = format!(
        "WITH RECURSIVE reached(classid, objid) AS ({roots}
             UNION
             SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
             JOIN reached r ON d.refclassid = r.classid AND d.refobjid = r.objid
             WHERE d.deptype IN ('n', 'a', 'e', 'x'))
         SELECT EXISTS (SELECT 1 FROM reached r JOIN pg_catalog.pg_depend m
                        ON m.classid = r.classid AND m.objid = r.objid AND m.deptype = 'e'
                        AND m.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                        AND m.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_forget'))"
    );
    spi(Spi::get_one_with_args::<bool>(
        &sql,
        &[names.to_vec().into()],
    ))
    .unwrap_or(false)
}

/// Refuses the drop while it would destroy records (unless allowed), else
/// unschedules the extension's pg_cron jobs of this database.
fn guard() {
    let allowed = crate::identity::current_setting("forget.allow_drop")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1"));
    if !allowed {
        let (audit, retained) = spi(Spi::get_two::<i64, i64>(
            "SELECT (SELECT pg_catalog.count(*) FROM forget.audit),
                    (SELECT pg_catalog.count(*) FROM forget.deleted_clients WHERE state = 'retained')",
        ));
        let (audit, retained) = (audit.unwrap_or(0), retained.unwrap_or(0));
        if audit > 0 || retained > 0 {
            pgrx::pg_sys::panic::ErrorReport::new(
                PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                format!(
                    "dropping pg_forget would destroy {audit} audit rows and {retained} retained recovery records \
                     (their undo data)"
                ),
                "forget_drop_guard",
            )
            .set_hint("Keep a copy first (pg_dump -n forget), then SET forget.allow_drop = on to drop it anyway.")
            .report(PgLogLevel::ERROR);
        }
    }
    spi(Spi::run(
        "DO $unschedule$ BEGIN
             IF pg_catalog.to_regclass('cron.job') IS NOT NULL THEN
                 PERFORM cron.unschedule(j.jobid) FROM cron.job j
                 WHERE j.jobname LIKE 'pg\\_forget\\_%' AND j.database = pg_catalog.current_database();
             END IF;
         END $unschedule$",
    ));
}

/// Declares the event trigger function; the trigger itself is created in
/// sql/api.sql.
#[pg_extern(
    requires = [forget_internal],
    sql = "CREATE OR REPLACE FUNCTION forget_internal._drop_guard() RETURNS event_trigger LANGUAGE c AS '@MODULE_PATHNAME@', 'forget_drop_guard';"
)]
fn drop_guard_declaration() {}
