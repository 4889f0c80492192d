//! Giving freed memory back to the operating system. Planning and first
//! running a statement over a wide graph (hundreds of tables) allocates
//! tens of MB that PostgreSQL frees when the statement ends (the planner's
//! scratch memory, the executor's state, the foreign-key checks PostgreSQL
//! plans for each referencing table); the C library keeps it mapped for
//! reuse, so the backend stays hundreds of MB large for the rest of the
//! session (bench row 10). After such a run it is handed back.

use std::cell::Cell;

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

/// `release_freed` the first time a kept statement has run (`ran` is the
/// statement's flag): its plan was built then, and its scratch is free now.
pub fn after_run(ran: &Cell<bool>) {
    if !ran.replace(true) {
        release_freed();
    }
}
