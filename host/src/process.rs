//! Process-wide settings the `seam` binary (and the benchmarks, to measure the same
//! process) applies before it starts anything.

/// Turns transparent huge pages off for this process (Linux `PR_SET_THP_DISABLE`).
///
/// Why: mimalloc asks for huge pages on its arenas (`madvise(MADV_HUGEPAGE)`), so a
/// few live allocations in a 2 MiB range keep the whole range resident. Under the inbound
/// benchmark's load this held ~110 MiB of huge pages, about a third of `seam serve`'s RSS
/// (docs/benchmarks.md, "Memory" section), for no measurable gain in throughput. Databases
/// such as Redis and MongoDB advise the same. The setting covers mappings made before the
/// call too, and is inherited by child processes.
///
/// Elsewhere than Linux this does nothing.
pub fn disable_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of
        // ours; the unused arguments must be zero.
        let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if result != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v3 `include/mimalloc.h`): the
/// crate does not name it, and Cargo.lock pins the version this index is read from (the
/// test below fails if the index names another option).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps memory freed in its pages before it returns it to the OS, in ms.
///
/// Why: mimalloc v3 waits 1,000 ms by default. While the pipeline works off a backlog it
/// frees pages faster than that, and ~20-40 MiB of freed pages stayed resident: `seam
/// serve`'s peak RSS went over 200 MB under the inbound benchmark. 10 ms (mimalloc v2's
/// default) took most of that back; 0 ms took a little more but cost the pipeline alone
/// ~20% more CPU per input, in page faults (docs/benchmarks.md, "The memory peak").
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets mimalloc's options that differ from its defaults, unless its environment
/// variables (`MIMALLOC_PURGE_DELAY`) set them. Call it first thing in `main`, before
/// other threads start: mimalloc's option setters are not thread safe. Harmless when the
/// process's global allocator is not mimalloc.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: an integer option write; callers run this before other threads exist.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_purge_delay_option_is_mimallocs_and_is_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading an integer option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // mimalloc v3's documented default for the purge delay: another value means the
        // index names another option (after an upgrade of mimalloc).
        assert_eq!(get(), 1000, "option {} is not mimalloc's purge delay", super::MI_OPTION_PURGE_DELAY);
        super::tune_allocator();
        assert_eq!(get(), super::PURGE_DELAY_MS);
    }

    #[test]
    fn huge_pages_are_off_after_the_call() {
        super::disable_transparent_huge_pages().unwrap();
        // SAFETY: PR_GET_THP_DISABLE takes no argument and returns the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
