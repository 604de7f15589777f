//! The referee of the demo's captured packets: `cargo xtask demo SCENARIO --pcap DIR` for
//! the hello scenario (TCP and UDP, hello and echo) and the udp one (a datagram to a closed
//! port and its ICMP), then each pcap file read back by tcpdump (`tcpdump -r -nn -tt`): the
//! captured arrows the demo's timeline draws for each exchange must be the packets tcpdump
//! reads — as many, in the same order, same direction, same TCP flags, same lengths, same
//! times. Skips loudly without tcpdump, or where the demo may not capture. Also: the demo
//! run as `nobody` (a user namespace of its own), and the socket states it samples.

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hello_lesson::scenario::{self, Programs};
use hello_proto::kernel::TcpState;
use hello_proto::sys::sockdiag;
use hello_proto::trace::Lang;
use hello_tests::{bins, workspace_root};

/// One packet as a timeline's arrow or a tcpdump line says it: µs since the exchange's
/// first packet, whether it went to the server, what (`TCP [S.]`, `UDP`, `ICMP
/// unreachable`), length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    t_us: u64,
    up: bool,
    what: String,
    len: u64,
}

/// The number after the last `:` of `end` (`127.0.0.1.40000:` ends in a `.` and a `:`).
fn port_of(end: &str) -> u16 {
    end.rsplit('.')
        .next()
        .unwrap()
        .trim_end_matches(':')
        .parse()
        .unwrap_or(0)
}

/// The captured arrows of one exchange's timeline
/// (`   12.065 ms  ┄┄ SYN: TCP [S] length 0 (captured) ┄┄▶│`).
fn from_timeline(lines: &[&str]) -> Vec<Seen> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut first = None;
    for l in lines {
        let (when, rest) = l.trim_start().split_once(" ms  ").expect("a time");
        let (ms, us) = when.split_once('.').unwrap();
        let t = ms.parse::<u64>().unwrap() * 1000 + us.parse::<u64>().unwrap();
        let first = *first.get_or_insert(t);
        let up = rest.contains("▶│");
        assert!(up || rest.contains("│◀"), "an arrow: {l}");
        let len = rest
            .split_once("length ")
            .expect("a length")
            .1
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let what = if let Some((_, flags)) = rest.split_once("TCP [") {
            format!("TCP [{}]", flags.split_once(']').unwrap().0)
        } else if rest.contains(": UDP length") {
            "UDP".into()
        } else if rest.contains("ICMP port unreachable") {
            "ICMP unreachable".into()
        } else {
            panic!("unexpected arrow: {l}");
        };
        seen.push(Seen {
            t_us: t - first,
            up,
            what,
            len,
        });
    }
    seen
}

/// tcpdump's lines (`1700000000.123456 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [S], …, length 0`).
fn from_tcpdump(out: &str) -> Vec<Seen> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut first = None;
    // The server's port (or the closed one): where the first packet went.
    let mut server = None;
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        let (time, rest) = l.split_once(' ').unwrap();
        let (s, us) = time.split_once('.').unwrap();
        let t = s.parse::<u64>().unwrap() * 1_000_000 + us.parse::<u64>().unwrap();
        let first = *first.get_or_insert(t);
        let rest = rest
            .strip_prefix("IP ")
            .or_else(|| rest.strip_prefix("IP6 "))
            .expect(l);
        let (ends, what) = rest.split_once(": ").unwrap();
        let (_, b) = ends.split_once(" > ").unwrap();
        let len = what.rsplit(' ').next().unwrap().parse().unwrap();
        let (up, what) = if let Some(flags) = what.strip_prefix("Flags [") {
            let f = flags.split_once(']').unwrap().0;
            (
                port_of(b) == *server.get_or_insert(port_of(b)),
                format!("TCP [{f}]"),
            )
        } else if what.starts_with("UDP") {
            (port_of(b) == *server.get_or_insert(port_of(b)), "UDP".into())
        } else if what.starts_with("ICMP") && what.contains("unreachable") {
            (false, "ICMP unreachable".into())
        } else {
            panic!("unexpected tcpdump line: {l}");
        };
        seen.push(Seen {
            t_us: t - first,
            up,
            what,
            len,
        });
    }
    seen
}

/// `$CARGO ARGS` in the workspace, its output.
fn cargo(args: &[&str]) -> std::process::Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .current_dir(workspace_root())
        .args(args)
        .output()
        .expect("run cargo")
}

/// `cargo xtask demo SCENARIO --pcap DIR`: its stdout, or why it cannot referee.
fn demo(scenario: &str, dir: &Path) -> Result<String, String> {
    bins();
    let _ = std::fs::remove_dir_all(dir);
    let dir = dir.to_string_lossy();
    let out = cargo(&[
        "run", "--quiet", "-p", "xtask", "--", "demo", scenario, "--pcap", &dir,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo xtask demo {scenario} failed:\n{stdout}{stderr}"
    );
    if let Some(line) = stderr.lines().find(|l| l.contains("runs without packets")) {
        return Err(line.to_string());
    }
    Ok(stdout)
}

/// One exchange of the demo's output: its captured arrows, and the ends its socket
/// states show in TIME_WAIT (`server` or `client`).
struct Exchange<'a> {
    arrows: Vec<&'a str>,
    time_wait: Vec<&'a str>,
}

/// Each exchange of the demo's output, in order.
fn sections(stdout: &str) -> Vec<Exchange<'_>> {
    let mut all: Vec<Exchange<'_>> = Vec::new();
    for l in stdout.lines() {
        if l.starts_with("=== ") {
            all.push(Exchange {
                arrows: Vec::new(),
                time_wait: Vec::new(),
            });
        } else if let Some(e) = all.last_mut() {
            if l.contains("(captured)") && (l.contains("▶│") || l.contains("│◀")) {
                e.arrows.push(l);
            } else if let Some((_, state)) = l.split_once("◆ ") {
                if state.contains(" TIME_WAIT") {
                    e.time_wait.push(state.split('\'').next().unwrap());
                }
            }
        }
    }
    all
}

/// Each exchange's captured arrows, in order, with the pcap file the demo wrote for it.
fn exchanges(stdout: &str) -> Vec<(Vec<&str>, PathBuf)> {
    let files: Vec<PathBuf> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pcap files: "))
        .expect("the demo names its pcap files")
        .split(", ")
        .map(PathBuf::from)
        .collect();
    let drawn: Vec<Vec<&str>> = sections(stdout)
        .into_iter()
        .map(|e| e.arrows)
        .filter(|a| !a.is_empty())
        .collect();
    assert_eq!(
        drawn.len(),
        files.len(),
        "one pcap file per exchange drawn with captured arrows"
    );
    drawn.into_iter().zip(files).collect()
}

/// For each TCP exchange, in order, the ends its states show in TIME_WAIT after it.
fn time_waits(stdout: &str) -> Vec<Vec<&str>> {
    sections(stdout)
        .into_iter()
        .filter(|e| e.arrows.iter().any(|a| a.contains("TCP [")))
        .map(|e| e.time_wait)
        .collect()
}

fn tcpdump(file: &Path) -> String {
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(file)
        .args(["-nn", "-tt"])
        .output()
        .expect("run tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the kernel's TIME_WAIT table is full (other work's connections), so that a
/// connection closed now skips TIME_WAIT: then `test` skips loudly what it checks of it.
fn time_wait_table_full(test: &str) -> bool {
    let Some((held, max)) = sockdiag::time_wait_table_full() else {
        return false;
    };
    eprintln!(
        "SKIP: {test}: the kernel's TIME_WAIT table is full ({held} of tcp_max_tw_buckets \
         {max}): it keeps no new TIME_WAIT socket now"
    );
    true
}

fn has_tcpdump() -> bool {
    Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Each exchange's name and packets, and the demo's whole stdout.
type Refereed = (Vec<(String, Vec<Seen>)>, String);

/// Runs `scenario` and checks every exchange against tcpdump; returns the packets both
/// agree on and the demo's output, or `None` after a loud skip.
fn refereed(test: &str, scenario: &str) -> Option<Refereed> {
    if !has_tcpdump() {
        eprintln!("SKIP: {test}: tcpdump is not installed");
        return None;
    }
    let dir = bins()
        .server
        .parent()
        .unwrap()
        .join(format!("capture-test-{scenario}"));
    let stdout = match demo(scenario, &dir) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIP: {test}: the demo may not capture here: {why}");
            return None;
        }
    };
    let mut all = Vec::new();
    for (arrows, file) in exchanges(&stdout) {
        let ours = from_timeline(&arrows);
        let theirs = from_tcpdump(&tcpdump(&file));
        assert!(!ours.is_empty(), "{}: no packet drawn", file.display());
        assert_eq!(
            ours,
            theirs,
            "{}: the timeline and tcpdump differ",
            file.display()
        );
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        all.push((name, ours));
    }
    Some((all, stdout))
}

#[test]
fn the_hello_exchanges_list_the_packets_tcpdump_reads() {
    let Some((all, stdout)) = refereed("the_hello_exchanges_list_the_packets_tcpdump_reads", "hello") else {
        return;
    };
    // The side whose FIN went first is left in TIME_WAIT: for hello the server
    // (its FIN rides with the greeting); for echo usually the client (its
    // shutdown(SHUT_WR)), but the server answers at the NUL and may close first.
    let waits = time_waits(&stdout);
    assert_eq!(waits.len(), 2, "two TCP exchanges: {waits:?}");
    if time_wait_table_full("the_hello_exchanges_list_the_packets_tcpdump_reads (its TIME_WAIT part)") {
        return;
    }
    for (k, waiting) in waits.iter().enumerate() {
        let packets = &all[k].1;
        let first_fin = packets
            .iter()
            .find(|s| s.what.starts_with("TCP [F"))
            .expect("a FIN");
        let closed_first = if first_fin.up { "client" } else { "server" };
        // (Both, when the two FINs cross: a simultaneous close.)
        assert!(
            waiting.contains(&closed_first) && waiting.len() <= 2,
            "{}: {waiting:?} in TIME_WAIT, {packets:?}",
            all[k].0
        );
    }
    assert_eq!(waits[0], ["server"]);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "hello-1-tcp-hello",
            "hello-2-tcp-echo",
            "hello-3-udp-hello",
            "hello-4-udp-echo"
        ]
    );
    // Where every packet was captured, no arrow is inferred; the handshake is drawn
    // after the client's connect() began and before the server's accept() returned.
    let timelines = stdout.split_once("\n=== ").unwrap().1;
    assert!(!timelines.contains("(inferred)"), "{stdout}");
    let first: Vec<&str> = stdout.split("=== 2/4").next().unwrap().lines().collect();
    let at = |s: &str| {
        first
            .iter()
            .position(|l| l.contains(s))
            .unwrap_or_else(|| panic!("no {s}"))
    };
    assert!(at("● connect(") < at("SYN: TCP [S]"));
    assert!(at("ACK: TCP [.] length 0 (captured)") < at("● accept("));
    assert!(at("data + FIN: TCP [F") < at("● read(3) = 13"));
    let hello = &all[0].1;
    // The handshake, then the greeting and the FIN in one segment: 13 bytes, FIN set
    // (MSG_MORE held the greeting until close() added the FIN), from the server.
    let kinds: Vec<&str> = hello.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(&kinds[..3], ["TCP [S]", "TCP [S.]", "TCP [.]"]);
    let data: Vec<&Seen> = hello.iter().filter(|s| s.len > 0).collect();
    assert_eq!(data.len(), 1, "the greeting travels in one segment: {hello:?}");
    assert_eq!((data[0].up, data[0].len), (false, 13), "from the server");
    assert!(
        data[0].what.starts_with("TCP [F"),
        "the FIN rides with the greeting: {:?}",
        data[0]
    );
    // UDP: one datagram each way, the empty request and the 13-byte reply; the echo's 6 and 10.
    let lens = |k: usize| {
        all[k]
            .1
            .iter()
            .map(|s| (s.what.clone(), s.len))
            .collect::<Vec<_>>()
    };
    assert_eq!(lens(2), [("UDP".into(), 0), ("UDP".into(), 13)]);
    assert_eq!(lens(3), [("UDP".into(), 6), ("UDP".into(), 10)]);
}

#[test]
fn the_udp_exchanges_list_the_datagrams_and_the_icmp_tcpdump_reads() {
    let Some((all, _)) = refereed(
        "the_udp_exchanges_list_the_datagrams_and_the_icmp_tcpdump_reads",
        "udp",
    ) else {
        return;
    };
    let closed = &all.iter().find(|(n, _)| n == "udp-3-closed-port").unwrap().1;
    // Each client's datagram is answered by an ICMP port unreachable.
    let kinds: Vec<&str> = closed.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(kinds, ["UDP", "ICMP unreachable", "UDP", "ICMP unreachable"]);
}

/// Where the kernel lets an unprivileged user make user namespaces, the demo captures
/// without root: run as `nobody` (this test needs root to become `nobody`, and setpriv),
/// it enters a private user and network namespace and lists the packets it captured
/// there; where the kernel does not, it says so in one line and runs on without them.
#[test]
fn without_root_the_demo_captures_in_a_user_namespace_or_says_why_not() {
    let test = "without_root_the_demo_captures_in_a_user_namespace_or_says_why_not";
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: {test}: not root, so cannot become nobody to try");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: {test}: no setpriv");
        return;
    }
    // The programs and xtask as built, which `nobody` runs as they are (CARGO=/bin/true:
    // nobody may not write the target folder, so the demo's build step must do nothing,
    // and the demo then takes the programs from the debug folder, where bins() built them).
    let dir = bins().server.parent().unwrap().to_path_buf();
    if !dir.ends_with("debug") {
        eprintln!("SKIP: {test}: the programs are not a debug build");
        return;
    }
    let built = cargo(&["build", "--quiet", "-p", "xtask"]);
    assert!(built.status.success(), "cargo build -p xtask failed: {built:?}");
    let pcaps = std::env::temp_dir().join(format!("hello-capture-nobody-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pcaps);
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "env",
            "CARGO=/bin/true",
        ])
        .arg(dir.join("xtask"))
        .args(["demo", "udp", "--pcap"])
        .arg(&pcaps)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the demo as nobody failed:\n{stdout}{stderr}"
    );
    if let Some(why) = stderr.lines().find(|l| l.contains("runs without packets")) {
        // One line, and the demo ran on: inferred arrows, no captured one.
        assert_eq!(stderr.matches("runs without packets").count(), 1, "{stderr}");
        let timelines = stdout.split_once("\n=== ").unwrap().1;
        assert!(
            !timelines.contains("(captured)") && timelines.contains("(inferred)"),
            "{stdout}"
        );
        eprintln!("SKIP: {test}: this kernel does not let nobody capture: {why}");
        return;
    }
    assert!(
        stderr.contains("capturing in a private user and network namespace"),
        "{stderr}"
    );
    // The namespace's own lo carried the exchanges: datagrams and the ICMP, in pcap files
    // tcpdump reads the same, where tcpdump is.
    assert!(stdout.contains("ICMP port unreachable"), "{stdout}");
    if has_tcpdump() {
        for (arrows, file) in exchanges(&stdout) {
            assert_eq!(
                from_timeline(&arrows),
                from_tcpdump(&tcpdump(&file)),
                "{}",
                file.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&pcaps);
}

/// The demo's socket states need no privilege: after the hello exchange the server,
/// which closed first (its FIN rode with the greeting), is left in TIME_WAIT; after the
/// echo exchange one side is (which one is a race: the referee above checks it against
/// the first FIN on the wire); and the listener was seen with its backlog as the server
/// came up.
#[test]
fn the_side_that_closed_first_is_left_in_time_wait_in_the_demo() {
    let programs = Programs {
        server: bins().server.clone(),
        client: bins().client.clone(),
    };
    let parts = scenario::run("hello", &programs, Lang::En).expect("the hello scenario");
    if time_wait_table_full("the_side_that_closed_first_is_left_in_time_wait_in_the_demo") {
        return;
    }
    for (k, closed_first) in [(0, Some("server")), (1, None)] {
        let observed = parts[k].observed.as_ref().expect("observed");
        assert!(!observed.captured, "scenario::run captures nothing");
        let listener = observed.listening().expect("the listener, sampled");
        assert_eq!(listener.state, TcpState::Listen);
        assert!(listener.wqueue > 0, "its backlog: {listener:?}");
        let left: Vec<_> = observed
            .after()
            .iter()
            .filter(|s| s.state != TcpState::Listen)
            .collect();
        assert_eq!(left.len(), 1, "{}: {left:?}", parts[k].slug);
        let at_server = left[0].local.port() == observed.port;
        assert_eq!(left[0].state, TcpState::TimeWait, "{}: {left:?}", parts[k].slug);
        if let Some(side) = closed_first {
            assert_eq!(
                if at_server { "server" } else { "client" },
                side,
                "{}: {left:?}",
                parts[k].slug
            );
        }
    }
    // UDP exchanges have no TCP sockets to show.
    assert!(
        parts[2]
            .observed
            .as_ref()
            .is_some_and(|o| o.after().is_empty() && o.listening().is_none())
    );
}
