//! What each scenario ends with: one or two questions to answer before running the
//! experiment that answers them (predict, then run): a variation of what the scenario
//! showed, the commands to type (the programs on `PATH`, port 9190; `nc` and `ss` where
//! a silent client or the kernel's view is needed; each wait a loop on what `ss` shows,
//! not a guess at a time), and what to look at in the output.
//! The answers are not printed: the experiment gives them. `tests/tests/demo.rs` runs
//! every experiment and checks its output against [`Question::answered`].
//!
//! Pure: data and text.

use hello_proto::trace::Lang;

use crate::scenario::Scenario;

/// One predict-then-run question.
pub struct Question {
    /// The question, in English and Korean.
    pub ask: (&'static str, &'static str),
    /// The experiment: bash lines to type, in order.
    pub run: &'static [&'static str],
    /// What to look at in its output, in English and Korean.
    pub look: (&'static str, &'static str),
    /// Whether the experiment's output (stdout and stderr together) gives the answer
    /// the scenario teaches: for the tests, never shown.
    pub answered: fn(&str) -> bool,
    /// Tools the experiment needs besides the programs and bash.
    pub needs: &'static [&'static str],
}

/// The number after `label` in `out` (`waited 1803 ms` → 1803).
pub fn number_after(out: &str, label: &str) -> Option<u64> {
    let at = out.find(label)? + label.len();
    out[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// The queue of the listening socket as `ss -ltn 'sport = :PORT'` shows it (its Recv-Q).
fn listen_queue(out: &str) -> Option<u64> {
    out.lines()
        .find(|l| l.starts_with("LISTEN"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// The questions of scenario `name` (none for a name that is not one).
pub fn questions(scenario: Scenario) -> &'static [Question] {
    match scenario {
        Scenario::Hello => &[Question {
            ask: (
                "Nothing listens on port 9. What will the client's connect() return, and how soon?",
                "포트 9에서는 아무도 듣고 있지 않습니다. 클라이언트의 connect()는 무엇을, 얼마나 빨리 반환할까요?",
            ),
            run: &["hello-client --trace 127.0.0.1 9; echo \"exit $?\""],
            look: (
                "the connect() line (its result and its +µs) and the exit code",
                "connect() 줄(결과와 +µs)과 종료 코드",
            ),
            answered: |out| out.contains("ECONNREFUSED") && out.contains("exit 1"),
            needs: &[],
        }],
        Scenario::Backlog => &[Question {
            ask: (
                "The busy server listens with --backlog 3 and six silent clients come. How many connections will wait in its accept queue, and what happens to the rest?",
                "바쁜 서버가 --backlog 3으로 듣고 있고 조용한 클라이언트 여섯이 옵니다. 연결요청 대기 큐에는 몇 개가 기다리고, 나머지는 어떻게 될까요?",
            ),
            run: &[
                "hello-server --model iterative --service echo --backlog 3 --idle-timeout 20s --bind 127.0.0.1 9190 &",
                "until ss -Hltn 'sport = :9190' | grep -q .; do sleep 0.1; done",
                "for i in 1 2 3 4 5 6; do nc -d 127.0.0.1 9190 > /dev/null & done",
                "until [ \"$(ss -Htn state established 'dport = :9190' | wc -l)\" -ge 5 ]; do sleep 0.1; done",
                "ss -ltn 'sport = :9190'; ss -tn state syn-sent 'dport = :9190'",
                "kill $(jobs -p)",
            ],
            look: (
                "the listening socket's Recv-Q (connections waiting; Send-Q is the backlog) and the clients still in SYN-SENT",
                "서버 소켓의 Recv-Q(기다리는 연결; Send-Q는 backlog)와 아직 SYN-SENT인 클라이언트",
            ),
            answered: |out| listen_queue(out) == Some(4),
            needs: &["nc", "ss"],
        }],
        Scenario::Iterative => &[Question {
            ask: (
                "Client 1 keeps the iterative server for three seconds before it sends. How long will client 2 wait for its reply?",
                "클라이언트 1이 반복 서버를 3초 동안 붙잡은 뒤에 보냅니다. 클라이언트 2는 응답을 얼마나 기다릴까요?",
            ),
            run: &[
                "hello-server --model iterative --service echo --bind 127.0.0.1 9190 &",
                "until ss -Hltn 'sport = :9190' | grep -q .; do sleep 0.1; done",
                "(sleep 3; printf 'first\\n') | nc -N 127.0.0.1 9190 > /dev/null &",
                "until ss -Htn state established 'dport = :9190' | grep -q .; do sleep 0.1; done",
                "start=$(date +%s%N); hello-client -m second 127.0.0.1 9190; echo \"waited $(( ($(date +%s%N) - start) / 1000000 )) ms\"",
                "kill %1",
            ],
            look: ("the reply, and how long it took", "응답과 걸린 시간"),
            answered: |out| number_after(out, "waited ").is_some_and(|ms| ms >= 1000),
            needs: &["nc"],
        }],
        Scenario::Models => &[Question {
            ask: (
                "The same two clients against --model threads: how long will client 2 wait now?",
                "같은 두 클라이언트를 --model threads에: 이번에는 클라이언트 2가 얼마나 기다릴까요?",
            ),
            run: &[
                "hello-server --model threads --service echo --bind 127.0.0.1 9190 &",
                "until ss -Hltn 'sport = :9190' | grep -q .; do sleep 0.1; done",
                "(sleep 3; printf 'first\\n') | nc -N 127.0.0.1 9190 > /dev/null &",
                "until ss -Htn state established 'dport = :9190' | grep -q .; do sleep 0.1; done",
                "start=$(date +%s%N); hello-client -m second 127.0.0.1 9190; echo \"waited $(( ($(date +%s%N) - start) / 1000000 )) ms\"",
                "kill %1",
            ],
            look: ("how long the reply took", "응답까지 걸린 시간"),
            answered: |out| number_after(out, "waited ").is_some_and(|ms| ms < 2000),
            needs: &["nc"],
        }],
        Scenario::Boundaries => &[Question {
            ask: (
                "One write() of 100,000 bytes: in how many read()s will the echo server take it?",
                "write() 한 번에 보낸 100,000바이트를 에코 서버는 read() 몇 번에 받을까요?",
            ),
            run: &[
                "hello-server --trace --model iterative --once --service echo --max-request 200000 --bind 127.0.0.1 9190 2> trace.txt &",
                "until ss -Hltn 'sport = :9190' | grep -q .; do sleep 0.1; done",
                "head -c 100000 /dev/zero | tr '\\0' a | nc -N 127.0.0.1 9190 | wc -c",
                "wait; echo \"reads: $(grep -c ' read(' trace.txt)\"",
            ],
            look: (
                "the count of the server's read() calls (and trace.txt for their sizes)",
                "서버의 read() 횟수(크기는 trace.txt에서)",
            ),
            answered: |out| number_after(out, "reads: ").is_some_and(|n| n >= 2),
            needs: &["nc"],
        }],
        Scenario::Udp => &[Question {
            ask: (
                "A connected UDP client sends before its server has started. Will the datagram wait for the server?",
                "connected UDP 클라이언트가 서버가 시작하기 전에 보냅니다. 데이터그램은 서버를 기다려 줄까요?",
            ),
            run: &[
                "hello-client --udp --trace -m hi --timeout 2s 127.0.0.1 9190; echo \"exit $?\"",
                "hello-server --udp --bind 127.0.0.1 9190 & sleep 0.3; kill %1",
            ],
            look: (
                "the client's recvfrom() line, how soon it came, and the exit code",
                "클라이언트의 recvfrom() 줄, 얼마나 빨리 왔는지, 종료 코드",
            ),
            answered: |out| out.contains("ECONNREFUSED") && out.contains("exit 1"),
            needs: &[],
        }],
    }
}

/// The questions of `scenario` as the lines a reader sees, in `lang`.
pub fn lines(scenario: Scenario, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    for (k, q) in questions(scenario).iter().enumerate() {
        let (ask, look) = match lang {
            Lang::En => (q.ask.0, q.look.0),
            Lang::Ko => (q.ask.1, q.look.1),
        };
        out.push(format!("{}. {ask}", k + 1));
        out.push(match lang {
            Lang::En => "   Write down your answer, then run:".to_string(),
            Lang::Ko => "   답을 적어 두고 실행해 보세요:".to_string(),
        });
        for line in q.run {
            out.push(format!("     $ {line}"));
        }
        out.push(match lang {
            Lang::En => format!("   Look at: {look}."),
            Lang::Ko => format!("   볼 곳: {look}."),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_asks_and_says_how_to_find_out() {
        for &name in Scenario::all() {
            let qs = questions(name);
            assert!((1..=2).contains(&qs.len()), "{name}");
            for q in qs {
                assert!(q.ask.0.ends_with('?') && q.ask.1.ends_with('?'), "{}", q.ask.0);
                assert!(!q.run.is_empty());
            }
            let ko = lines(name, Lang::Ko).join("\n");
            assert!(ko.contains("답을 적어 두고") && ko.contains("$ "), "{ko}");
        }
        assert_eq!(number_after("waited 1803 ms", "waited "), Some(1803));
        assert_eq!(
            listen_queue("State Recv-Q Send-Q\nLISTEN 4      3      127.0.0.1:9190 0.0.0.0:*"),
            Some(4)
        );
    }
}
