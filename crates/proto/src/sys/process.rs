//! Process-wide settings made once at start-up: how many descriptors the server may
//! open, and how freed memory goes back to the system.

use std::io;

/// `getrlimit(RLIMIT_NOFILE)`, then `setrlimit()` raising the soft limit to the hard one,
/// as nginx (`worker_rlimit_nofile`) and Go's runtime do: the soft limit (often 1024) is a
/// default for programs that never check, and an event loop holds a descriptor per client.
/// Returns the soft limit now in force (the old one, if raising it failed).
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads one rlimit from the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// `mallopt(M_MMAP_THRESHOLD, 128 KiB)` (glibc): a buffer of that size or more gets a
/// mapping of its own, given back to the system the moment it is freed. glibc's default
/// threshold rises after each such buffer is freed, and the heaps of a thread-per-client
/// server's threads then keep every large request they ever held: setting it fixes it.
/// Nothing to do with another C library.
pub fn return_large_buffers_when_freed() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt(3) takes two integers and changes only the allocator's settings.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_descriptor_limit_ends_at_the_hard_one() {
        let soft = raise_nofile_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(soft, limit.rlim_cur);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
