//! What `/proc` says about a server and all its processes — PSS, sockets, threads, CPU
//! time including reaped children — and the descriptor limit; shared by `bench` and
//! `models`.

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_proto::sys::process::child_processes;

/// The server and all its processes at one moment.
pub struct Tree {
    /// Socket inodes open in any of them (a socket two processes share counts once).
    pub sockets: HashSet<u64>,
    /// Proportional set size, KiB: pages shared between the processes count once.
    pub pss_kib: u64,
    /// Processes in the tree.
    pub processes: usize,
    /// Threads in all of them.
    pub threads: u64,
    /// CPU time of all of them, clock ticks: their threads (`utime + stime`) and the
    /// children they reaped (`cutime + cstime`).
    pub cpu_ticks: u64,
}

impl Tree {
    /// Reads the tree rooted at `pid`.
    pub fn of(pid: u32) -> Result<Tree> {
        let mut tree = Tree {
            sockets: HashSet::new(),
            pss_kib: 0,
            processes: 0,
            threads: 0,
            cpu_ticks: 0,
        };
        let mut todo = vec![pid];
        let mut bound = 0;
        while let Some(p) = todo.pop() {
            bound += 1;
            if bound > 200_000 {
                bail!("the process tree of {pid} is too large");
            }
            // A child may end between the listing and the reading: skip it.
            let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
                continue;
            };
            tree.processes += 1;
            tree.pss_kib += field(&rollup, "Pss:").unwrap_or(0);
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) {
                tree.threads += field(&status, "Threads:").unwrap_or(0);
            }
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                tree.cpu_ticks += stat_cpu_ticks(&stat).unwrap_or(0);
            }
            if let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) {
                for fd in fds.flatten() {
                    let Ok(target) = std::fs::read_link(fd.path()) else {
                        continue;
                    };
                    let inode = target
                        .to_str()
                        .and_then(|t| t.strip_prefix("socket:["))
                        .and_then(|t| t.strip_suffix(']'))
                        .and_then(|t| t.parse().ok());
                    if let Some(inode) = inode {
                        tree.sockets.insert(inode);
                    }
                }
            }
            todo.extend(child_processes(p));
        }
        if tree.processes == 0 {
            bail!("process {pid} is gone");
        }
        Ok(tree)
    }

    /// Sockets, processes and threads, the counts [`settle`] watches.
    fn counts(&self) -> (usize, usize, u64) {
        (self.sockets.len(), self.processes, self.threads)
    }
}

/// Waits until the tree's counts of sockets, processes and threads have not changed for
/// `quiet` (a server that hands each client to a new thread or process has the socket
/// before the thread), or `limit` has passed; returns the last reading.
pub fn settle(pid: u32, quiet: Duration, limit: Duration) -> Result<Tree> {
    let t0 = Instant::now();
    let mut last = Tree::of(pid)?;
    let mut since = Instant::now();
    while since.elapsed() < quiet && t0.elapsed() < limit {
        thread::sleep(Duration::from_millis(100));
        let now = Tree::of(pid)?;
        if now.counts() != last.counts() {
            since = Instant::now();
        }
        last = now;
    }
    Ok(last)
}

/// The first number after `name` in a `/proc` status-like text.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `utime + stime + cutime + cstime` from the text of `/proc/PID/stat`, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r)?;
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    // Fields 14..=17 of proc_pid_stat(5); `rest` starts at field 3.
    f.get(11..15).map(|t| t.iter().sum())
}

/// CPU time of `pid` in clock ticks: its threads and its reaped children.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("read /proc/PID/stat")?;
    stat_cpu_ticks(&stat).context("short /proc/PID/stat")
}

/// Microseconds in a clock tick (`sysconf(_SC_CLK_TCK)`).
pub fn tick_us() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000.0 / if t > 0 { t as f64 } else { 100.0 }
}

/// `getrlimit(RLIMIT_NOFILE)` then `setrlimit()` with the soft limit raised to the hard
/// one; returns the new soft limit.
pub fn raise_nofile() -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_sums_the_four_time_fields_after_a_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime ...
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 11 13 17 20 0 1 0";
        assert_eq!(stat_cpu_ticks(stat), Some(7 + 11 + 13 + 17));
        assert_eq!(stat_cpu_ticks("42 (x) S 1 2"), None);
    }

    #[test]
    fn field_takes_the_first_number_after_the_name() {
        let status = "Name:\tx\nThreads:\t3\nPss:   1234 kB\n";
        assert_eq!(field(status, "Threads:"), Some(3));
        assert_eq!(field(status, "Pss:"), Some(1234));
        assert_eq!(field(status, "Rss:"), None);
    }

    #[test]
    fn our_own_tree_has_us_and_some_cpu_time() {
        let tree = Tree::of(std::process::id()).unwrap();
        assert!(tree.processes >= 1 && tree.threads >= 1 && tree.pss_kib > 0);
        assert!(cpu_ticks(std::process::id()).is_ok());
    }
}
