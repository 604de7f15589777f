//! A private network namespace without root: `unshare(CLONE_NEWUSER | CLONE_NEWNET)` makes
//! the calling process the owner of a new user namespace (where it is uid 0 with every
//! capability, `CAP_NET_RAW` included) and of a new network namespace with a loopback
//! interface of its own, which it then brings up. Programs it starts afterwards inherit
//! both: the lesson can capture their packets on that `lo` without sudo, and their ports
//! never clash with the host's. Where the kernel forbids unprivileged user namespaces
//! (a sysctl, or an AppArmor policy as on Ubuntu 24.04) it says why, in one line
//! ([`Refused`]).

use std::fs;
use std::io;
use std::mem::zeroed;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::capture::{Refused, Watch};

/// The refusal of the namespace by `call`, once its error is known.
fn refused(call: &'static str) -> impl FnOnce(io::Error) -> Refused {
    Refused::by(Watch::Namespace, call)
}

/// Enters a private user and network namespace with `lo` up: `getuid(2)`, `getgid(2)`,
/// `unshare(CLONE_NEWUSER | CLONE_NEWNET)`, `write(2)`s of `/proc/self/setgroups`
/// (`deny`, which an unprivileged gid map requires), `uid_map` and `gid_map` (uid and gid
/// 0 inside are the caller's outside), then `ioctl(SIOCGIFFLAGS)` and
/// `ioctl(SIOCSIFFLAGS)` with `IFF_UP` on `lo`.
///
/// The kernel refuses `CLONE_NEWUSER` to a process with more than one thread (EINVAL):
/// call it before starting any.
pub fn enter_private() -> Result<(), Refused> {
    // SAFETY: getuid(2) and getgid(2) take nothing and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: unshare(2) takes flags only.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
        return Err(refused("unshare(CLONE_NEWUSER | CLONE_NEWNET)")(
            io::Error::last_os_error(),
        ));
    }
    let write = |path: &'static str, what: String| fs::write(path, what).map_err(refused(path));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    loopback_up()
}

/// `socket(AF_INET, SOCK_DGRAM)` for the ioctls, then `SIOCGIFFLAGS` and `SIOCSIFFLAGS`
/// on `lo` with `IFF_UP` added.
fn loopback_up() -> Result<(), Refused> {
    // SAFETY: socket(2) takes no pointer; a returned descriptor is ours alone.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(refused("socket(AF_INET)")(io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a descriptor socket(2) just returned, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: `req` is a live ifreq naming `lo`; SIOCGIFFLAGS writes its flags field.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(refused("ioctl(SIOCGIFFLAGS, lo)")(io::Error::last_os_error()));
    }
    // SAFETY: the flags member is the one SIOCGIFFLAGS filled in.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `req` is a live ifreq naming `lo` with its flags set.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(refused("ioctl(SIOCSIFFLAGS, lo up)")(io::Error::last_os_error()));
    }
    Ok(())
}
