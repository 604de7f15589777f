//! Three hello-server instances on 127.0.0.2–4 behind HAProxy (`docs/haproxy.cfg`), clients
//! looping through it, and a rolling restart: what `tests/tests/cluster.rs` checks and
//! `cargo xtask cluster` runs longer. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hello_harness::Program;
use hello_proto::startup::Line;

use crate::{Server, WAIT, wait_until, which, workspace_root};

/// How long an instance keeps serving after SIGTERM while its agent says `drain`.
pub const DRAIN_DELAY: &str = "400ms";

/// One hello-server behind HAProxy.
struct Instance {
    name: &'static str,
    ip: &'static str,
    model: String,
    extra: Vec<String>,
    server: Server,
    agent: SocketAddr,
}

impl Instance {
    fn start(
        name: &'static str,
        ip: &'static str,
        model: &str,
        extra: &[String],
        port: u16,
        agent_port: u16,
    ) -> Instance {
        let port = port.to_string();
        let agent_port = agent_port.to_string();
        let mut args = vec![
            "--model",
            model,
            "--proxy-protocol",
            // HAProxy connects from this machine: only its headers are believed.
            "--proxy-from",
            "127.0.0.1",
            "--agent-port",
            &agent_port,
            "--drain-delay",
            DRAIN_DELAY,
            "--bind",
            ip,
        ];
        args.extend(extra.iter().map(String::as_str));
        args.push(&port);
        let server = Server::start(&args);
        let agent = server.next_start_up_addr(Line::Agent);
        Instance {
            name,
            ip,
            model: model.to_string(),
            extra: extra.to_vec(),
            server,
            agent,
        }
    }

    /// SIGTERM, then the same instance again on the same addresses once it has exited.
    fn restart(&mut self) -> Result<(), String> {
        self.server.signal(libc::SIGTERM);
        let status = self
            .server
            .wait(WAIT)
            .ok_or_else(|| format!("{} did not stop", self.name))?;
        if !status.success() {
            return Err(format!("{} exited {status}: {}", self.name, self.server.stderr()));
        }
        *self = Instance::start(
            self.name,
            self.ip,
            &self.model,
            &self.extra,
            self.server.port(),
            self.agent.port(),
        );
        Ok(())
    }
}

/// HAProxy's view of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// `s1`, `s2`, `s3`.
    pub name: String,
    /// `UP`, `DRAIN`, `DOWN`, ...
    pub status: String,
    /// Sessions sent to it so far.
    pub sessions: u64,
}

/// HAProxy and its three instances.
pub struct Cluster {
    instances: Vec<Instance>,
    haproxy: Option<Program>,
    /// Where clients connect.
    pub frontend: SocketAddr,
    /// HAProxy's own Prometheus exporter (`GET /metrics`).
    pub metrics: SocketAddr,
    admin: PathBuf,
    dir: PathBuf,
}

impl Cluster {
    /// Starts the instances (with `model`) and HAProxy in front; `None`, after a loud SKIP
    /// line, where HAProxy is not installed.
    pub fn start(model: &str) -> Option<Cluster> {
        Cluster::start_with(model, &[])
    }

    /// [`Cluster::start`] with more arguments for every instance (`--trace`).
    pub fn start_with(model: &str, extra: &[&str]) -> Option<Cluster> {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let Some(haproxy) = which("haproxy") else {
            crate::skip("the cluster: haproxy is not installed (Debian package haproxy)");
            return None;
        };
        let instances: Vec<Instance> = [("s1", "127.0.0.2"), ("s2", "127.0.0.3"), ("s3", "127.0.0.4")]
            .into_iter()
            .map(|(name, ip)| Instance::start(name, ip, model, &extra, 0, 0))
            .collect();
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hello-cluster-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for HAProxy");
        let admin = dir.join("admin.sock");
        // HAProxy cannot say which port it got: take one the kernel picks, and free it.
        let frontend = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for HAProxy");
        let metrics = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for HAProxy's exporter");
        let template =
            std::fs::read_to_string(workspace_root().join("docs/haproxy.cfg")).expect("docs/haproxy.cfg");
        let mut config = template
            .replace("{ADMIN}", &admin.display().to_string())
            .replace("{FRONTEND}", &frontend.to_string())
            .replace("{METRICS}", &metrics.to_string());
        for (i, instance) in instances.iter().enumerate() {
            config = config
                .replace(&format!("{{S{}}}", i + 1), &instance.server.addr.to_string())
                .replace(&format!("{{A{}}}", i + 1), &instance.agent.port().to_string());
        }
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, config).expect("write haproxy.cfg");
        let mut cmd = Command::new(haproxy);
        cmd.args(["-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let haproxy = Program::spawn(cmd).expect("start haproxy");
        let cluster = Cluster {
            instances,
            haproxy: Some(haproxy),
            frontend,
            metrics,
            admin,
            dir,
        };
        assert!(
            wait_until(WAIT, || TcpStream::connect(frontend).is_ok()),
            "HAProxy does not listen on {frontend}"
        );
        for name in ["s1", "s2", "s3"] {
            assert!(
                cluster.wait_status(name, "UP", WAIT),
                "{name} never UP: {:?}",
                cluster.states()
            );
        }
        Some(cluster)
    }

    /// What the instances wrote to stderr so far, together.
    pub fn stderr(&self) -> String {
        self.instances.iter().map(|i| i.server.stderr()).collect()
    }

    /// HAProxy's view of the three servers (`show stat` on the admin socket).
    pub fn states(&self) -> Vec<ServerState> {
        let Ok(mut s) = UnixStream::connect(&self.admin) else {
            return Vec::new();
        };
        let _ = s.set_read_timeout(Some(WAIT));
        let mut csv = String::new();
        if s.write_all(b"show stat\n").is_err() || s.read_to_string(&mut csv).is_err() {
            return Vec::new();
        }
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(sv), Some(status), Some(stot)) = (col("svname"), col("status"), col("stot")) else {
            return Vec::new();
        };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > stot && f[sv].starts_with('s') && f[sv].len() == 2)
            .map(|f| ServerState {
                name: f[sv].to_string(),
                status: f[status].to_string(),
                sessions: f[stot].parse().unwrap_or(0),
            })
            .collect()
    }

    /// Waits until HAProxy shows `name` in `status` (bounded).
    pub fn wait_status(&self, name: &str, status: &str, within: Duration) -> bool {
        wait_until(within, || {
            self.states().iter().any(|s| s.name == name && s.status == status)
        })
    }

    /// Restarts each instance in turn, each back UP in HAProxy before the next: the
    /// seconds each took.
    pub fn rolling_restart(&mut self) -> Result<Vec<f64>, String> {
        let mut took = Vec::new();
        for i in 0..self.instances.len() {
            let t0 = Instant::now();
            self.instances[i].restart()?;
            let name = self.instances[i].name;
            if !self.wait_status(name, "UP", WAIT) {
                return Err(format!("{name} not UP again: {:?}", self.states()));
            }
            took.push(t0.elapsed().as_secs_f64());
        }
        Ok(took)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Killed and reaped before its folder is removed.
        drop(self.haproxy.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Clients looping hello exchanges through the frontend until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    first_failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

/// What a load did.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Exchanges that got the greeting whole.
    pub ok: u64,
    /// Exchanges that did not.
    pub failed: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
}

impl Load {
    /// Starts `clients` looping clients against `frontend`.
    pub fn start(frontend: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let first_failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failed, first) = (
                    Arc::clone(&stop),
                    Arc::clone(&ok),
                    Arc::clone(&failed),
                    Arc::clone(&first_failures),
                );
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match hello(frontend) {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(why) => {
                                let mut first = first.lock().unwrap_or_else(|p| p.into_inner());
                                if first.len() < 5 {
                                    first.push(why);
                                }
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            first_failures,
            threads,
        }
    }

    /// Exchanges so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the clients and counts.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let failures = self
            .first_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Tally {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            failures,
        }
    }
}

/// One hello exchange through HAProxy: the greeting whole, then end of stream.
fn hello(frontend: SocketAddr) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(&frontend, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).map_err(|e| format!("read: {e}"))?;
    if reply == b"Hello World!\0" {
        Ok(())
    } else {
        Err(format!("reply {:?}", String::from_utf8_lossy(&reply)))
    }
}
