//! Process-wide settings the `seam` binary applies before it starts anything.

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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn huge_pages_are_off_after_the_call() {
        super::disable_transparent_huge_pages().unwrap();
        // SAFETY: PR_GET_THP_DISABLE takes no argument and returns the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
