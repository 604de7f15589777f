//! What hello-client prints for each exchange: the textbook line, the `--json` object,
//! and the error line (docs/contract.md#what-the-client-prints).

use std::time::Duration;

use hello_proto::wire::display_reply;
use serde::Serialize;

use crate::{Report, attempts_note};

/// One exchange as `--json` prints it: one object per line.
#[derive(Debug, Serialize)]
pub struct Json<'a> {
    /// The target as typed.
    pub target: &'a str,
    /// The server address used (resolved), if any.
    pub address: Option<String>,
    /// This end's address and ephemeral port, once connected.
    pub local: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// Bytes of the request sent.
    pub sent: usize,
    /// Bytes of the reply received.
    pub received: usize,
    /// The reply as the textbook line shows it.
    pub reply: String,
    /// Whether the exchange succeeded (and matched `--expect`).
    pub ok: bool,
    /// Attempts made (more than 1 only with `--wait`).
    pub attempts: u32,
    /// From the first attempt's start to the start of the one that counted.
    pub waited_us: u64,
    /// From the start of the attempt to the connection.
    pub connect_us: Option<u64>,
    /// From the start of the attempt to the first byte of the reply.
    pub first_byte_us: Option<u64>,
    /// From the start of the attempt to its end.
    pub total_us: u64,
    /// On failure, the step that failed (`connect()`, `read()`, `--expect`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'static str>,
    /// On failure, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl<'a> Json<'a> {
    /// The object for `report` of the target typed as `target`.
    pub fn of(target: &'a str, udp: bool, report: &Report) -> Json<'a> {
        let failure = report.outcome.as_ref().err();
        Json {
            target,
            address: report.addr.map(|a| a.to_string()),
            local: report.local.map(|a| a.to_string()),
            protocol: if udp { "udp" } else { "tcp" },
            sent: report.sent,
            received: report.reply.len(),
            reply: display_reply(&report.reply),
            ok: failure.is_none(),
            attempts: report.attempts,
            waited_us: micros(report.waited),
            connect_us: report.connect.map(micros),
            first_byte_us: report.first_byte.map(micros),
            total_us: micros(report.total),
            step: failure.map(|f| f.step()),
            error: failure.map(|f| f.reason()),
        }
    }

    /// The object on one line, with its newline.
    pub fn line(&self) -> String {
        // Serializing plain strings, numbers and options cannot fail; an empty object
        // would still be one line of valid JSON.
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

/// The textbook line for a successful exchange; with several targets, after the target.
pub fn message_line(target: Option<&str>, report: &Report) -> String {
    let line = format!("Message from server: {}\n", display_reply(&report.reply));
    match target {
        Some(t) => format!("{t}: {line}"),
        None => line,
    }
}

/// The stderr line for a failed exchange, without the program's name: the error, after
/// the target when there are several, and the attempts when `--wait` gave up.
pub fn error_line(target: Option<&str>, report: &Report, wait: Option<Duration>) -> Option<String> {
    let failure = report.outcome.as_ref().err()?;
    let note = wait.map_or(String::new(), |w| attempts_note(report, w));
    Some(match target {
        Some(t) => format!("{t}: {failure}{note}\n"),
        None => format!("{failure}{note}\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Failure;
    use hello_proto::{Cause, Error, Step};

    fn report(ok: bool) -> Report {
        Report {
            addr: Some("127.0.0.1:9190".parse().unwrap()),
            local: ok.then(|| "127.0.0.1:40000".parse().unwrap()),
            sent: 0,
            reply: if ok {
                b"Hello World!\0".to_vec()
            } else {
                Vec::new()
            },
            attempts: 3,
            waited: Duration::from_millis(150),
            connect: ok.then_some(Duration::from_micros(80)),
            first_byte: ok.then_some(Duration::from_micros(120)),
            total: Duration::from_micros(130),
            outcome: if ok {
                Ok(())
            } else {
                Err(Failure::Step(Error::new(
                    Step::Connect,
                    "127.0.0.1:9190",
                    Cause::Os(std::io::Error::from_raw_os_error(111)),
                )))
            },
        }
    }

    #[test]
    fn the_json_object_has_every_field_and_the_failure_only_on_failure() {
        let v: serde_json::Value =
            serde_json::from_str(&Json::of("localhost:9190", false, &report(true)).line()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "target",
            "address",
            "local",
            "protocol",
            "sent",
            "received",
            "reply",
            "ok",
            "attempts",
            "waited_us",
            "connect_us",
            "first_byte_us",
            "total_us",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["target"], "localhost:9190");
        assert_eq!(v["local"], "127.0.0.1:40000");
        assert_eq!(v["reply"], "Hello World!");
        assert_eq!(
            (v["received"].as_u64(), v["attempts"].as_u64()),
            (Some(13), Some(3))
        );
        assert_eq!(
            (v["connect_us"].as_u64(), v["total_us"].as_u64()),
            (Some(80), Some(130))
        );
        assert_eq!(v["protocol"], "tcp");

        let v: serde_json::Value =
            serde_json::from_str(&Json::of("x:1", true, &report(false)).line()).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["step"], "connect()");
        assert_eq!(v["error"], "Connection refused (os error 111)");
        assert!(v["local"].is_null() && v["first_byte_us"].is_null());
        assert_eq!(v["protocol"], "udp");
    }

    #[test]
    fn lines_name_the_target_only_when_there_are_several() {
        assert_eq!(
            message_line(None, &report(true)),
            "Message from server: Hello World!\n"
        );
        assert_eq!(
            message_line(Some("a:1"), &report(true)),
            "a:1: Message from server: Hello World!\n"
        );
        assert_eq!(error_line(None, &report(true), None), None);
        assert_eq!(
            error_line(Some("a:1"), &report(false), Some(Duration::from_secs(2))).unwrap(),
            "a:1: connect() error: 127.0.0.1:9190: Connection refused (os error 111); 3 attempts in 2s\n"
        );
    }
}
