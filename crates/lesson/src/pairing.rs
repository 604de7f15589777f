//! The textbook's program beside the real one (`cargo xtask demo --textbook`): first the
//! textbook programs' calls, numbered, each with the C line that makes it; then the same
//! exchange made the real way, each program's calls in its order, a call the textbook
//! also makes under its number (`[6] write → send(…)` where the real program makes it
//! another way), and each call real software adds marked `+` with what it buys (its
//! explanation).
//!
//! Pure: records and a timeline in, text out.

use std::fmt::Write as _;

use hello_proto::trace::Lang;
use hello_proto::trace::record::Record;

use crate::text::wrap;
use crate::timeline::{Side, Timeline};

/// Columns for an explanation under its call.
const COLUMNS: usize = 76;

/// The name two ways of making one step share: `write()` and `send()` both send,
/// `read()` and `recv()` both receive, `accept4()` accepts, and the UDP server's batches
/// (`recvmmsg()`, `sendmmsg()`) receive and send datagrams as `recvfrom()` and `sendto()` do.
fn family(call: &str) -> &str {
    match call {
        "send" | "sendmsg" => "write",
        "recv" | "recvmsg" => "read",
        "accept4" => "accept",
        "recvmmsg" => "recvfrom",
        "sendmmsg" => "sendto",
        other => other,
    }
}

fn side_of(who: &str) -> Side {
    if who.starts_with("client") {
        Side::Client
    } else {
        Side::Server
    }
}

fn who_word(side: Side, lang: Lang) -> &'static str {
    match (side, lang) {
        (Side::Client, Lang::En) => "client",
        (Side::Server, Lang::En) => "server",
        (Side::Client, Lang::Ko) => "클라이언트",
        (Side::Server, Lang::Ko) => "서버",
    }
}

/// For each real call of one side (in order), the number of the textbook call it makes
/// too, if any: each textbook call of that side, in order, pairs with the first real call
/// after the last paired one that makes the same step.
pub fn pair(textbook: &[(usize, &Record)], real: &[&Record]) -> Vec<Option<usize>> {
    let mut paired = vec![None; real.len()];
    let mut from = 0;
    for &(n, t) in textbook {
        if t.mark != "textbook" {
            continue;
        }
        if let Some(j) = (from..real.len()).find(|&j| family(&real[j].call) == family(&t.call)) {
            paired[j] = Some(n);
            from = j + 1;
        }
    }
    paired
}

/// The textbook's calls, numbered, then the real exchange's calls paired with them.
pub fn render(records: &[Record], real: &Timeline, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}",
        if ko {
            "교재의 프로그램이 하는 호출 (번호, C 코드 줄, 실제 결과):"
        } else {
            "The textbook's programs, call by call (number, C line, what it returned):"
        }
    );
    let numbered: Vec<(usize, &Record)> = records.iter().enumerate().map(|(i, r)| (i + 1, r)).collect();
    for &(n, r) in &numbered {
        let side = side_of(&r.who);
        let src = r.src.as_deref().unwrap_or("");
        let _ = writeln!(s, "  [{n:>2}] {:<6} {src}", who_word(side, lang));
        let _ = writeln!(s, "              → {}", r.c);
        if r.mark != "textbook" {
            // getsockname(): the one call --textbook adds, to say the port it got.
            for line in wrap(&r.text, COLUMNS) {
                let _ = writeln!(s, "                {line}");
            }
        }
    }
    let _ = writeln!(
        s,
        "\n{}",
        if ko {
            "같은 교환을 실제 프로그램으로 ([번호]: 교재의 그 호출, +: 실제 소프트웨어가 더한 호출과 그 이유):"
        } else {
            "The same exchange made the real way ([n]: the textbook's call n; +: a call real software adds, and what it buys):"
        }
    );
    for side in [Side::Server, Side::Client] {
        let tb: Vec<(usize, &Record)> = numbered
            .iter()
            .copied()
            .filter(|(_, r)| side_of(&r.who) == side)
            .collect();
        let real_calls: Vec<&Record> = real
            .rows
            .iter()
            .filter(|&&(l, _)| real.lanes[l].side == side)
            .map(|&(l, i)| &real.lanes[l].calls[i])
            .collect();
        let paired = pair(&tb, &real_calls);
        let _ = writeln!(s, "  {}", who_word(side, lang));
        let mut added = 0;
        for (r, n) in real_calls.iter().zip(&paired) {
            match n {
                Some(n) => {
                    let t = tb.iter().find(|(m, _)| m == n).map(|(_, t)| t);
                    let how = match t {
                        Some(t) if family(&t.call) == t.call && t.call != r.call => format!("{} → ", t.call),
                        _ => String::new(),
                    };
                    let _ = writeln!(s, "    [{n:>2}] {how}{}", r.c);
                }
                None => {
                    added += 1;
                    let _ = writeln!(s, "       + {}", r.c);
                    for line in wrap(&r.text, COLUMNS) {
                        let _ = writeln!(s, "           {line}");
                    }
                }
            }
        }
        let missing: Vec<String> = tb
            .iter()
            .filter(|(n, t)| t.mark == "textbook" && !paired.contains(&Some(*n)))
            .map(|(n, t)| format!("[{n}] {}()", t.call))
            .collect();
        let all_closes = tb
            .iter()
            .filter(|(n, t)| t.mark == "textbook" && !paired.contains(&Some(*n)))
            .all(|(_, t)| t.call == "close");
        let why = match (lang, all_closes) {
            (Lang::En, true) => " (the kernel closes what a program leaves open when it exits)",
            (Lang::Ko, true) => " (프로그램이 끝날 때 열어 둔 소켓은 커널이 닫습니다)",
            (_, false) => "",
        };
        let _ = writeln!(
            s,
            "    {}",
            match (lang, missing.is_empty()) {
                (Lang::En, true) => format!(
                    "{} added by real software",
                    hello_proto::words::counted(added, "call")
                ),
                (Lang::En, false) => format!(
                    "{} added by real software; not made: {}",
                    hello_proto::words::counted(added, "call"),
                    missing.join(", ") + why
                ),
                (Lang::Ko, true) => format!("실제 소프트웨어가 더한 호출 {added}개"),
                (Lang::Ko, false) => format!(
                    "실제 소프트웨어가 더한 호출 {added}개; 하지 않은 호출: {}",
                    missing.join(", ")
                ),
            }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::build;
    use crate::timeline::fixtures::one_exchange;
    use hello_proto::trace::Event;

    #[test]
    fn each_textbook_call_pairs_with_the_real_call_that_makes_its_step() {
        let real = build(one_exchange(Lang::En, b"hi\0")).unwrap();
        let find = |side: Side, call: &str| {
            let (l, i) = *real
                .rows
                .iter()
                .find(|&&(l, i)| real.lanes[l].side == side && real.lanes[l].calls[i].call == call)
                .unwrap();
            real.lanes[l].calls[i].clone()
        };
        let with_src = |mut r: Record, src: &str| {
            r.src = Some(src.to_string());
            r.mark = "textbook".into();
            r
        };
        let textbook = vec![
            with_src(
                find(Side::Client, "socket"),
                "sock = socket(PF_INET, SOCK_STREAM, 0);",
            ),
            with_src(find(Side::Server, "accept"), "clnt_sock = accept(serv_sock, …);"),
        ];
        let text = render(&textbook, &real, Lang::En);
        assert!(
            text.contains("[ 1] client sock = socket(PF_INET, SOCK_STREAM, 0);"),
            "{text}"
        );
        assert!(
            text.contains("[ 2] server clnt_sock = accept(serv_sock, …);"),
            "{text}"
        );
        // The real server's accept() is the textbook's [2], the client's socket() [1];
        // the real calls the textbook's program does not make are added, each with why.
        let real_part = &text[text.find("The same exchange").unwrap()..];
        let (server, client) = real_part.split_at(real_part.find("\n  client").unwrap());
        assert!(server.contains("[ 2] accept(3) = 4"), "{text}");
        assert!(
            server.contains("+ write(4, \"hi\\0\") = 3\n           send: "),
            "{text}"
        );
        assert!(server.contains("    1 call added by real software"), "{text}");
        assert!(client.contains("[ 1] socket("), "{text}");
        assert!(client.contains("+ connect("), "{text}");
        assert!(!real_part.contains("not made"), "{text}");
        let ko = render(&textbook, &real, Lang::Ko);
        assert!(ko.contains("실제 소프트웨어가 더한 호출 1개"), "{ko}");
    }

    #[test]
    fn write_pairs_with_send_and_a_call_not_made_is_named() {
        let write = Record {
            call: "write".into(),
            mark: "textbook".into(),
            ..Record::of("server", Lang::En, 0, 0, &Event::Close { fd: 4 })
        };
        let close = Record::of("server", Lang::En, 1, 0, &Event::Close { fd: 4 });
        let send = Record {
            call: "send".into(),
            ..close.clone()
        };
        let recv = Record {
            call: "recv".into(),
            ..close.clone()
        };
        let tb = [(1, &write), (2, &close), (3, &close)];
        assert_eq!(pair(&tb, &[&send, &recv, &close]), vec![Some(1), None, Some(2)]);
    }
}
