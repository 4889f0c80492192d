//! When a backend's cached verdicts (cache.rs: graphs, plans, trust in
//! owners, bound declarations) may no longer hold, told by PostgreSQL's own
//! cache invalidation, as its own caches are:
//!
//! * every configuration change and every DDL that may change a graph
//!   registers an invalidation of `forget.config_version`'s relation
//!   (`forget_internal._invalidate_caches`, called by `_bump_now`);
//! * a change of any role (`pg_authid`: superuser, rename, drop) or of any
//!   role membership (`pg_auth_members`) is one PostgreSQL sends by itself;
//! * so is a change of a relation or function whose owner a cached verdict
//!   trusted (`watch_objects`): `REASSIGN OWNED` changes owners without any
//!   event trigger.
//!
//! PostgreSQL delivers these to other backends only after the change has
//! committed and is visible (never before, as the version sequence can be),
//! and replays a transaction's or savepoint's own invalidations in its
//! backend when it rolls back, so a verdict made on a change that was rolled
//! back does not outlive it. The callbacks only move a counter (they may run
//! at any point where invalidations are read, inside other work); `epoch`
//! tells the cache whether to drop what it holds.

use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static EPOCH: AtomicU64 = AtomicU64::new(0);
/// The oid of `forget.config_version` in this database (0: not yet known,
/// and then nothing is cached either).
static MARKER: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// Relations whose owner a cached verdict trusted (oids).
    static RELATIONS: RefCell<HashSet<u32>> = RefCell::default();
    /// Functions whose owner a cached verdict trusted (their pg_proc
    /// syscache hash values, which is what an invalidation carries).
    static FUNCTIONS: RefCell<HashSet<u32>> = RefCell::default();
}

/// Takes in the invalidations other backends sent (as PostgreSQL does when
/// it locks a relation), then says where the count stands: call before
/// reading what the cache is built from.
pub fn epoch() -> u64 {
    unsafe { pg_sys::AcceptInvalidationMessages() };
    EPOCH.load(Ordering::SeqCst)
}

/// Relations and functions whose owners a verdict about to be cached
/// trusted: a change of any of them (an owner changed by `REASSIGN OWNED`,
/// say) empties the cache.
pub fn watch_objects(relations: &[pg_sys::Oid], functions: &[pg_sys::Oid]) {
    RELATIONS.with(|r| r.borrow_mut().extend(relations.iter().map(|o| o.to_u32())));
    let hashes: Vec<u32> = functions
        .iter()
        .map(|f| unsafe {
            pg_sys::GetSysCacheHashValue(
                pg_sys::SysCacheIdentifier::PROCOID as std::ffi::c_int,
                pg_sys::Datum::from(*f),
                pg_sys::Datum::from(0usize),
                pg_sys::Datum::from(0usize),
                pg_sys::Datum::from(0usize),
            )
        })
        .collect();
    FUNCTIONS.with(|f| f.borrow_mut().extend(hashes));
}

/// The cache was emptied: nothing is watched until verdicts are cached again.
pub fn forget_watched() {
    RELATIONS.with(|r| r.borrow_mut().clear());
    FUNCTIONS.with(|f| f.borrow_mut().clear());
}

fn watched(set: &'static std::thread::LocalKey<RefCell<HashSet<u32>>>, value: u32) -> bool {
    // Borrowed elsewhere at this moment: assume the worst.
    set.with(|s| s.try_borrow().map(|s| s.contains(&value)).unwrap_or(true))
}

/// Which relation's invalidation moves the epoch (`forget.config_version`).
pub fn watch(marker: pg_sys::Oid) {
    MARKER.store(marker.to_u32(), Ordering::SeqCst);
}

#[pg_guard]
unsafe extern "C-unwind" fn relation_invalidated(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // InvalidOid: every relation (the backend missed messages).
    let relid = relid.to_u32();
    if relid == 0 || relid == MARKER.load(Ordering::SeqCst) || watched(&RELATIONS, relid) {
        EPOCH.fetch_add(1, Ordering::SeqCst);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn function_invalidated(
    _arg: pg_sys::Datum,
    _cache: std::ffi::c_int,
    hash: u32,
) {
    // 0: every function.
    if hash == 0 || watched(&FUNCTIONS, hash) {
        EPOCH.fetch_add(1, Ordering::SeqCst);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn role_invalidated(
    _arg: pg_sys::Datum,
    _cache: std::ffi::c_int,
    _hash: u32,
) {
    EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// Registers the callbacks; once per backend, when the library loads.
pub fn register() {
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(relation_invalidated),
            pg_sys::Datum::from(0usize),
        );
        for cache in [
            pg_sys::SysCacheIdentifier::AUTHOID,
            pg_sys::SysCacheIdentifier::AUTHMEMMEMROLE,
            pg_sys::SysCacheIdentifier::AUTHMEMROLEMEM,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(
                cache as std::ffi::c_int,
                Some(role_invalidated),
                pg_sys::Datum::from(0usize),
            );
        }
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as std::ffi::c_int,
            Some(function_invalidated),
            pg_sys::Datum::from(0usize),
        );
    }
}

/// Registers an invalidation of `marker` (`forget.config_version`): every
/// backend drops its cache once this transaction commits, and this one
/// also when it (or the savepoint) rolls back.
#[pg_extern(schema = "forget_internal", name = "_invalidate_caches", volatile)]
fn invalidate_caches(marker: pg_sys::Oid) {
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(marker) };
}
