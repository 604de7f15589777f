//! A benchmark server while it runs: started (by `hello-harness`) on a free port with its
//! output in the run's logs, checked until it answers correctly, and stopped on every way out — by
//! [`Live`]'s `Drop` on an error or a panic, and by the kernel if xtask itself dies
//! (`sys::process::end_with_parent`: Ctrl-C, `kill`), so no server outlives a run.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_harness::{Pipe, Program};
use hello_proto::sys::process::end_with_parent;

use super::servers::{Launch, Mode, Spec, Tools};
use crate::process::WAIT;

/// The greeting every hello server must send, byte for byte.
pub const GREETING: &[u8] = b"Hello World!\0";
/// Starts tried before giving up on a server (a port chosen for nginx may be taken
/// between the choice and nginx's `bind()`).
const STARTS: usize = 5;
/// How long a stopped server has to exit before SIGKILL (hello-server's grace is 2 s).
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A port nothing listens on now: bound on 127.0.0.1 and released (nginx needs a port
/// in its configuration; the other servers print the one the kernel gave them).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0)).context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One hello exchange: the reply must be the greeting and its NUL, then end of stream.
pub fn hello(addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let mut reply = Vec::with_capacity(16);
    s.read_to_end(&mut reply)?;
    if reply != GREETING {
        return Err(std::io::Error::other(format!("reply {reply:?}")));
    }
    Ok(())
}

/// A UDP port nothing is bound to now (nginx's UDP reference needs one in its
/// configuration).
pub fn free_udp_port() -> Result<u16> {
    let s = UdpSocket::bind(("127.0.0.1", 0)).context("bind 127.0.0.1:0 (UDP)")?;
    Ok(s.local_addr()?.port())
}

/// One hello exchange over UDP: any datagram in, the greeting and its NUL back.
pub fn hello_udp(addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let s = UdpSocket::bind(("127.0.0.1", 0))?;
    s.connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.send(b"")?;
    let mut reply = [0u8; 64];
    let n = s.recv(&mut reply)?;
    if &reply[..n] != GREETING {
        return Err(std::io::Error::other(format!("reply {:?}", &reply[..n])));
    }
    Ok(())
}

/// One echo exchange as every echo mode here understands it: `ping` and a NUL, a
/// half-close, then `4 : ping` and a NUL back.
pub fn echo(addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    echo_on(&mut s, timeout)
}

/// The echo exchange on a connection already made.
pub fn echo_on(s: &mut TcpStream, timeout: Duration) -> std::io::Result<()> {
    s.set_read_timeout(Some(timeout))?;
    s.write_all(b"ping\0")?;
    s.shutdown(Shutdown::Write)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    if reply != b"4 : ping\0" {
        return Err(std::io::Error::other(format!("reply {reply:?}")));
    }
    Ok(())
}

/// A running server (a `hello-harness` program); stopped when dropped.
pub struct Live {
    program: Option<Program>,
    /// The server's name.
    pub name: &'static str,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its process id (nginx: the master's).
    pub pid: u32,
}

impl Live {
    /// Where to reach it.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Takes charge of a server already spawned on `port`.
    pub fn adopt(program: Program, name: &'static str, port: u16) -> Live {
        Live {
            pid: program.pid(),
            program: Some(program),
            name,
            port,
        }
    }

    /// Whether it has exited already.
    pub fn exited(&mut self) -> bool {
        self.program.as_mut().is_none_or(Program::exited)
    }

    /// SIGTERM, a bounded wait, then SIGKILL.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(Err(e)) = self.program.take().map(|p| p.stop(STOP_WAIT)) {
            eprintln!("xtask bench: {}: {e:#}", self.name);
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Spawns `launch` with stdin closed, stderr (and stdout unless `pipe_stdout`) appended
/// to `log`, ended with xtask (`sys::process::end_with_parent`).
pub fn spawn(launch: &Launch, log: &Path, pipe_stdout: bool) -> Result<Program> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let out: Stdio = if pipe_stdout {
        Stdio::piped()
    } else {
        file.try_clone()?.into()
    };
    let (program, args) = launch.argv.split_first().context("empty command line")?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(file);
    end_with_parent(&mut cmd);
    Program::spawn(cmd)
}

/// Starts `spec` in `mode` and waits (bounded) until it answers correctly: on port 0
/// when it prints its port, else on a free port chosen for it (tried again on another
/// if the server exits at once, as nginx does when the port was taken meanwhile).
pub fn start(spec: &Spec, tools: &Tools, mode: Mode, logs: &Path) -> Result<Live> {
    let log = logs.join(format!("{}.log", spec.name));
    let mut last = String::new();
    for _ in 0..STARTS {
        let port = match (spec.prints_port(), mode) {
            (true, _) => 0,
            (false, Mode::Udp) => free_udp_port()?,
            (false, _) => free_port()?,
        };
        let launch = spec.command(tools, mode, port, logs)?;
        let program = spawn(&launch, &log, launch.prints_port)?;
        let port = if launch.prints_port {
            match program.listening(Pipe::Stdout, WAIT) {
                Ok(l) => l.addr.port(),
                Err(e) => bail!("{}: {e:#} (see {})", spec.name, log.display()),
            }
        } else {
            port
        };
        match ready(Live::adopt(program, spec.name, port), mode) {
            Ok(live) => return Ok(live),
            Err(e) => last = format!("{e:#}"),
        }
    }
    bail!(
        "{} did not answer correctly in {STARTS} starts: {last} (see {})",
        spec.name,
        log.display()
    )
}

/// Waits (bounded) until the server answers one exchange of `mode` correctly.
fn ready(mut live: Live, mode: Mode) -> Result<Live> {
    let until = Instant::now() + WAIT;
    let addr = live.addr();
    loop {
        let r = match mode {
            Mode::Hello => hello(addr, Duration::from_secs(2)),
            Mode::Echo => echo(addr, Duration::from_secs(2)),
            Mode::Udp => hello_udp(addr, Duration::from_secs(2)),
        };
        let err = match r {
            Ok(()) => return Ok(live),
            Err(e) => e,
        };
        if live.exited() {
            bail!("{} exited before answering", live.name);
        }
        // Not listening yet is worth waiting for; a wrong reply is not.
        if err.kind() != ErrorKind::ConnectionRefused || Instant::now() >= until {
            bail!("{} on port {}: {err}", live.name, live.port);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_bindable_again() {
        let p = free_port().unwrap();
        assert!(p > 0);
        drop(TcpListener::bind(("127.0.0.1", p)).unwrap());
    }
}
