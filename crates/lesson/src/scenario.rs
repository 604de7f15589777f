//! The scenarios of `cargo xtask demo`: small experiments that run the real
//! `hello-server` and `hello-client` with `--trace`, gather both sides' calls into a
//! causal [`Timeline`], and check that what each one shows really happened (a scenario
//! whose point did not happen is an error, not a page).
//!
//! | scenario | what it shows |
//! |---|---|
//! | `hello` | the textbook's four exchanges: hello and echo, over TCP and UDP |
//! | `backlog` | a server that is not accepting: clients fill the accept queue (backlog + 1), the next one's SYN is dropped and its `connect()` waits for the retransmit |
//! | `iterative` | the iterative server serves one client at a time: the second waits |
//! | `models` | the same two clients against each of the five server models |
//! | `boundaries` | TCP keeps no message boundaries: one write read in pieces, two writes read at once |
//! | `udp` | connected and unconnected UDP clients, and a datagram to a closed port |
//!
//! The programs trace as JSON (`--trace-format json`), and the lesson reads the records'
//! fields (`line`). Some clients are the demo's own sockets, made through
//! `hello_proto::sys` with a tracer that collects the same records, so that they show in
//! the same words: a client that waits before it sends, or that writes in two pieces.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hello_proto::kernel::Transport;
use hello_proto::sys::{self, Stream, Tracer};
use hello_proto::trace::{Format, Lang, Role};

use hello_server::Model;

use crate::line::parse_all;
use crate::observe::{Capturing, Watching};
use crate::run::{Done, Pipe, Proc, WAIT};
use crate::timeline::{self, Dir, Kernel, Lane, Sem, Side, Timeline};
use crate::wire_view::{Note, Observed};

/// A scenario. [`clap::ValueEnum::value_variants`] lists them in the order `all` runs them;
/// each one's name (`hello`) is its variant's, and its line of `cargo xtask demo --help`
/// is the variant's doc comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// The textbook's four exchanges: hello and echo, over TCP and UDP.
    Hello,
    /// A server that is not accepting: clients fill the accept queue, the next SYN is dropped.
    Backlog,
    /// The iterative server serves one client at a time: the second waits.
    Iterative,
    /// The same two clients against each of the textbook's five server models.
    Models,
    /// TCP keeps no message boundaries: one write read in pieces, two writes read at once.
    Boundaries,
    /// Connected and unconnected UDP clients, and a datagram to a closed port.
    Udp,
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub fn all() -> &'static [Scenario] {
        <Scenario as clap::ValueEnum>::value_variants()
    }

    /// The scenarios `name` picks: one by its name, or every one for `all`.
    pub fn pick(name: &str) -> Result<Vec<Scenario>> {
        if name == "all" {
            return Ok(Scenario::all().to_vec());
        }
        match <Scenario as clap::ValueEnum>::from_str(name, false) {
            Ok(one) => Ok(vec![one]),
            Err(_) => {
                let names: Vec<String> = Scenario::all().iter().map(Scenario::to_string).collect();
                bail!("no scenario '{name}' (scenarios: {}, all)", names.join(", "))
            }
        }
    }
}

/// The scenario's name (`hello`), as `cargo xtask demo` takes it.
impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// The models the `models` scenario sets side by side: the server's models in the
/// textbook's order ([`Model::in_textbook_order`]) but io_uring, which the textbook does
/// not teach and a kernel may refuse (the demo runs everywhere).
pub fn models() -> Vec<Model> {
    Model::in_textbook_order()
        .into_iter()
        .filter(|m| *m != Model::Uring)
        .collect()
}

/// How long the demo's silent client holds the server before it sends.
const HOLD: Duration = Duration::from_millis(600);

/// The `--timeout` of clients that wait behind the silent one: far more than the hold,
/// so that a loaded machine (a test suite running beside) does not end them early.
const CLIENT_TIMEOUT: &str = "60s";

/// The `--idle-timeout` and `--request-timeout` of a server the silent client holds
/// (it sends its request only when the scenario lets it): far more than any wait of the
/// scenario, so that a loaded machine does not make the server give the client up (the
/// default request timeout, 30 s, did, with load averages above 40).
const HELD_TIMEOUTS: [&str; 4] = ["--idle-timeout", "60s", "--request-timeout", "60s"];

/// The two programs.
#[derive(Debug, Clone)]
pub struct Programs {
    /// `hello-server`.
    pub server: PathBuf,
    /// `hello-client`.
    pub client: PathBuf,
}

/// One page of a scenario: one exchange or experiment, its timeline, and what to notice.
#[derive(Debug, Clone)]
pub struct Part {
    /// The scenario it belongs to.
    pub scenario: Scenario,
    /// A name for its file: `hello-1-tcp-hello`.
    pub slug: String,
    /// Its title.
    pub title: String,
    /// The commands run, as a reader would type them.
    pub commands: Vec<String>,
    /// What the clients printed.
    pub outputs: Vec<String>,
    /// What to notice, one point per line.
    pub notice: Vec<String>,
    /// Other observations (the accept queue as `ss` shows it).
    pub extra: Vec<String>,
    /// Both sides' calls in causal order.
    pub timeline: Timeline,
    /// What the kernel showed of it: packets captured, socket states (`crate::observe`).
    pub observed: Option<Observed>,
    /// On a scenario's last page: its predict-then-run questions (`crate::predict`).
    pub predict: Vec<String>,
}

pub(crate) fn say(lang: Lang, en: &str, ko: &str) -> String {
    match lang {
        Lang::En => en.to_string(),
        Lang::Ko => ko.to_string(),
    }
}

/// Runs scenario `name` (or `all`) in `lang`: its pages, each checked; sockets sampled,
/// no packets captured.
pub fn run(name: &str, programs: &Programs, lang: Lang) -> Result<Vec<Part>> {
    run_watched(name, programs, lang, Capturing::Off)
}

/// [`run`], each exchange's packets captured as `capturing` says.
pub fn run_watched(name: &str, programs: &Programs, lang: Lang, capturing: Capturing) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for n in Scenario::pick(name)? {
        let ctx = Ctx {
            programs,
            lang,
            capturing,
            watching: RefCell::new(None),
        };
        let got = match n {
            Scenario::Hello => ctx.hello(),
            Scenario::Backlog => ctx.backlog(),
            Scenario::Iterative => ctx.iterative(),
            Scenario::Models => ctx.models(),
            Scenario::Boundaries => ctx.boundaries(),
            Scenario::Udp => ctx.udp(),
        };
        let mut got = got.with_context(|| format!("scenario {n}"))?;
        if let Some(last) = got.last_mut() {
            last.predict = crate::predict::lines(n, lang);
        }
        parts.extend(got);
    }
    Ok(parts)
}

/// What a scenario runs with.
struct Ctx<'a> {
    programs: &'a Programs,
    lang: Lang,
    capturing: Capturing,
    /// The exchange being watched: from its server's start (or its closed port's
    /// choice) to its page.
    watching: RefCell<Option<Watching>>,
}

/// A server started for a scenario.
struct Server {
    proc: Proc,
    port: u16,
    command: String,
}

/// A client of the demo's own: a TCP socket made through `hello_proto::sys`, traced in
/// the programs' words into memory.
struct Held {
    stream: Stream,
    lines: Arc<Mutex<String>>,
}

impl Held {
    fn connect(port: u16, lang: Lang) -> Result<Held> {
        let (tracer, lines): (Tracer, _) = Tracer::collect(Role::Client, lang, Format::Json);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (stream, _) = sys::connect_tcp(addr, WAIT, &tracer)?;
        Ok(Held { stream, lines })
    }

    /// `write()` of `bytes`, all of them.
    fn write(&self, bytes: &[u8]) -> Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.stream.write(rest).context("write() of the demo's client")?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Reads the reply to its end (the server closes first: its FIN ends the stream),
    /// calls `closing` while this side has not yet closed (the sockets are then in
    /// CLOSE_WAIT here and FIN_WAIT1 or FIN_WAIT2 at the server: a moment to sample them), and
    /// closes: the reply and the lines.
    fn finish(self, closing: impl FnOnce()) -> Result<(Vec<u8>, String)> {
        self.stream.set_read_timeout(Some(WAIT))?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = self
                .stream
                .read(&mut buf)
                .context("read() of the demo's client")?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        closing();
        self.stream.close();
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Ok((reply, lines))
    }
}

fn lane(label: &str, side: Side, stderr: &str) -> Lane {
    Lane {
        label: label.to_string(),
        side,
        calls: parse_all(stderr),
    }
}

/// The causal timeline of `lanes` with what the kernel showed among the calls, checked.
fn ordered(lanes: Vec<Lane>, kernel: &Kernel) -> Result<Timeline, String> {
    let t = timeline::build_seen(lanes, kernel)?;
    timeline::check(&t)?;
    Ok(t)
}

/// [`ordered`], with the packets captured if they can be placed; if they cannot (the
/// capture never fails a scenario), without them, and a note says why.
fn ordered_seen(lanes: Vec<Lane>, observed: Option<&mut Observed>) -> Result<Timeline> {
    let Some(o) = observed else {
        return ordered(lanes, &Kernel::default()).map_err(anyhow::Error::msg);
    };
    let kernel = o.kernel();
    match ordered(lanes.clone(), &kernel) {
        Ok(t) => {
            if t.foreign > 0 {
                o.notes.push(Note::Foreign(t.foreign));
            }
            Ok(t)
        }
        Err(e) if kernel.packets.is_some() => {
            o.notes.push(Note::Unplaced(e));
            let inferred = Kernel {
                packets: None,
                ..kernel
            };
            ordered(lanes, &inferred).map_err(anyhow::Error::msg)
        }
        Err(e) => Err(anyhow::Error::msg(e)),
    }
}

/// How long the first call of `lane` named `name` took, in µs.
fn took(lane: &Lane, name: &str) -> Option<u64> {
    lane.calls.iter().find(|c| c.call == name).map(|c| c.dur_us)
}

/// What `sock_diag` shows of the TCP sockets of `127.0.0.1:port` now: how many
/// connections wait in the accept queue of the socket listening there (`ss -ltn` shows
/// the same under Recv-Q), and how many clients' sockets to it wait in SYN_SENT (their
/// SYN not answered). Only that address's: another program may listen on the same port
/// number at another address (`[::1]`, `0.0.0.0` with `SO_REUSEPORT`).
fn queue_and_waiting(port: u16) -> Option<(u64, usize)> {
    use sys::sockdiag::TcpState;
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let (sockets, _) = sys::sockdiag::tcp_sockets(&[port]).ok()?;
    let queued = sockets
        .iter()
        .find(|s| s.state == TcpState::Listen && s.local == at)
        .map(|s| u64::from(s.rqueue))?;
    let waiting = sockets
        .iter()
        .filter(|s| s.state == TcpState::SynSent && s.peer == at)
        .count();
    Some((queued, waiting))
}

/// Waits (bounded by [`WAIT`]) until `sock_diag` shows `want` of the port's sockets.
fn await_sockets(port: u16, what: &str, want: impl Fn((u64, usize)) -> bool) -> Result<()> {
    let until = Instant::now() + WAIT;
    while !queue_and_waiting(port).is_some_and(&want) {
        ensure!(Instant::now() < until, "{what} never happened within {WAIT:?}");
        thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// The backlog `ss -ltn` shows for the listener in its output (Send-Q).
fn ss_backlog(table: &str) -> Option<u64> {
    let row = table.lines().find(|l| l.starts_with("LISTEN"))?;
    row.split_whitespace().nth(2)?.parse().ok()
}

/// `ss -ltn` for `127.0.0.1:port`, as printed, if `ss` is there.
fn ss(port: u16) -> Option<String> {
    let out = std::process::Command::new("ss")
        .args(["-ltn", &format!("src 127.0.0.1:{port}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// The command a reader would type for `program ARGS` as the lesson runs it: the trace
/// as text, the reader reads (`--trace`, not `--trace-format json`), and `--lang en` left
/// out (`--lang ko` kept).
pub fn typed(program: &str, args: &[String]) -> String {
    let mut shown = vec![program.to_string()];
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match (a.as_str(), it.peek().map(|n| n.as_str())) {
            ("--trace-format", Some("json")) | ("--lang", Some("en")) => {
                it.next();
            }
            _ => shown.push(a.clone()),
        }
    }
    shown.join(" ")
}

impl Ctx<'_> {
    /// The server's lane, named in the reader's language.
    fn server_lane(&self, stderr: &str) -> Lane {
        lane(&say(self.lang, "server", "서버"), Side::Server, stderr)
    }

    /// A client's lane: `client`, `client N`, and ` (demo)` after the demo's own sockets.
    fn client_lane(&self, n: Option<usize>, demo: bool, stderr: &str) -> Lane {
        let (mut en, mut ko) = match n {
            Some(n) => (format!("client {n}"), format!("클라이언트 {n}")),
            None => ("client".to_string(), "클라이언트".to_string()),
        };
        if demo {
            en.push_str(" (demo)");
            ko.push_str(" (데모)");
        }
        lane(&say(self.lang, &en, &ko), Side::Client, stderr)
    }

    fn lang_args(&self) -> Vec<String> {
        let l = match self.lang {
            Lang::En => "en",
            Lang::Ko => "ko",
        };
        vec![
            "--trace".into(),
            "--trace-format".into(),
            "json".into(),
            "--lang".into(),
            l.into(),
        ]
    }

    /// `hello-server --trace --trace-format json --lang L ARGS --bind 127.0.0.1 0`, up and
    /// listening.
    fn server(&self, args: &[&str]) -> Result<Server> {
        let mut all = self.lang_args();
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(["--bind".into(), "127.0.0.1".into(), "0".into()]);
        let proc = Proc::spawn(&self.programs.server, &all)?;
        let port = proc.listening(Pipe::Stdout, WAIT)?.port();
        let transport = if args.contains(&"--udp") {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        self.watch(port, transport);
        Ok(Server {
            proc,
            port,
            command: format!("$ {}", typed("hello-server", &all)),
        })
    }

    /// `hello-client --trace --trace-format json --lang L ARGS 127.0.0.1 PORT`, started.
    fn client(&self, args: &[&str], port: u16) -> Result<(Proc, String)> {
        let mut all = self.lang_args();
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(["127.0.0.1".into(), port.to_string()]);
        let shown: Vec<String> = all
            .iter()
            .map(|a| {
                if a.len() > 40 {
                    format!("\"{}…\" ({} bytes)", &a[..12], a.len())
                } else {
                    a.clone()
                }
            })
            .collect();
        let command = format!("$ {}", typed("hello-client", &shown));
        Ok((Proc::spawn(&self.programs.client, &all)?, command))
    }

    /// A client run to its end: it must succeed and print `expect`.
    fn client_run(&self, args: &[&str], port: u16, expect: &str) -> Result<(Done, String)> {
        let (p, command) = self.client(args, port)?;
        let done = p.finish()?;
        ensure!(
            done.status.success(),
            "hello-client failed ({}): {}",
            done.status,
            done.stderr.lines().last().unwrap_or_default()
        );
        ensure!(
            done.stdout.trim_end() == expect,
            "hello-client printed {:?}, expected {expect:?}",
            done.stdout
        );
        Ok((done, command))
    }

    /// Starts watching the exchange over `transport` on `127.0.0.1:port` (until its
    /// page, [`Ctx::part`]).
    fn watch(&self, port: u16, transport: Transport) {
        let at = SocketAddr::from(([127, 0, 0, 1], port));
        *self.watching.borrow_mut() = Some(Watching::start(at, transport, self.capturing));
    }

    /// Samples the watched exchange's TCP sockets now (kept for its page).
    fn sample(&self) {
        if let Some(w) = self.watching.borrow_mut().as_mut() {
            w.sample();
        }
    }

    /// The page of an exchange: the watch finished, the lanes' calls ordered with what
    /// the kernel showed.
    #[allow(clippy::too_many_arguments)]
    fn part(
        &self,
        scenario: Scenario,
        slug: &str,
        title: (&str, &str),
        commands: Vec<String>,
        outputs: Vec<String>,
        notice: &[(&str, &str)],
        lanes: Vec<Lane>,
    ) -> Result<Part> {
        let mut observed = self.watching.take().map(Watching::finish);
        let timeline = ordered_seen(lanes, observed.as_mut())?;
        Ok(Part {
            scenario,
            slug: slug.to_string(),
            title: say(self.lang, title.0, title.1),
            commands,
            outputs,
            notice: notice.iter().map(|(en, ko)| say(self.lang, en, ko)).collect(),
            extra: Vec::new(),
            timeline,
            observed,
            predict: Vec::new(),
        })
    }

    /// The textbook's four exchanges, each with a `--once` server.
    fn hello(&self) -> Result<Vec<Part>> {
        type Exchange<'e> = (
            &'e str,
            (&'e str, &'e str),
            &'e [&'e str],
            &'e [&'e str],
            &'e str,
            &'e [(&'e str, &'e str)],
        );
        let exchanges: [Exchange<'_>; 4] = [
            (
                "hello-1-tcp-hello",
                (
                    "hello over TCP: the textbook's hello_server / hello_client",
                    "TCP hello: 교재의 hello_server / hello_client",
                ),
                &[],
                &[],
                "Message from server: Hello World!",
                &[
                    (
                        "socket() makes a descriptor with no address; bind() gives the server its address, listen() makes it a listening socket.",
                        "socket()은 주소 없는 소켓을 만들고, bind()가 서버에 주소를 할당하며, listen()이 연결요청 대기상태로 만듭니다.",
                    ),
                    (
                        "accept() returns a NEW descriptor for the client; the listening socket keeps listening.",
                        "accept()는 클라이언트와 통신할 새 소켓을 반환하고, 서버 소켓은 계속 연결요청을 기다립니다.",
                    ),
                    (
                        "The client never calls bind(): the kernel gives it an address and a port at connect() (getsockname() shows them).",
                        "클라이언트는 bind()를 하지 않습니다: connect() 때 커널이 IP와 포트를 할당합니다(getsockname()으로 확인).",
                    ),
                    (
                        "13 bytes: the 12 letters and the C string's NUL. The client reads until read() = 0, end of stream.",
                        "13바이트: 12글자와 C 문자열 끝의 NUL입니다. 클라이언트는 read()가 0(EOF)을 반환할 때까지 읽습니다.",
                    ),
                ],
            ),
            (
                "hello-2-tcp-echo",
                (
                    "echo over TCP: the client sends a message, the server replies \"<len> : <msg>\"",
                    "TCP 에코: 클라이언트가 보낸 메시지에 서버가 \"<길이> : <메시지>\"로 응답",
                ),
                &["--service", "echo"],
                &["-m", "hello"],
                "Message from server: 5 : hello",
                &[
                    (
                        "The client writes its message and half-closes (shutdown SHUT_WR): the server reads to end of stream and still answers.",
                        "클라이언트는 메시지를 보내고 Half-close(shutdown SHUT_WR)합니다: 서버는 EOF까지 읽고도 응답할 수 있습니다.",
                    ),
                    (
                        "Every read() comes after the write() that sent its bytes, whatever the clocks say about when each returned.",
                        "각 read()는 그 바이트를 보낸 write() 뒤에 보입니다. 호출이 끝난 시각의 순서와 달라도 그렇습니다.",
                    ),
                ],
            ),
            (
                "hello-3-udp-hello",
                (
                    "hello over UDP: no connection, one datagram each way",
                    "UDP hello: 연결 없이 데이터그램을 한 번씩 주고받기",
                ),
                &["--udp"],
                &["--udp"],
                "Message from server: Hello World!",
                &[
                    (
                        "No listen(), no accept(): the server's one socket receives every client's datagrams, and recvfrom() says who sent each.",
                        "listen()도 accept()도 없습니다: 서버 소켓 하나가 모든 클라이언트의 데이터그램을 받고, recvfrom()이 보낸 쪽을 알려 줍니다.",
                    ),
                    (
                        "The client's connect() sends nothing on UDP: it only fixes the peer. An empty datagram is a message too.",
                        "UDP의 connect()는 아무것도 보내지 않고 목적지만 정합니다. 빈 데이터그램도 하나의 메시지입니다.",
                    ),
                ],
            ),
            (
                "hello-4-udp-echo",
                ("echo over UDP", "UDP 에코"),
                &["--udp", "--service", "echo"],
                &["--udp", "-m", "hello"],
                "Message from server: 5 : hello",
                &[(
                    "One sendto() is one datagram is one recvfrom(): UDP keeps the message's boundaries.",
                    "sendto() 한 번에 데이터그램 하나가 가고, recvfrom() 한 번에 그 하나를 통째로 받습니다: UDP는 메시지의 경계를 지킵니다.",
                )],
            ),
        ];
        let mut parts = Vec::new();
        for (slug, title, server_args, client_args, expect, notice) in exchanges {
            let mut args = vec!["--model", "iterative", "--once"];
            args.extend_from_slice(server_args);
            let server = self.server(&args)?;
            let (done, command) = self.client_run(client_args, server.port, expect)?;
            let served = server.proc.finish()?;
            ensure!(
                served.status.success(),
                "hello-server --once exited with {}",
                served.status
            );
            let lanes = vec![
                self.client_lane(None, false, &done.stderr),
                self.server_lane(&served.stderr),
            ];
            parts.push(self.part(
                Scenario::Hello,
                slug,
                title,
                vec![server.command, command],
                vec![done.stdout.trim_end().to_string()],
                notice,
                lanes,
            )?);
        }
        Ok(parts)
    }

    /// An iterative echo server held by the demo's silent client; `queue` clients then
    /// connect while it is busy. Returns the server, the held client and the clients.
    fn held_server(&self, extra: &[&str]) -> Result<(Server, Held)> {
        let mut args = vec!["--model", "iterative", "--service", "echo"];
        args.extend_from_slice(&HELD_TIMEOUTS);
        args.extend_from_slice(extra);
        let server = self.server(&args)?;
        let held = Held::connect(server.port, self.lang)?;
        // The server has taken the silent client and waits in read() for its message.
        ensure!(
            server.proc.wait_stderr(", peer 127.0.0.1:", WAIT),
            "the server did not accept the silent client"
        );
        Ok((server, held))
    }

    fn backlog(&self) -> Result<Vec<Part>> {
        let (server, held) = self.held_server(&["--backlog", "1"])?;
        let port = server.port;
        let mut commands = vec![server.command.clone()];
        let mut clients = Vec::new();
        let mut extra = Vec::new();
        // Two clients fill the queue (Linux queues backlog + 1); the third is past it:
        // its SYN is dropped and its socket waits in SYN_SENT. Each awaited through
        // sock_diag, and the sockets sampled for the page.
        for (k, msg) in ["second", "third", "fourth"].iter().enumerate() {
            let (p, command) = self.client(&["-m", msg, "--timeout", CLIENT_TIMEOUT], port)?;
            commands.push(command);
            clients.push(p);
            let awaited = if k < 2 {
                let want = k as u64 + 1;
                await_sockets(port, &format!("{want} queued"), |(q, _)| q >= want)
            } else {
                await_sockets(port, "the fourth client in SYN_SENT", |(_, w)| w >= 1)
            };
            awaited.with_context(|| {
                let said = server.proc.stderr();
                let last: Vec<&str> = said.lines().rev().take(4).collect();
                format!("the server's last lines: {last:?}")
            })?;
            self.sample();
        }
        let (queued, waiting) = queue_and_waiting(port).context("the listening socket is gone")?;
        ensure!(
            queued == 2 && waiting == 1,
            "expected 2 queued with backlog 1 and the fourth client in SYN_SENT, sock_diag says {queued} queued and {waiting} waiting"
        );
        extra.push(say(
            self.lang,
            &format!("While the server is busy: {queued} connections wait in the accept queue of backlog 1 (Linux lets backlog + 1 in); the fourth client's SYN was dropped: its socket waits in SYN_SENT."),
            &format!("서버가 바쁜 동안: backlog 1인 연결요청 대기 큐에 {queued}개가 기다립니다(리눅스는 backlog+1개까지 받음). 네 번째 클라이언트의 SYN은 버려져 그 소켓은 SYN_SENT에서 기다립니다."),
        ));
        match ss(port) {
            Some(table) => {
                ensure!(
                    ss_backlog(&table) == Some(1) && table.contains("LISTEN 2 "),
                    "ss -ltn does not show 2 queued of backlog 1:\n{table}"
                );
                extra.push(say(
                    self.lang,
                    &format!("$ ss -ltn 'src 127.0.0.1:{port}'   (Recv-Q: queued, Send-Q: backlog)\n{table}"),
                    &format!(
                        "$ ss -ltn 'src 127.0.0.1:{port}'   (Recv-Q: 대기 중인 연결 수, Send-Q: backlog)\n{table}"
                    ),
                ));
            }
            None => extra.push(say(
                self.lang,
                "(ss is not installed here: the figure above is read with sock_diag)",
                "(이 컴퓨터에는 ss가 없어 위 수치는 sock_diag로 읽었습니다)",
            )),
        }
        held.write(b"first\0")?;
        let (reply, held_lines) = held.finish(|| self.sample())?;
        ensure!(reply == b"5 : first\0", "the silent client got {reply:?}");
        let mut lanes = vec![self.client_lane(Some(1), true, &held_lines)];
        let mut outputs = vec![say(self.lang, "client 1: 5 : first", "클라이언트 1: 5 : first")];
        for (k, p) in clients.into_iter().enumerate() {
            let done = p.finish()?;
            ensure!(done.status.success(), "client {} failed: {}", k + 2, done.stderr);
            let said = done.stdout.trim_end();
            outputs.push(say(
                self.lang,
                &format!("client {}: {said}", k + 2),
                &format!("클라이언트 {}: {said}", k + 2),
            ));
            lanes.push(self.client_lane(Some(k + 2), false, &done.stderr));
        }
        let served = server.proc.stop()?;
        lanes.push(self.server_lane(&served.stderr));
        // The fourth connect() waited for a SYN retransmit (the kernel's first comes
        // after 1 s; a loaded machine only makes it later); the second returned while
        // the server was still held by client 1 (before client 1 wrote).
        let fourth = took(&lanes[3], "connect").context("the fourth client traced no connect()")?;
        let second_end = lanes[1]
            .calls
            .iter()
            .find(|c| c.call == "connect")
            .map(|c| c.end())
            .context("the second client traced no connect()")?;
        let released = lanes[0]
            .calls
            .iter()
            .find(|c| c.call == "write")
            .map(|c| c.t_us)
            .context("the demo's client traced no write()")?;
        ensure!(
            fourth >= 900_000 && second_end < released,
            "the fourth connect() took {fourth} µs (expected a SYN retransmit, about 1 s); the second returned {} µs after client 1 was released (expected before)",
            second_end.saturating_sub(released)
        );
        let mut part = self.part(
            Scenario::Backlog,
            "backlog",
            (
                "the accept queue: --backlog 1, a busy server, and the client past the queue",
                "연결요청 대기 큐: --backlog 1, 바쁜 서버, 큐를 넘친 클라이언트",
            ),
            commands,
            outputs,
            &[
                ("The iterative server is busy with client 1, which says nothing for a while: nobody calls accept().",
                 "반복 서버는 한동안 아무것도 보내지 않는 클라이언트 1을 처리하느라 accept()를 호출하지 않습니다."),
                ("Clients 2 and 3 still connect at once: the kernel completes their handshakes (SYN, SYN-ACK, ACK) and queues them; ◆ the accept queue grows 0 → 1 → 2. connect() does not wait for accept().",
                 "클라이언트 2와 3도 바로 연결됩니다: handshake(SYN, SYN-ACK, ACK)는 커널이 마치고 연결요청 대기 큐에 넣습니다. ◆ 연결요청 대기 큐가 0 → 1 → 2로 늘어납니다. connect()는 accept()를 기다리지 않습니다."),
                ("The queue is full at backlog + 1 = 2. Client 4's SYN is dropped (no SYN-ACK; its socket waits in SYN_SENT); the kernel sends the SYN again a second later, and its connect() returns only then (see its +µs).",
                 "연결요청 대기 큐는 backlog+1 = 2개에서 가득 찹니다. 클라이언트 4의 SYN은 버려지고(SYN-ACK 없음, 소켓은 SYN_SENT), 커널이 약 1초 뒤 SYN을 재전송한 뒤에야 connect()가 반환됩니다(+µs 참고)."),
                ("Once client 1 is served, accept() takes clients 2 and 3 from the queue in order, then client 4 when it gets in.",
                 "클라이언트 1을 마치면 accept()가 큐에서 2, 3을 차례로 꺼내고, 들어온 4도 처리합니다."),
            ],
            lanes,
        )?;
        if part.timeline.captured {
            let resent = part
                .timeline
                .steps()
                .iter()
                .filter(|s| {
                    matches!(
                        s,
                        timeline::Step::Seen(_, timeline::Carries::Segment { again: true, .. })
                    )
                })
                .count();
            ensure!(resent >= 1, "no SYN sent again was captured");
        }
        part.extra = extra;
        Ok(vec![part])
    }

    /// The silent client holds a server of `model`; a second client comes meanwhile.
    /// The iterative server cannot serve it: the silent client holds it [`HOLD`] long,
    /// and the second must not have been answered by then. Every other model serves it:
    /// the silent client holds the server until the second is answered. Returns the
    /// page and whether the second client was answered while the server was held (how
    /// long it waited is `compare::costs`'s).
    fn two_clients(
        &self,
        model: &str,
        slug: &str,
        title: (&str, &str),
        notice: &[(&str, &str)],
    ) -> Result<(Part, bool)> {
        let mut args = vec!["--model", model, "--service", "echo"];
        args.extend_from_slice(&HELD_TIMEOUTS);
        let server = self.server(&args)?;
        let held = Held::connect(server.port, self.lang)?;
        // The server has the silent client (in a blocking read, a child, a thread, or
        // registered) before the second one comes.
        ensure!(
            server.proc.wait_stderr(", peer 127.0.0.1:", WAIT),
            "the server did not accept the silent client"
        );
        thread::sleep(Duration::from_millis(20));
        let (second, command) = self.client(&["-m", "second", "--timeout", CLIENT_TIMEOUT], server.port)?;
        let answered = if model == "iterative" {
            thread::sleep(HOLD);
            !second.stdout().is_empty()
        } else {
            second.wait_stdout("Message from server", WAIT)
        };
        held.write(b"first\0")?;
        let (reply, held_lines) = held.finish(|| self.sample())?;
        ensure!(reply == b"5 : first\0", "the silent client got {reply:?}");
        let done = second.finish()?;
        ensure!(
            done.status.success() && done.stdout.trim_end() == "Message from server: 6 : second",
            "the second client: {} {}",
            done.stdout,
            done.stderr
        );
        let served = server.proc.stop()?;
        let lanes = vec![
            self.client_lane(Some(1), true, &held_lines),
            self.client_lane(Some(2), false, &done.stderr),
            self.server_lane(&served.stderr),
        ];
        let part = self.part(
            if slug.starts_with("models") {
                Scenario::Models
            } else {
                Scenario::Iterative
            },
            slug,
            title,
            vec![server.command, command],
            vec![
                say(self.lang, "client 1: 5 : first", "클라이언트 1: 5 : first"),
                say(
                    self.lang,
                    &format!("client 2: {}", done.stdout.trim_end()),
                    &format!("클라이언트 2: {}", done.stdout.trim_end()),
                ),
            ],
            notice,
            lanes,
        )?;
        Ok((part, answered))
    }

    fn iterative(&self) -> Result<Vec<Part>> {
        let (part, answered) = self.two_clients(
            "iterative",
            "iterative",
            (
                "the iterative server: one client at a time, the second waits",
                "반복 서버: 한 번에 클라이언트 하나, 두 번째는 기다립니다",
            ),
            &[
                ("Client 1 connects and says nothing for a while; the server sits in read() for it.",
                 "클라이언트 1은 연결한 뒤 한동안 아무것도 보내지 않고, 서버는 read()에서 기다립니다."),
                ("Client 2 connects at once (the kernel queues it) and sends its message, but its read() waits: nobody has accepted it yet.",
                 "클라이언트 2는 바로 연결되고(커널이 큐에 넣음) 메시지도 보내지만, read()는 기다립니다: 아직 아무도 accept()하지 않았습니다."),
                ("Only after client 1 is served does accept() return client 2: the textbook's loop serves clients in turn.",
                 "클라이언트 1을 마친 뒤에야 accept()가 클라이언트 2를 반환합니다: 교재의 반복 서버는 차례로 처리합니다."),
            ],
        )?;
        ensure!(
            !answered,
            "client 2 was answered while client 1 held the iterative server"
        );
        Ok(vec![part])
    }

    fn models(&self) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        let mut traces: Vec<Vec<String>> = Vec::new();
        for model in models() {
            let notice: &[(&str, &str)] = match model {
                Model::Iterative => &[(
                    "One client at a time: client 2 waits for client 1.",
                    "한 번에 하나: 클라이언트 2가 클라이언트 1을 기다립니다.",
                )],
                Model::Fork => &[(
                    "fork() per client: each child (server[pid]) serves one client; the parent closes its copy and accepts the next at once.",
                    "클라이언트마다 fork(): 자식 프로세스(server[pid])가 하나씩 맡고, 부모는 복사본을 닫고 바로 다음을 accept()합니다.",
                )],
                Model::Select => &[(
                    "One thread and select(): it sleeps until one of the watched descriptors is ready, then serves that one.",
                    "스레드 하나와 select(): 관찰하는 파일 디스크립터 중 하나가 준비될 때까지 잠들었다가 그것을 처리합니다.",
                )],
                Model::Threads => &[(
                    "A thread per client: client 2 gets a thread of its own while client 1's thread waits in read().",
                    "클라이언트마다 스레드: 클라이언트 1의 스레드가 read()에서 기다리는 동안 클라이언트 2는 자기 스레드를 받습니다.",
                )],
                _ => &[(
                    "One thread and epoll: epoll_wait() returns only the ready descriptors; the listening socket is non-blocking while clients wait.",
                    "스레드 하나와 epoll: epoll_wait()는 준비된 파일 디스크립터만 돌려줍니다. 기다리는 클라이언트가 있으면 서버 소켓은 넌블로킹입니다.",
                )],
            };
            let slug = format!("models-{model}");
            let title_en = format!("--model {model}: the same two clients");
            let title_ko = format!("--model {model}: 같은 두 클라이언트");
            let (part, answered) =
                self.two_clients(&model.to_string(), &slug, (&title_en, &title_ko), notice)?;
            ensure!(
                answered == (model != Model::Iterative),
                "{model}: client 2 was {} while client 1 held the server",
                if answered { "answered" } else { "not answered" }
            );
            let server = part.timeline.lanes.iter().find(|l| l.side == Side::Server);
            let names: Vec<String> = server
                .map(|l| l.calls.iter().map(|c| c.call.clone()).collect())
                .unwrap_or_default();
            traces.push(names);
            parts.push(part);
        }
        let mut distinct: Vec<Vec<String>> = Vec::new();
        for t in &traces {
            let mut set = t.clone();
            set.sort();
            set.dedup();
            if !distinct.contains(&set) {
                distinct.push(set);
            }
        }
        ensure!(
            distinct.len() >= 3,
            "only {} different sets of calls among the models",
            distinct.len()
        );
        // What each model cost, under the last: the calls, and how long client 2 waited.
        let table = crate::compare::costs_table(&parts, self.lang);
        if let Some(last) = parts.last_mut() {
            last.extra.push(crate::compare::heading(self.lang).to_string());
            last.extra.extend(table.lines().map(str::to_string));
        }
        Ok(parts)
    }

    fn boundaries(&self) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        // One write, several reads.
        let server = self.server(&[
            "--model",
            "iterative",
            "--service",
            "echo",
            "--once",
            "--max-request",
            "100000",
        ])?;
        let message = "a".repeat(20_000);
        let expect = format!("Message from server: 20000 : {message}");
        let (done, command) = self.client_run(&["-m", &message], server.port, &expect)?;
        let served = server.proc.finish()?;
        let lanes = vec![
            self.client_lane(None, false, &done.stderr),
            self.server_lane(&served.stderr),
        ];
        let writes = lanes[0].calls.iter().filter(|c| c.call == "write").count();
        let reads = lanes[1]
            .calls
            .iter()
            .filter(|c| c.call == "read" && c.bytes.is_some_and(|n| n > 0))
            .count();
        ensure!(
            writes == 1 && reads >= 2,
            "expected one write and several reads, got {writes} and {reads}"
        );
        parts.push(self.part(
            Scenario::Boundaries,
            "boundaries-1-one-write",
            (
                "one write(), several read()s: 20,001 bytes sent at once, read in pieces",
                "write() 한 번, read() 여러 번: 한 번에 보낸 20,001바이트를 나눠 읽기",
            ),
            vec![server.command, command],
            vec![format!("Message from server: 20000 : aaaa… ({} bytes)", message.len())],
            &[
                ("The client's one write() sends 20,001 bytes (the message and its NUL).",
                 "클라이언트는 write() 한 번에 20,001바이트(메시지와 NUL)를 보냅니다."),
                ("The server's read()s take what has arrived, at most its 8 KiB buffer at a time: TCP has no message boundaries, so the echo server reads until its terminator.",
                 "서버의 read()는 도착한 만큼, 한 번에 버퍼 8KiB까지만 가져옵니다: TCP에는 데이터의 경계가 없어 에코 서버는 끝 표시(NUL)까지 읽습니다."),
                ("The reply, too, reaches the client in several read()s.",
                 "응답도 여러 번의 read()로 클라이언트에 도착합니다."),
            ],
            lanes,
        )?);
        // Two writes, one read: the demo's client writes twice while the server is busy.
        let (server, held) = self.held_server(&[])?;
        let second = Held::connect(server.port, self.lang)?;
        second.write(b"hel")?;
        thread::sleep(Duration::from_millis(20));
        second.write(b"lo\0")?;
        thread::sleep(Duration::from_millis(20));
        held.write(b"first\0")?;
        let (_, held_lines) = held.finish(|| {})?;
        let (reply, second_lines) = second.finish(|| self.sample())?;
        ensure!(reply == b"5 : hello\0", "the two-write client got {reply:?}");
        let served = server.proc.stop()?;
        let lanes = vec![
            self.client_lane(Some(1), true, &held_lines),
            self.client_lane(Some(2), true, &second_lines),
            self.server_lane(&served.stderr),
        ];
        let part = self.part(
            Scenario::Boundaries,
            "boundaries-2-two-writes",
            (
                "two write()s, one read(): \"hel\" and \"lo\\0\" read as \"hello\\0\"",
                "write() 두 번, read() 한 번: \"hel\"과 \"lo\\0\"을 \"hello\\0\"으로 한 번에 읽기",
            ),
            vec![
                server.command,
                say(
                    self.lang,
                    "(client 1 and 2: the demo's own sockets)",
                    "(클라이언트 1, 2: 데모가 직접 만든 소켓)",
                ),
            ],
            vec![
                say(self.lang, "client 1: 5 : first", "클라이언트 1: 5 : first"),
                say(self.lang, "client 2: 5 : hello", "클라이언트 2: 5 : hello"),
            ],
            &[
                ("Client 2 writes \"hel\" and then \"lo\\0\": two write() calls, while the server is still busy with client 1.",
                 "클라이언트 2는 \"hel\"과 \"lo\\0\"을 write() 두 번으로 보냅니다. 서버는 아직 클라이언트 1을 처리하는 중입니다."),
                ("Both pieces wait in the server's receive buffer; its one read() then gets all 6 bytes: the boundary between the writes is gone.",
                 "두 조각은 서버의 입력 버퍼에서 기다리고, read() 한 번에 6바이트가 모두 옵니다: write() 사이의 경계는 남지 않습니다."),
            ],
            lanes,
        )?;
        // Client 2's connection (named by its port, from its connect()) received its 6
        // bytes in one read() of the server.
        let t = &part.timeline;
        let second_port = t.sems[1].iter().find_map(|s| match s {
            Sem::Connect(k, _) => Some(*k),
            _ => None,
        });
        let one_read = second_port.is_some_and(|k| t.sems[2].contains(&Sem::Receive(k, Dir::Up, 6)));
        ensure!(one_read, "the server did not read both writes at once");
        parts.push(part);
        Ok(parts)
    }

    fn udp(&self) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        for (slug, unconnected, title, notice) in [
            (
                "udp-1-connected",
                false,
                (
                    "a connected UDP client: connect() only sets the peer",
                    "connected UDP 클라이언트: connect()는 목적지만 정합니다",
                ),
                &[
                    (
                        "connect() on UDP sends no packet; from then on the kernel gives this socket only the server's datagrams.",
                        "UDP의 connect()는 패킷을 보내지 않습니다. 이후 커널은 이 소켓에 서버의 데이터그램만 전달합니다.",
                    ),
                    (
                        "The address and port are assigned at connect(), before anything is sent.",
                        "IP와 포트는 무엇을 보내기 전, connect() 때 할당됩니다.",
                    ),
                ][..],
            ),
            (
                "udp-2-unconnected",
                true,
                (
                    "the textbook's first UDP client: unconnected, sendto() and recvfrom()",
                    "교재의 첫 UDP 클라이언트: unconnected, sendto()와 recvfrom()",
                ),
                &[
                    (
                        "No bind(), no connect(): the kernel gives the socket its address and port at the first sendto().",
                        "bind()도 connect()도 없습니다: 첫 sendto() 때 커널이 IP와 포트를 자동으로 할당합니다.",
                    ),
                    (
                        "recvfrom() would take a datagram from anyone; it tells who sent it.",
                        "recvfrom()은 누가 보낸 데이터그램이든 받고, 보낸 쪽 주소를 알려 줍니다.",
                    ),
                ][..],
            ),
        ] {
            let server = self.server(&["--udp", "--service", "echo", "--once"])?;
            let mut args = vec!["--udp", "-m", "hello"];
            if unconnected {
                args.push("--unconnected");
            }
            let (done, command) = self.client_run(&args, server.port, "Message from server: 5 : hello")?;
            let served = server.proc.finish()?;
            let lanes = vec![
                self.client_lane(None, false, &done.stderr),
                self.server_lane(&served.stderr),
            ];
            let connected = lanes[0]
                .calls
                .iter()
                .any(|c| c.call == "connect" && c.errno.is_none());
            ensure!(
                connected != unconnected,
                "the client's connect() was not as asked"
            );
            parts.push(self.part(
                Scenario::Udp,
                slug,
                title,
                vec![server.command, command],
                vec![done.stdout.trim_end().to_string()],
                notice,
                lanes,
            )?);
        }
        // A datagram to a closed port: one found free, and sent to.
        let closed = closed_udp_port()?;
        self.watch(closed, Transport::Udp);
        let mut lanes = Vec::new();
        let mut commands = Vec::new();
        let mut outputs = Vec::new();
        for (label, unconnected) in [("connected", false), ("unconnected", true)] {
            let mut args = vec!["--udp", "-m", "hello", "--timeout", "1s"];
            if unconnected {
                args.push("--unconnected");
            }
            let (p, command) = self.client(&args, closed)?;
            let done = p.finish()?;
            let last = done.stderr.lines().last().unwrap_or_default().to_string();
            ensure!(!done.status.success(), "a datagram to a closed port was answered");
            let refused = done.stderr.contains("ECONNREFUSED");
            ensure!(
                refused != unconnected,
                "{label}: expected {}, got: {last}",
                if unconnected { "a time-out" } else { "ECONNREFUSED" }
            );
            commands.push(command);
            outputs.push(format!("{label}: {last}"));
            let name = say(
                self.lang,
                &format!("{label} client"),
                &format!("{label} 클라이언트"),
            );
            lanes.push(lane(&name, Side::Client, &done.stderr));
        }
        parts.push(self.part(
            Scenario::Udp,
            "udp-3-closed-port",
            ("a datagram to a closed port", "닫힌 포트로 보낸 데이터그램"),
            commands,
            outputs,
            &[
                ("Nothing listens on that port: the host answers with ICMP port unreachable.",
                 "그 포트에는 받는 소켓이 없습니다: 상대 호스트는 ICMP port unreachable로 답합니다."),
                ("The connected client learns it: its recvfrom() fails at once with ECONNREFUSED.",
                 "connected 클라이언트는 이를 알게 됩니다: recvfrom()이 바로 ECONNREFUSED로 실패합니다."),
                ("The unconnected client is never told (the error could be about any peer): it waits out its time limit.",
                 "unconnected 클라이언트는 알 수 없습니다(어느 상대에 대한 오류인지 모르므로): 제한 시간까지 기다립니다."),
            ],
            lanes,
        )?);
        Ok(parts)
    }
}

/// A UDP port that nobody holds, for the datagram to a closed port: one below the
/// kernel's range of ephemeral ports (`net.ipv4.ip_local_port_range`), found free by a
/// bind that is dropped at once. A bind to port 0 never takes such a port, so no other
/// program's client can be given it between this check and the datagram: a port freed
/// inside that range was, with 20 demos running at once (the datagram then reached that
/// client, and no ICMP came back). The search starts at a place that differs between
/// processes and, within one, between calls, so that demos at once (the demo test runs 20
/// in one process) do not pick the same port, whose capture would then see the others'
/// datagrams.
fn closed_udp_port() -> Result<u16> {
    static CALLS: AtomicU16 = AtomicU16::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const FIRST: u16 = 1024;
    let span = low.saturating_sub(FIRST);
    // Far apart: a call's port is usually its start, the next few if those are taken.
    let start =
        (std::process::id() as u16).wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(97));
    for i in 0..span.min(1000) {
        let port = FIRST + start.wrapping_add(i) % span;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // No room below the range (or none free): a port the kernel picks, freed at once.
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}
