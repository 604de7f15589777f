//! `cargo xtask demo --step`: the tutorials' programs (`--textbook`) run one call at a
//! time. Each program is started with `HELLO_STEP` naming a control socket
//! (`hello_proto::sys::step`); before each call it says which call and which C line, and
//! waits. The lesson shows that, the calls just made (with their results, from the JSON
//! trace) and the sockets' kernel state now (states and queues, from `sock_diag`), and
//! lets the call be made when the reader presses Enter; `q` (or the end of input) stops
//! both programs and ends the walk.
//!
//! When both programs are stopped, the client goes first: so the reader sees the
//! client's `connect()` return before the server has called `accept()`, the connection
//! waiting in the server's accept queue.

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_proto::kernel::{TcpSocket, TcpState};
use hello_proto::sys::sockdiag;
use hello_proto::sys::step::{STEP_VAR, Stop, Stops};
use hello_proto::trace::Lang;

use crate::line::parse_all;
use crate::run::{Pipe, Proc, WAIT};
use crate::scenario::{Programs, say, typed};
use crate::textbook::{EXCHANGES, Exchange, traced};

/// The calls that may wait for the other program (`read()` until the server writes):
/// after one of the client's, the walk goes on with the server at once. The client's
/// other calls return without the server (a TCP `connect()` is answered by the
/// kernel), so the walk waits for the client's next stop, and the reader sees the
/// client connected before the server has called `accept()`.
const WAITS_FOR_PEER: [&str; 2] = ["read", "recvfrom"];

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every exchange ran to its end.
    Done,
    /// The reader asked to stop (`q`, or the end of input): the programs were stopped.
    Quit,
}

/// Walks the `hello` scenario's exchanges one call at a time, reading the reader's keys
/// from `keys` and writing the screens to `out`; the control sockets go in `dir`.
pub fn walk(
    programs: &Programs,
    lang: Lang,
    dir: &Path,
    keys: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<Ended> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (i, ex) in EXCHANGES.iter().enumerate() {
        let title = match lang {
            Lang::En => ex.title.0,
            Lang::Ko => ex.title.1,
        };
        writeln!(out, "\n=== {}/{}  {title} ===", i + 1, EXCHANGES.len())?;
        let path = dir.join(format!("step-{}-{i}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let stops = Stops::listen(&path).with_context(|| format!("cannot listen at {}", path.display()))?;
        if exchange(programs, lang, ex, &stops, keys, out)? == Ended::Quit {
            return Ok(Ended::Quit);
        }
    }
    Ok(Ended::Done)
}

fn exchange(
    programs: &Programs,
    lang: Lang,
    ex: &Exchange,
    stops: &Stops,
    keys: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<Ended> {
    let env = [(STEP_VAR, stops.path())];
    let mut args = traced(lang);
    args.extend(ex.server.iter().map(|s| s.to_string()));
    args.extend(["--bind", "127.0.0.1", "0"].map(String::from));
    let mut server = Proc::spawn_with(&programs.server, &args, &env)?;
    writeln!(out, "$ {}", typed("hello-server", &args))?;
    let mut client: Option<Proc> = None;
    let mut port: Option<u16> = None;
    let mut pending: Vec<Stop> = Vec::new();
    let mut shown = [0usize; 2];
    let mut quiet_since = Instant::now();
    let mut client_heard = false;
    // A client's call let go that returns without the server.
    let mut client_in_call = false;
    // The stops let go, by program: each is one record on its stderr once the call returns.
    let mut let_go = [0usize; 2];
    let mut named = false;
    loop {
        if port.is_none() {
            // Once the server said its port (getsockname() let go), its start-up line
            // is on its way: worth waiting for.
            let within = if named { WAIT } else { Duration::ZERO };
            port = server.listening(Pipe::Stderr, within).ok().map(|a| a.port());
            if let Some(p) = port {
                let mut args = traced(lang);
                args.extend(ex.client.iter().map(|s| s.to_string()));
                args.extend(["127.0.0.1".to_string(), p.to_string()]);
                writeln!(out, "$ {}", typed("hello-client", &args))?;
                client = Some(Proc::spawn_with(&programs.client, &args, &env)?);
            }
        }
        while let Some(s) = stops.next(Duration::ZERO) {
            pending.push(s);
        }
        client_heard |= pending.iter().any(|s| s.who == "client");
        // A client just started has not said its first call yet: wait for it (bounded),
        // so that it goes first.
        let client_starting =
            !client_heard && client.as_mut().is_some_and(|c| !c.exited()) && quiet_since.elapsed() < WAIT;
        // A client's call let go that returns without the server: wait (bounded) for
        // its next stop.
        if client_in_call
            && (pending.iter().any(|s| s.who == "client") || client.as_mut().is_none_or(Proc::exited))
        {
            client_in_call = false;
        }
        let client_busy = client_in_call && quiet_since.elapsed() < WAIT;
        if pending.is_empty() || client_starting || client_busy {
            let client_done = client.as_mut().is_some_and(Proc::exited);
            if pending.is_empty() && server.exited() && (client_done || port.is_none()) {
                break;
            }
            if let Some(s) = stops.next(Duration::from_millis(20)) {
                pending.push(s);
            } else if quiet_since.elapsed() > WAIT {
                bail!(
                    "the programs made no call for {WAIT:?}; server: {}",
                    server.stderr().trim_end()
                );
            }
            continue;
        }
        quiet_since = Instant::now();
        // The client first: its connect() returns before the server's accept().
        let i = pending.iter().position(|s| s.who == "client").unwrap_or(0);
        let stop = pending.remove(i);
        let procs: [Option<&Proc>; 2] = [Some(&server), client.as_ref()];
        for (k, p) in procs.iter().enumerate() {
            if let Some(p) = p {
                // A program writes a call's record before it announces its next stop, but
                // its stderr is read on another thread: wait (bounded) for the records.
                let until = Instant::now() + WAIT;
                let mut records = parse_all(&p.stderr());
                while records.len() < let_go[k]
                    && Instant::now() < until
                    && k == usize::from(stop.who == "client")
                {
                    std::thread::sleep(Duration::from_millis(2));
                    records = parse_all(&p.stderr());
                }
                for r in records.iter().skip(shown[k]) {
                    made(out, r, lang)?;
                }
                shown[k] = records.len();
            }
        }
        write!(out, "{}", screen(&stop, lang, &state(port, ex.udp, lang)))?;
        out.flush()?;
        let mut key = String::new();
        let n = keys.read_line(&mut key)?;
        if n == 0 || key.trim() == "q" {
            writeln!(
                out,
                "{}",
                say(
                    lang,
                    "stopped: both programs ended.",
                    "멈춤: 두 프로그램을 끝냈습니다."
                )
            )?;
            // Dropping the programs kills them; the stops left unanswered go with them.
            drop(pending);
            drop(stop);
            return Ok(Ended::Quit);
        }
        client_in_call = stop.who == "client" && !WAITS_FOR_PEER.contains(&stop.call.as_str());
        let_go[usize::from(stop.who == "client")] += 1;
        named |= stop.who == "server" && stop.call == "getsockname";
        stop.go()
            .context("the program stopped before its call has gone")?;
    }
    let server = server.finish()?;
    let client = client.map(Proc::finish).transpose()?;
    let procs = [Some(&server), client.as_ref()];
    for (k, done) in procs.iter().enumerate() {
        if let Some(done) = done {
            for r in parse_all(&done.stderr).iter().skip(shown[k]) {
                made(out, r, lang)?;
            }
        }
    }
    if let Some(c) = &client {
        write!(out, "{}", c.stdout)?;
    }
    Ok(Ended::Done)
}

/// One stop, as the reader sees it: who is about to make which call, its C line, the
/// kernel's state, and the keys.
pub fn screen(stop: &Stop, lang: Lang, state: &str) -> String {
    let who = who_name(&stop.who, lang);
    let mut s = String::new();
    s.push_str(&match lang {
        Lang::En => format!("\n▶ {who} is about to call {}()\n", stop.call),
        Lang::Ko => format!("\n▶ {who}가 곧 호출합니다: {}()\n", stop.call),
    });
    s.push_str(&format!("    C: {}\n", stop.src));
    s.push_str(state);
    s.push_str(&say(
        lang,
        "  [Enter] make the call   [q] quit > ",
        "  [Enter] 호출 실행   [q] 끝내기 > ",
    ));
    s
}

/// `server` or `client` in `lang`.
fn who_name(who: &str, lang: Lang) -> &str {
    match (lang, who) {
        (Lang::Ko, "server") => "서버",
        (Lang::Ko, "client") => "클라이언트",
        (_, w) => w,
    }
}

/// One call just made, from its record: `  server ✓ accept(3) = 4, peer …`.
fn made(out: &mut impl Write, r: &hello_proto::trace::record::Record, lang: Lang) -> std::io::Result<()> {
    writeln!(out, "  {:<6} ✓ {}", who_name(&r.who, lang), r.c)
}

/// The sockets of the exchange in the kernel now: each TCP socket's state and queues
/// (`sock_diag`), or why there is nothing to show.
fn state(port: Option<u16>, udp: bool, lang: Lang) -> String {
    let head = say(lang, "    kernel:", "    커널:");
    let Some(port) = port else {
        return format!(
            "{head} {}\n",
            say(
                lang,
                "the server has not said its port yet (its start-up line, after getsockname())",
                "서버가 아직 포트를 알리지 않았습니다(getsockname() 뒤의 시작 줄)"
            )
        );
    };
    if udp {
        return format!(
            "{head} {}\n",
            say(
                lang,
                "UDP has no connection: no state and no accept queue to show (a datagram waits in the socket's receive queue)",
                "UDP에는 연결이 없습니다: 보여 줄 연결 상태도 연결요청 대기 큐도 없습니다(데이터그램은 소켓의 수신 버퍼에서 기다립니다)"
            )
        );
    }
    let at = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match sockdiag::tcp_sockets(&[port]) {
        Ok((sockets, _)) => {
            let ours: Vec<TcpSocket> = sockets
                .into_iter()
                .filter(|s| s.local == at || s.peer == at)
                .collect();
            if ours.is_empty() {
                return format!(
                    "{head} {}\n",
                    say(
                        lang,
                        "no TCP socket on this port",
                        "이 포트에 TCP 소켓이 없습니다"
                    )
                );
            }
            let mut s = format!("{head}\n");
            for t in &ours {
                s.push_str(&format!("      {}\n", socket_line(t, at, lang)));
            }
            s
        }
        Err(e) => format!("{head} {e}\n"),
    }
}

/// One socket's line: `LISTEN 127.0.0.1:5000  accept queue 1 (backlog 5)`.
pub fn socket_line(t: &TcpSocket, server: SocketAddr, lang: Lang) -> String {
    let side = if t.local == server || t.state == TcpState::Listen {
        say(lang, "server", "서버")
    } else {
        say(lang, "client", "클라이언트")
    };
    let state = t.state.name();
    if t.state == TcpState::Listen {
        return match lang {
            Lang::En => format!(
                "{side:<6} LISTEN      {}  accept queue: {} waiting (backlog {})",
                t.local, t.rqueue, t.wqueue
            ),
            Lang::Ko => format!(
                "{side:<6} LISTEN      {}  연결요청 대기 큐: {}개 대기 중 (backlog {})",
                t.local, t.rqueue, t.wqueue
            ),
        };
    }
    match lang {
        Lang::En => format!(
            "{side:<6} {state:<11} {} → {}  unread {} B, unacknowledged {} B",
            t.local, t.peer, t.rqueue, t.wqueue
        ),
        Lang::Ko => format!(
            "{side:<6} {state:<11} {} → {}  읽지 않은 {}바이트, 확인 응답 대기 {}바이트",
            t.local, t.peer, t.rqueue, t.wqueue
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_shown_is_the_one_a_reader_types() {
        let mut args = traced(Lang::En);
        args.extend(["127.0.0.1", "9190"].map(String::from));
        assert_eq!(
            typed("hello-client", &args),
            "hello-client --textbook --trace 127.0.0.1 9190"
        );
        let ko = typed("hello-server", &traced(Lang::Ko));
        assert_eq!(ko, "hello-server --textbook --trace --lang ko");
    }

    #[test]
    fn a_listening_socket_shows_its_accept_queue() {
        let at: SocketAddr = "127.0.0.1:9190".parse().unwrap();
        let listening = TcpSocket {
            state: TcpState::Listen,
            local: at,
            peer: "0.0.0.0:0".parse().unwrap(),
            rqueue: 1,
            wqueue: 5,
            inode: 7,
        };
        assert!(socket_line(&listening, at, Lang::En).ends_with("accept queue: 1 waiting (backlog 5)"));
        assert!(socket_line(&listening, at, Lang::Ko).contains("연결요청 대기 큐: 1개 대기 중"));
        let client = TcpSocket {
            state: TcpState::FinWait2,
            local: "127.0.0.1:40000".parse().unwrap(),
            peer: at,
            rqueue: 0,
            wqueue: 0,
            inode: 8,
        };
        let line = socket_line(&client, at, Lang::En);
        assert!(line.starts_with("client FIN_WAIT2"), "{line}");
    }
}
