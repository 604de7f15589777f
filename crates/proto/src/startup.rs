//! The start-up lines a server prints once it is bound, with the real port: `listening
//! on ADDR` (the service), `agent on ADDR` (`--agent-port`), `metrics on ADDR`
//! (`--metrics`). Written here by `hello-server` (and `--textbook`, on stderr), read back
//! here by everything that starts one (`hello-harness`: the tests, xtask, the lesson) —
//! one format, one parser. The textbook C peers in `tests/c/` print the first the same
//! way. Pure.

use std::fmt;
use std::net::SocketAddr;

/// One start-up line, without its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `listening on ADDR`: the service's socket, bound.
    Listening(SocketAddr),
    /// `agent on ADDR`: the HAProxy agent check's socket.
    Agent(SocketAddr),
    /// `metrics on ADDR`: the Prometheus exporter's socket.
    Metrics(SocketAddr),
}

/// The words before the address, for each kind of line.
const LISTENING: &str = "listening on ";
const AGENT: &str = "agent on ";
const METRICS: &str = "metrics on ";

impl Line {
    /// The line `text` (a trailing newline or carriage return allowed), or `None` when it
    /// is not a start-up line or its address does not parse.
    pub fn parse(text: &str) -> Option<Line> {
        let text = text.trim_end_matches(['\n', '\r']);
        let line = if let Some(addr) = text.strip_prefix(LISTENING) {
            Line::Listening(addr.parse().ok()?)
        } else if let Some(addr) = text.strip_prefix(AGENT) {
            Line::Agent(addr.parse().ok()?)
        } else {
            Line::Metrics(text.strip_prefix(METRICS)?.parse().ok()?)
        };
        Some(line)
    }

    /// The address it gives.
    pub fn addr(self) -> SocketAddr {
        match self {
            Line::Listening(a) | Line::Agent(a) | Line::Metrics(a) => a,
        }
    }

    /// The service's address, if this is the `listening on ADDR` line.
    pub fn listening(self) -> Option<SocketAddr> {
        match self {
            Line::Listening(a) => Some(a),
            Line::Agent(_) | Line::Metrics(_) => None,
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Listening(a) => write!(f, "{LISTENING}{a}"),
            Line::Agent(a) => write!(f, "{AGENT}{a}"),
            Line::Metrics(a) => write!(f, "{METRICS}{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_reads_back_as_it_was_written() {
        for addr in ["127.0.0.1:40123", "0.0.0.0:9190", "[::1]:9190", "[::]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            for line in [Line::Listening(addr), Line::Agent(addr), Line::Metrics(addr)] {
                assert_eq!(Line::parse(&format!("{line}\n")), Some(line));
                assert_eq!(line.addr(), addr);
            }
        }
        assert_eq!(
            Line::Listening("127.0.0.1:1".parse().unwrap()).to_string(),
            "listening on 127.0.0.1:1"
        );
    }

    #[test]
    fn other_lines_are_not_start_up_lines() {
        for text in [
            "",
            "bind() error",
            "listening on 127.0.0.1:x",
            "listening on 127.0.0.1",
            "listening on  127.0.0.1:1",
            "Listening on 127.0.0.1:1",
            "agent listening on 127.0.0.1:1",
        ] {
            assert_eq!(Line::parse(text), None, "{text:?}");
        }
        let agent = Line::parse("agent on 127.0.0.1:7").unwrap();
        assert_eq!(agent.listening(), None);
        assert_eq!(
            Line::parse("listening on [::1]:7\r\n").and_then(Line::listening),
            Some("[::1]:7".parse().unwrap())
        );
    }
}
