//! The lesson's side of stepping through a traced program (`cargo xtask demo --step`):
//! a Unix stream socket the programs started with [`STEP_VAR`]
//! connect to, each stop they announce before a call ([`Stop`]), and the byte that lets
//! the call be made ([`Stop::go`]). Calls: `socket`/`bind`/`listen`/`accept4` of the Unix
//! socket (std's `UnixListener`), `read` and `write` on each connection, `unlink` of the
//! socket's file when done. Not traced: they are the lesson's, not the programs'.

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

pub use super::tracer::STEP_VAR;

/// A program stopped before a call, waiting for [`Stop::go`].
#[derive(Debug)]
pub struct Stop {
    /// Who: `server` or `client`.
    pub who: String,
    /// The call about to be made: `accept`.
    pub call: String,
    /// The C line that makes it: `clnt_sock = accept(…);`.
    pub src: String,
    go: UnixStream,
}

impl Stop {
    /// Lets the call be made.
    pub fn go(mut self) -> io::Result<()> {
        self.go.write_all(b"g")
    }
}

/// One announced stop, `step\tWHO\tCALL\tC-LINE`, taken apart.
pub fn parse(line: &str) -> Option<(String, String, String)> {
    let mut f = line.trim_end_matches('\n').splitn(4, '\t');
    if f.next()? != "step" {
        return None;
    }
    Some((
        f.next()?.to_string(),
        f.next()?.to_string(),
        f.next()?.to_string(),
    ))
}

/// The control socket: listening at a path, its stops arriving as the programs make them.
pub struct Stops {
    path: PathBuf,
    arrived: Receiver<Stop>,
    done: Arc<AtomicBool>,
}

/// How often the acceptor looks for a program connecting, or for the end.
const TICK: Duration = Duration::from_millis(5);

impl Stops {
    /// Listens at `path` (a file that must not exist yet; removed when dropped).
    pub fn listen(path: &Path) -> io::Result<Stops> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let (tx, arrived) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let quit = Arc::clone(&done);
        thread::spawn(move || {
            while !quit.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => relay(conn, tx.clone()),
                    // None yet (or a failed accept: tried again).
                    Err(_) => thread::sleep(TICK),
                }
            }
        });
        Ok(Stops {
            path: path.to_path_buf(),
            arrived,
            done,
        })
    }

    /// The path to give the programs in [`STEP_VAR`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next stop a program announced, waiting at most `within`.
    pub fn next(&self, within: Duration) -> Option<Stop> {
        self.arrived.recv_timeout(within).ok()
    }
}

/// Reads one program's stops on their own thread until it closes the connection.
fn relay(conn: UnixStream, to: Sender<Stop>) {
    let Ok(go) = conn.try_clone() else {
        return;
    };
    // Accepted from a non-blocking listener: make the connection blocking (a read waits).
    if conn.set_nonblocking(false).is_err() {
        return;
    }
    thread::spawn(move || {
        let mut lines = BufReader::new(conn);
        let mut line = String::new();
        while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
            if let Some((who, call, src)) = parse(&line) {
                let Ok(go) = go.try_clone() else {
                    return;
                };
                if to.send(Stop { who, call, src, go }).is_err() {
                    return;
                }
            }
            line.clear();
        }
    });
}

impl Drop for Stops {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_line_is_taken_apart() {
        assert_eq!(
            parse(
                "step\tserver\taccept\tclnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_addr, &addr_size);\n"
            ),
            Some((
                "server".into(),
                "accept".into(),
                "clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_addr, &addr_size);".into()
            ))
        );
        assert_eq!(parse("trace\tserver\taccept\tx"), None);
        assert_eq!(parse("step\tserver"), None);
    }
}
