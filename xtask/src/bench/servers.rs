//! The servers `cargo xtask bench` measures, one line each in [`SERVERS`], and how each
//! is built or found and what command line starts it. A new hello-server model, or a
//! `--workers N` variant of one, is one more line of [`SERVERS`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::target_dir;
use crate::{cargo, project_root};

/// What runs.
#[derive(Debug, Clone, Copy)]
pub enum Program {
    /// `bench/c/textbook_loop.c`: the textbook server's code in a loop, this backlog.
    Textbook {
        /// `listen()`'s backlog.
        backlog: u32,
    },
    /// `bench/c/least_work.c`: the least a hello server does per connection (accept4,
    /// send with MSG_MORE, close).
    LeastWork,
    /// `bench/c/udp_loop.c`: the textbook UDP loop (recvfrom, sendto); UDP only.
    UdpLoop {
        /// Processes, each its own `SO_REUSEPORT` socket on the port.
        workers: u32,
    },
    /// `bench/c/epoll_reuseport.c`: a thread per core's worth of SO_REUSEPORT listeners.
    EpollC {
        /// Threads, each with its own listener and epoll loop.
        threads: u32,
    },
    /// nginx's stream module answering every connection with `return`.
    Nginx {
        /// `worker_processes`.
        workers: u32,
    },
    /// `bench/tokio-hello`.
    Tokio,
    /// hello-server as shipped (`cargo xtask dist`), with these options.
    Hello(&'static [&'static str]),
    /// The same built with `--cfg hello_no_trace` (every trace hook compiled out).
    HelloBare(&'static [&'static str]),
}

/// One server of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Its name in the tables, charts, `ONLY` and the logs.
    pub name: &'static str,
    /// What runs.
    pub program: Program,
    /// Whether the idle-connection step holds silent clients on it (it must have an
    /// echo mode, which waits for the client's message).
    pub idle: bool,
    /// One line for the summary's list of servers.
    pub what: &'static str,
}

impl Spec {
    const fn new(name: &'static str, program: Program, what: &'static str) -> Spec {
        Spec {
            name,
            program,
            idle: false,
            what,
        }
    }

    /// Also measured in the idle-connection step.
    const fn idle(mut self) -> Spec {
        self.idle = true;
        self
    }
}

/// Every server, in the order of the tables (the load step rotates it between repeats).
pub const SERVERS: &[Spec] = &[
    Spec::new(
        "c_iterative",
        Program::Textbook { backlog: 128 },
        "the textbook's hello_server.c with accept() in a loop (bench/c/textbook_loop.c), backlog 128",
    ),
    Spec::new(
        "c_epoll_1",
        Program::EpollC { threads: 1 },
        "C epoll server, 1 thread (bench/c/epoll_reuseport.c)",
    )
    .idle(),
    Spec::new(
        "c_epoll_2",
        Program::EpollC { threads: 2 },
        "C epoll server, 2 threads, one SO_REUSEPORT listener each: the near-limit reference",
    ),
    Spec::new(
        "c_least",
        Program::LeastWork,
        "the least a hello server does per connection: accept4(), send(MSG_MORE), close() (bench/c/least_work.c)",
    ),
    Spec::new(
        "nginx_1",
        Program::Nginx { workers: 1 },
        "nginx stream module, `return \"Hello World!\\0\"`, 1 worker",
    ),
    Spec::new(
        "nginx_2",
        Program::Nginx { workers: 2 },
        "nginx stream module, `return \"Hello World!\\0\"`, 2 workers",
    ),
    Spec::new(
        "tokio",
        Program::Tokio,
        "minimal tokio server, a task per connection (bench/tokio-hello)",
    )
    .idle(),
    Spec::new(
        "iterative",
        Program::Hello(&["--model", "iterative"]),
        "hello-server --model iterative",
    ),
    Spec::new(
        "fork",
        Program::Hello(&["--model", "fork", "--max-conns", "4096"]),
        "hello-server --model fork --max-conns 4096",
    ),
    Spec::new(
        "select",
        Program::Hello(&["--model", "select"]),
        "hello-server --model select",
    ),
    Spec::new(
        "threads",
        Program::Hello(&["--model", "threads"]),
        "hello-server --model threads",
    )
    .idle(),
    Spec::new(
        "epoll",
        Program::Hello(&["--model", "epoll"]),
        "hello-server --model epoll (the default)",
    )
    .idle(),
    Spec::new(
        "uring",
        Program::Hello(&["--model", "uring"]),
        "hello-server --model uring: one io_uring ring, an accept per free slot, linked calls",
    )
    .idle(),
    Spec::new(
        "epoll_w2",
        Program::Hello(&["--model", "epoll", "--workers", "2"]),
        "hello-server --model epoll --workers 2: two event loops, a SO_REUSEPORT listener each",
    ),
    Spec::new(
        "epoll_w2s",
        Program::Hello(&["--model", "epoll", "--workers", "2", "--accept-queues", "shared"]),
        "hello-server --model epoll --workers 2 --accept-queues shared: two event loops on one listening socket (EPOLLEXCLUSIVE)",
    ),
    Spec::new(
        "epoll_notrace",
        Program::HelloBare(&["--model", "epoll"]),
        "hello-server --model epoll built with the trace hooks compiled out",
    ),
];

/// The references the load table divides by, within each repeat: `(server, column)`.
pub const REFERENCES: [(&str, &str); 4] = [
    ("c_iterative", "/iter"),
    ("c_epoll_2", "/ep2"),
    ("c_least", "/least"),
    ("nginx_1", "/ngx"),
];

/// The servers of the UDP step (the hello service over UDP, [`Mode::Udp`]), in the order
/// of its table.
pub const UDP_SERVERS: &[Spec] = &[
    Spec::new(
        "c_udp",
        Program::UdpLoop { workers: 1 },
        "the textbook UDP loop: recvfrom(), sendto() (bench/c/udp_loop.c)",
    ),
    Spec::new(
        "c_udp_2",
        Program::UdpLoop { workers: 2 },
        "the textbook UDP loop in 2 processes, a SO_REUSEPORT socket each (bench/c/udp_loop.c PORT 2)",
    ),
    Spec::new(
        "nginx_udp",
        Program::Nginx { workers: 1 },
        "nginx stream module, `listen ... udp`, `return \"Hello World!\\0\"`, 1 worker",
    ),
    Spec::new(
        "udp",
        Program::Hello(&[]),
        "hello-server --udp: recvmmsg() batches, sendmmsg() replies",
    ),
    Spec::new(
        "udp_w2",
        Program::Hello(&["--workers", "2"]),
        "hello-server --udp --workers 2: two batched loops, a SO_REUSEPORT socket each",
    ),
];

/// The references the UDP table divides by.
pub const UDP_REFERENCES: [(&str, &str); 2] = [("c_udp", "/loop"), ("nginx_udp", "/ngx")];

/// hello-server's options for holding silent clients: the echo service (which waits for
/// the client's message), and no timeout or cap that would let one go during a step.
pub const HOLD_ECHO: [&str; 8] = [
    "--service",
    "echo",
    "--idle-timeout",
    "2m",
    "--request-timeout",
    "2m",
    "--max-conns",
    "100000",
];

/// What a server is asked to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The greeting on every connection.
    Hello,
    /// The echo service, for the idle step: a silent client is held, not closed.
    Echo,
    /// The greeting in reply to every datagram (UDP).
    Udp,
}

/// Where the built and found programs are; `None` where a reference is skipped.
#[derive(Debug, Default)]
pub struct Tools {
    /// hello-server as shipped.
    pub server: PathBuf,
    /// hello-server with the trace hooks compiled out.
    pub bare: PathBuf,
    /// `bench/c/textbook_loop.c`, compiled.
    pub textbook: Option<PathBuf>,
    /// `bench/c/epoll_reuseport.c`, compiled.
    pub epoll: Option<PathBuf>,
    /// `bench/c/least_work.c`, compiled.
    pub least_work: Option<PathBuf>,
    /// `bench/c/udp_loop.c`, compiled.
    pub udp_loop: Option<PathBuf>,
    /// `bench/tokio-hello`, built.
    pub tokio: Option<PathBuf>,
    /// nginx and its stream module.
    pub nginx: Option<Nginx>,
    /// Why each missing one is missing.
    pub missing: Vec<(&'static str, String)>,
}

/// An nginx that can serve the stream module.
#[derive(Debug, Clone)]
pub struct Nginx {
    /// The binary.
    pub binary: PathBuf,
    /// `ngx_stream_module.so` when the module is dynamic, `None` when built in.
    pub module: Option<PathBuf>,
}

/// A command line ready to start, and whether the server prints its port.
pub struct Launch {
    /// Program and arguments.
    pub argv: Vec<OsString>,
    /// Prints `listening on ADDR` (so port 0 may be given); otherwise it needs a free
    /// port chosen for it.
    pub prints_port: bool,
}

impl Spec {
    /// Why this server cannot run here, if it cannot.
    pub fn unavailable(&self, tools: &Tools) -> Option<String> {
        let (have, what) = match self.program {
            Program::Textbook { .. } => (tools.textbook.is_some(), "c"),
            Program::EpollC { .. } => (tools.epoll.is_some(), "c"),
            Program::LeastWork => (tools.least_work.is_some(), "c"),
            Program::UdpLoop { .. } => (tools.udp_loop.is_some(), "c"),
            Program::Nginx { .. } => (tools.nginx.is_some(), "nginx"),
            Program::Tokio => (tools.tokio.is_some(), "tokio"),
            Program::Hello(_) | Program::HelloBare(_) => (true, ""),
        };
        if have {
            return None;
        }
        let why = tools
            .missing
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, r)| r.clone());
        Some(why.unwrap_or_else(|| format!("{what} is not available")))
    }

    /// Whether it prints its port (and so can be started on port 0).
    pub fn prints_port(&self) -> bool {
        !matches!(self.program, Program::Nginx { .. })
    }

    /// The command line that starts it on 127.0.0.1:`port` in `mode`. nginx's
    /// configuration is written into `scratch` first.
    pub fn command(&self, tools: &Tools, mode: Mode, port: u16, scratch: &Path) -> Result<Launch> {
        let p = port.to_string();
        let missing = || anyhow::anyhow!("{} is not available", self.name);
        let echo = if mode == Mode::Echo { "echo" } else { "hello" };
        let udp_only = matches!(self.program, Program::UdpLoop { .. });
        let has_udp = matches!(
            self.program,
            Program::UdpLoop { .. } | Program::Nginx { .. } | Program::Hello(_) | Program::HelloBare(_)
        );
        if (mode == Mode::Udp && !has_udp) || (mode != Mode::Udp && udp_only) {
            bail!("{} has no {mode:?} mode", self.name);
        }
        let argv: Vec<OsString> = match self.program {
            Program::LeastWork => {
                if mode == Mode::Echo {
                    bail!("{} has no echo mode", self.name);
                }
                vec![tools.least_work.as_ref().ok_or_else(missing)?.into(), p.into()]
            }
            Program::UdpLoop { workers } => {
                let bin = tools.udp_loop.as_ref().ok_or_else(missing)?;
                vec![bin.into(), p.into(), workers.to_string().into()]
            }
            Program::Textbook { backlog } => {
                if mode == Mode::Echo {
                    bail!("{} has no echo mode", self.name);
                }
                let bin = tools.textbook.as_ref().ok_or_else(missing)?;
                vec![bin.into(), p.into(), backlog.to_string().into()]
            }
            Program::EpollC { threads } => {
                let bin = tools.epoll.as_ref().ok_or_else(missing)?;
                vec![bin.into(), p.into(), threads.to_string().into(), echo.into()]
            }
            Program::Tokio => {
                let bin = tools.tokio.as_ref().ok_or_else(missing)?;
                vec![bin.into(), p.into(), echo.into()]
            }
            Program::Nginx { workers } => {
                if mode == Mode::Echo {
                    bail!("{} has no echo mode", self.name);
                }
                let nginx = tools.nginx.as_ref().ok_or_else(missing)?;
                let dir = scratch.join(format!("{}-{port}", self.name));
                std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
                let conf = dir.join("nginx.conf");
                let conf_text = nginx_conf(workers, port, mode == Mode::Udp, nginx.module.as_deref(), &dir);
                std::fs::write(&conf, conf_text).with_context(|| format!("write {}", conf.display()))?;
                nginx_argv(&nginx.binary, &dir)
            }
            Program::Hello(args) | Program::HelloBare(args) => {
                let bin = match self.program {
                    Program::HelloBare(_) => &tools.bare,
                    _ => &tools.server,
                };
                let mut v: Vec<OsString> = vec![bin.into()];
                v.extend(args.iter().map(OsString::from));
                match mode {
                    Mode::Echo => v.extend(HOLD_ECHO.map(OsString::from)),
                    Mode::Udp => v.push("--udp".into()),
                    Mode::Hello => {}
                }
                v.extend(["--bind", "127.0.0.1", &p].map(OsString::from));
                v
            }
        };
        Ok(Launch {
            argv,
            prints_port: self.prints_port(),
        })
    }
}

/// nginx in the foreground (`daemon off`), everything under `dir`.
fn nginx_argv(binary: &Path, dir: &Path) -> Vec<OsString> {
    vec![
        binary.into(),
        "-p".into(),
        dir.into(),
        "-c".into(),
        dir.join("nginx.conf").into(),
        "-e".into(),
        dir.join("error.log").into(),
    ]
}

/// nginx's configuration: the stream module on 127.0.0.1:`port` answering every
/// connection with the greeting and its NUL, then closing. The NUL is a raw byte in the
/// quoted string (nginx has no `\0` escape; its strings carry a length, so the byte
/// reaches the wire). Backlog 4096 like hello-server's, and room for every client. With
/// `udp`, the same over UDP: one reply datagram to each datagram, the receive buffer
/// hello-server --udp asks for.
pub fn nginx_conf(workers: u32, port: u16, udp: bool, module: Option<&Path>, dir: &Path) -> Vec<u8> {
    let listen = if udp { "udp rcvbuf=4m" } else { "backlog=4096" };
    let mut conf = String::new();
    if let Some(m) = module {
        conf.push_str(&format!("load_module {};\n", m.display()));
    }
    conf.push_str(&format!(
        "daemon off;\nmaster_process on;\nworker_processes {workers};\n\
         worker_rlimit_nofile 65536;\npid {pid};\nerror_log {err} warn;\n\
         events {{\n    worker_connections 4096;\n}}\n\
         stream {{\n    server {{\n        listen 127.0.0.1:{port} {listen};\n        return \"Hello World!",
        pid = dir.join("nginx.pid").display(),
        err = dir.join("error.log").display(),
    ));
    let mut bytes = conf.into_bytes();
    bytes.push(0);
    bytes.extend_from_slice(b"\";\n    }\n}\n");
    bytes
}

/// Compiles the C reference servers with the system C compiler (`$CC`, else `cc`) into
/// `target/bench-bin`; without a compiler they are skipped, loudly.
pub fn build_c(tools: &mut Tools) -> Result<()> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        tools.missing.push((
            "c",
            format!("no C compiler ({cc}): the C reference servers are not measured"),
        ));
        return Ok(());
    }
    let dir = target_dir().join("bench-bin");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let mut built = Vec::new();
    for name in ["textbook_loop", "epoll_reuseport", "least_work", "udp_loop"] {
        let src = project_root().join("bench").join("c").join(format!("{name}.c"));
        let bin = dir.join(name);
        let out = Command::new(&cc)
            .args(["-O2", "-Wall", "-o"])
            .arg(&bin)
            .arg(&src)
            .arg("-lpthread")
            .output()
            .with_context(|| format!("cannot run {cc}"))?;
        if !out.status.success() {
            bail!(
                "{cc} failed on {}:\n{}",
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        built.push(bin);
    }
    tools.udp_loop = built.pop();
    tools.least_work = built.pop();
    tools.epoll = built.pop();
    tools.textbook = built.pop();
    Ok(())
}

/// Builds `bench/tokio-hello` (its own Cargo project and lock file, outside the
/// workspace) into `target/bench-tokio`. A failed build (no registry, say) skips it,
/// loudly, with the log's path.
pub fn build_tokio(tools: &mut Tools, logs: &Path) -> Result<()> {
    let manifest = project_root()
        .join("bench")
        .join("tokio-hello")
        .join("Cargo.toml");
    let target = target_dir().join("bench-tokio");
    let log = logs.join("tokio-build.log");
    let out = Command::new(cargo())
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .context("cannot run cargo")?;
    std::fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat())
        .with_context(|| format!("write {}", log.display()))?;
    if out.status.success() {
        tools.tokio = Some(target.join("release").join("tokio-hello"));
    } else {
        tools.missing.push((
            "tokio",
            format!("the tokio server did not build (see {})", log.display()),
        ));
    }
    Ok(())
}

/// Finds nginx (`$NGINX`, the `PATH`, `/usr/sbin`) and its stream module: built in, or
/// `ngx_stream_module.so` in its modules folder. Missing either skips it, loudly.
pub fn find_nginx(tools: &mut Tools) {
    match locate_nginx() {
        Ok(n) => tools.nginx = Some(n),
        Err(why) => tools.missing.push(("nginx", why)),
    }
}

fn locate_nginx() -> Result<Nginx, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("NGINX") {
        candidates.push(p.into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nginx")));
    }
    candidates.extend(
        [
            "/usr/sbin/nginx",
            "/usr/local/sbin/nginx",
            "/usr/local/nginx/sbin/nginx",
        ]
        .map(PathBuf::from),
    );
    let binary = candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or("nginx is not installed (nor $NGINX set): the nginx references are not measured")?;
    let out = Command::new(&binary)
        .arg("-V")
        .output()
        .map_err(|e| format!("{} -V: {e}", binary.display()))?;
    // nginx prints its version and configure arguments on stderr.
    let v = String::from_utf8_lossy(&out.stderr).into_owned();
    let module = match stream_build(&v) {
        StreamBuild::Static => None,
        StreamBuild::Absent => {
            return Err(format!(
                "{} was built without the stream module",
                binary.display()
            ));
        }
        StreamBuild::Dynamic(dir) => {
            let dirs = dir
                .into_iter()
                .chain(["/usr/lib/nginx/modules", "/usr/lib64/nginx/modules"].map(PathBuf::from));
            let found = dirs.map(|d| d.join("ngx_stream_module.so")).find(|p| p.is_file());
            Some(found.ok_or("nginx's stream module (ngx_stream_module.so) is not installed")?)
        }
    };
    Ok(Nginx { binary, module })
}

/// How an nginx has the stream module, from `nginx -V`.
#[derive(Debug, PartialEq)]
enum StreamBuild {
    Static,
    /// A loadable module; the configured modules folder, if any.
    Dynamic(Option<PathBuf>),
    Absent,
}

fn stream_build(v: &str) -> StreamBuild {
    let args: Vec<&str> = v.split_whitespace().collect();
    if args.contains(&"--with-stream") {
        return StreamBuild::Static;
    }
    if args.contains(&"--with-stream=dynamic") {
        let dir = args
            .iter()
            .find_map(|a| a.strip_prefix("--modules-path="))
            .map(|d| PathBuf::from(d.trim_matches('\'')));
        return StreamBuild::Dynamic(dir);
    }
    StreamBuild::Absent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_references_are_servers() {
        let mut names: Vec<_> = SERVERS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERVERS.len());
        for (r, _) in REFERENCES {
            assert!(names.contains(&r), "{r}");
        }
        let udp: Vec<_> = UDP_SERVERS.iter().map(|s| s.name).collect();
        for (r, _) in UDP_REFERENCES {
            assert!(udp.contains(&r), "{r}");
        }
        // Every UDP server has a UDP mode, and no name is in both lists (ONLY picks).
        let tools = Tools {
            server: "/s".into(),
            udp_loop: Some("/u".into()),
            ..Tools::default()
        };
        for s in UDP_SERVERS {
            assert!(!names.contains(&s.name), "{}", s.name);
            if !matches!(s.program, Program::Nginx { .. }) {
                assert!(
                    s.command(&tools, Mode::Udp, 0, Path::new("/t")).is_ok(),
                    "{}",
                    s.name
                );
            }
        }
        let udp_hello = UDP_SERVERS.iter().find(|s| s.name == "udp").unwrap();
        let argv = udp_hello
            .command(&tools, Mode::Udp, 0, Path::new("/t"))
            .unwrap()
            .argv;
        assert!(argv.iter().any(|a| a == "--udp"));
        // Every idle server has an echo mode.
        for s in SERVERS.iter().filter(|s| s.idle) {
            assert!(!matches!(
                s.program,
                Program::Textbook { .. } | Program::Nginx { .. }
            ));
        }
    }

    #[test]
    fn nginx_answers_the_greeting_and_its_nul_byte_for_byte() {
        let conf = nginx_conf(
            2,
            4242,
            false,
            Some(Path::new("/m/ngx_stream_module.so")),
            Path::new("/t"),
        );
        let text = String::from_utf8_lossy(&conf);
        assert!(text.starts_with("load_module /m/ngx_stream_module.so;\n"));
        assert!(text.contains("worker_processes 2;"));
        assert!(text.contains("listen 127.0.0.1:4242 backlog=4096;"));
        assert!(text.contains("daemon off;"));
        let needle = b"return \"Hello World!\0\";";
        assert!(conf.windows(needle.len()).any(|w| w == needle));
        assert!(
            !String::from_utf8_lossy(&nginx_conf(1, 1, false, None, Path::new("/t"))).contains("load_module")
        );
        let udp = String::from_utf8_lossy(&nginx_conf(1, 4242, true, None, Path::new("/t"))).into_owned();
        assert!(udp.contains("listen 127.0.0.1:4242 udp rcvbuf=4m;"), "{udp}");
    }

    #[test]
    fn the_stream_module_is_found_from_nginx_v() {
        let debian = "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx \
                      --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-threads";
        assert_eq!(
            stream_build(debian),
            StreamBuild::Dynamic(Some(PathBuf::from("/usr/lib/nginx/modules")))
        );
        assert_eq!(
            stream_build("configure arguments: --with-stream --with-x"),
            StreamBuild::Static
        );
        assert_eq!(
            stream_build("configure arguments: --with-http_ssl_module"),
            StreamBuild::Absent
        );
    }

    #[test]
    fn hello_server_command_lines() {
        let tools = Tools {
            server: "/s".into(),
            bare: "/b".into(),
            ..Tools::default()
        };
        let epoll = SERVERS.iter().find(|s| s.name == "epoll").unwrap();
        let l = epoll.command(&tools, Mode::Hello, 0, Path::new("/t")).unwrap();
        assert!(l.prints_port);
        assert_eq!(l.argv, ["/s", "--model", "epoll", "--bind", "127.0.0.1", "0"]);
        let l = epoll.command(&tools, Mode::Echo, 7, Path::new("/t")).unwrap();
        let argv: Vec<_> = l.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(argv.windows(2).any(|w| w == ["--service", "echo"]));
        assert_eq!(argv.last().unwrap(), "7");
        let bare = SERVERS.iter().find(|s| s.name == "epoll_notrace").unwrap();
        assert_eq!(
            bare.command(&tools, Mode::Hello, 0, Path::new("/t"))
                .unwrap()
                .argv[0],
            "/b"
        );
        // References that were not built say why.
        let c = SERVERS.iter().find(|s| s.name == "c_epoll_2").unwrap();
        assert!(c.unavailable(&tools).is_some());
        assert!(c.command(&tools, Mode::Hello, 0, Path::new("/t")).is_err());
        assert!(
            !SERVERS
                .iter()
                .find(|s| s.name == "nginx_1")
                .unwrap()
                .prints_port()
        );
    }
}
