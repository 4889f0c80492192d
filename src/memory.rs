//! Giving freed memory back to the operating system. Planning and first
//! running a statement over a wide graph (hundreds of tables) allocates
//! tens of MB that PostgreSQL frees when the statement ends (the planner's
//! scratch memory, the executor's state, the foreign-key checks PostgreSQL
//! plans for each referencing table); the C library keeps it mapped for
//! reuse, so the backend stays hundreds of MB large for the rest of the
//! session (bench row 10). After such a run it is handed back, and the
//! plans kept are bounded by forget.plan_cache_size (src/cache.rs).

use pgrx::pg_sys;

/// Hands back the memory the C library holds free (glibc's
/// `malloc_trim(0)`: the free top of the heap and whole free pages inside
/// it). Costs a walk over the free memory: call it after rare, large
/// work only.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What kept plans of the statement `sql` hold, in bytes: the memory
/// contexts PostgreSQL's plan cache names after the statement's text (its
/// source with the analyzed query, and its generic plan), found among the
/// children of CacheMemoryContext where kept plans live.
pub fn kept_plan_bytes(sql: &str) -> usize {
    let mut total = 0;
    // SAFETY: walks the backend's own memory context tree, read only, on
    // the backend's thread; idents are NUL-terminated C strings or NULL.
    unsafe {
        let mut child = (*pg_sys::CacheMemoryContext).firstchild;
        while !child.is_null() {
            let ident = (*child).ident;
            if !ident.is_null() && std::ffi::CStr::from_ptr(ident).to_bytes() == sql.as_bytes() {
                total += pg_sys::MemoryContextMemAllocated(child, true);
            }
            child = (*child).nextchild;
        }
    }
    total
}

/// forget.plan_cache_size in bytes; 40MB when unset or not a size.
pub fn plan_cache_size() -> usize {
    crate::identity::current_setting("forget.plan_cache_size")
        .and_then(|v| size_in_bytes(&v))
        .unwrap_or(40 << 20)
}

/// A size as PostgreSQL writes them (`'32MB'`, `'512kB'`, `'1GB'`, `'100B'`;
/// a plain number is kB), in bytes; None for anything else.
fn size_in_bytes(value: &str) -> Option<usize> {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let unit: usize = match unit.trim() {
        "" | "kB" => 1 << 10,
        "B" => 1,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return None,
    };
    number.parse::<usize>().ok().map(|n| n.saturating_mul(unit))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_postgresql_writes_them() {
        use super::size_in_bytes as size;
        assert_eq!(size("32MB"), Some(32 << 20));
        assert_eq!(size(" 512kB "), Some(512 << 10));
        assert_eq!(size("64"), Some(64 << 10));
        assert_eq!(size("1 GB"), Some(1 << 30));
        assert_eq!(size("100B"), Some(100));
        for bad in ["", "MB", "12 parsecs", "-1MB", "1.5MB"] {
            assert_eq!(size(bad), None, "{bad}");
        }
    }
}
