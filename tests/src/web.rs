//! A real web server that is not a hello server, for the tests of hello-client and
//! hello-load as probes and load generators for any TCP service: nginx when it is
//! installed, else Python's `http.server`. Each waits for a request, never greets.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hello_harness::{Pipe, Program};

use crate::{WAIT, skip, which};

/// The request both answer with `200 OK` (HTTP/1.0: they close after the reply).
pub const GET: &str = "GET / HTTP/1.0\r\n\r\n";

/// A running web server, stopped when dropped.
#[derive(Debug)]
pub struct Web {
    /// `nginx` or `python3 -m http.server`.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    program: Option<Program>,
    /// nginx's prefix directory (configuration, logs), removed when dropped.
    dir: Option<PathBuf>,
}

impl Web {
    /// nginx if installed (and it starts), else Python's http.server; `None` (and a SKIP
    /// line naming `test`) if neither is there.
    pub fn start(test: &str) -> Option<Web> {
        let nginx = which("nginx").or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/nginx");
            sbin.is_file().then_some(sbin)
        });
        let mut why = String::from("neither nginx nor python3 is installed");
        if let Some(nginx) = nginx {
            match Web::nginx(&nginx, test) {
                Ok(web) => return Some(web),
                // Said on stderr, so that a run on python3 instead is seen as such.
                Err(e) => {
                    eprintln!("{test}: nginx would not start ({e}); trying python3");
                    why = format!("nginx would not start ({e}) and python3 is not installed");
                }
            }
        }
        if let Some(python) = which("python3") {
            return Some(Web::python(&python));
        }
        skip(&format!("{test}: {why}"));
        None
    }

    /// nginx on 127.0.0.1 and a free port. nginx cannot listen on port 0: a port is
    /// picked by binding port 0 and closing, and another is tried if something took it
    /// meanwhile (nginx then exits at once), a few times at most.
    fn nginx(nginx: &PathBuf, test: &str) -> Result<Web, String> {
        let dir = std::env::temp_dir().join(format!("hello-tests-nginx-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("nginx prefix directory");
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let d = dir.display();
            // One process, in the foreground, as the user running the tests; every path
            // it writes in the test's own directory.
            let conf = format!(
                "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
                 server {{\n    listen 127.0.0.1:{port} backlog=1024;\n    \
                 location / {{ return 200 \"hello from nginx\\n\"; }}\n  }}\n}}\n"
            );
            std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
            let mut cmd = Command::new(nginx);
            cmd.arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut program = Program::spawn(cmd).expect("spawn nginx");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let t0 = Instant::now();
            // Bounded by WAIT: ready when the port takes a connection, or failed when
            // nginx exited: another try if the port was taken meanwhile, else no nginx.
            loop {
                if program.exited() {
                    let mut err = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                    for line in program.lines_to_end(Pipe::Stderr, WAIT).into_iter().flatten() {
                        err.push('\n');
                        err.push_str(&line);
                    }
                    last = err.trim().lines().last().unwrap_or("exited").to_string();
                    if !err.contains("Address already in use") {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(last);
                    }
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Ok(Web {
                        name: "nginx",
                        addr,
                        program: Some(program),
                        dir: Some(dir),
                    });
                }
                if t0.elapsed() > WAIT {
                    drop(program);
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(format!("it did not listen within {WAIT:?}"));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(format!("its port was taken 5 times: {last}"))
    }

    /// `python3 -u -m http.server --bind 127.0.0.1 0`: its first line names its port.
    fn python(python: &PathBuf) -> Web {
        let mut cmd = Command::new(python);
        cmd.args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let program = Program::spawn(cmd).expect("spawn python3");
        // `Serving HTTP on 127.0.0.1 port 43845 (http://127.0.0.1:43845/) ...`
        let line = program.next_line(Pipe::Stdout, WAIT).unwrap_or_default();
        let port: u16 = line
            .split("port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in python's start-up line {line:?}"));
        Web {
            name: "python3 -m http.server",
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            program: Some(program),
            dir: None,
        }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        // Killed and reaped before its folder is removed.
        drop(self.program.take());
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
