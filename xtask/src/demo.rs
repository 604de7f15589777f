//! `cargo xtask demo [--lang en|ko]`: builds both programs, then for each exchange (hello
//! and echo, over TCP and UDP) starts `hello-server --trace` on port 0, reads its start-up
//! line, runs `hello-client --trace` against it, stops the server with SIGTERM, and shows
//! both sides' socket calls merged in the order they happened. Anything off is an error.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail, ensure};

use crate::process::{build_dev, run_bounded, start_server};

struct Exchange {
    title_en: &'static str,
    title_ko: &'static str,
    server: &'static [&'static str],
    client: &'static [&'static str],
    expect: &'static str,
    /// A call that must appear in the server's trace.
    server_call: &'static str,
}

const EXCHANGES: [Exchange; 4] = [
    Exchange {
        title_en: "hello over TCP: the textbook hello_server / hello_client",
        title_ko: "TCP hello: 교재의 hello_server / hello_client",
        server: &[],
        client: &[],
        expect: "Message from server: Hello World!",
        server_call: "accept(",
    },
    Exchange {
        title_en: "echo over TCP: the client sends a message, the server replies \"<len> : <msg>\"",
        title_ko: "TCP 에코: 클라이언트가 보낸 메시지에 서버가 \"<길이> : <메시지>\"로 응답",
        server: &["--service", "echo"],
        client: &["-m", "hello"],
        expect: "Message from server: 5 : hello",
        server_call: "shutdown(",
    },
    Exchange {
        title_en: "hello over UDP: no connection, one datagram each way",
        title_ko: "UDP hello: 연결 없이 데이터그램을 한 번씩 주고받기",
        server: &["--udp"],
        client: &["--udp"],
        expect: "Message from server: Hello World!",
        server_call: "recvfrom(",
    },
    Exchange {
        title_en: "echo over UDP",
        title_ko: "UDP 에코",
        server: &["--udp", "--service", "echo"],
        client: &["--udp", "-m", "hello"],
        expect: "Message from server: 5 : hello",
        server_call: "sendto(",
    },
];

/// Runs the demo.
pub fn run(args: &[String]) -> Result<()> {
    let lang = match args {
        [] => "en",
        [flag, l] if flag == "--lang" && (l == "en" || l == "ko") => l.as_str(),
        _ => bail!("usage: cargo xtask demo [--lang en|ko]"),
    };
    eprintln!("xtask demo: building hello-server and hello-client ...");
    let dir = build_dev()?;
    let (server, client) = (dir.join("hello-server"), dir.join("hello-client"));
    let total = EXCHANGES.len();
    for (i, ex) in EXCHANGES.iter().enumerate() {
        let title = if lang == "ko" { ex.title_ko } else { ex.title_en };
        println!("\n=== {}/{total}  {title} ===", i + 1);
        exchange(&server, &client, lang, ex)?;
    }
    println!(
        "\n{}",
        if lang == "ko" {
            "데모 완료: 네 가지 교환 모두 예상한 결과를 얻었습니다."
        } else {
            "demo passed: all four exchanges gave the expected replies."
        }
    );
    Ok(())
}

fn exchange(server: &Path, client: &Path, lang: &str, ex: &Exchange) -> Result<()> {
    let mut server_args = vec!["--trace", "--lang", lang];
    server_args.extend_from_slice(ex.server);
    server_args.extend_from_slice(&["--bind", "127.0.0.1", "0"]);
    println!("$ hello-server {}", server_args.join(" "));
    let running = start_server(&server.to_path_buf(), &server_args)?;
    println!("{}", running.line);

    let port = running.port.to_string();
    let mut client_args = vec!["--trace", "--lang", lang];
    client_args.extend_from_slice(ex.client);
    client_args.extend_from_slice(&["127.0.0.1", &port]);
    println!("$ hello-client {}", client_args.join(" "));
    let mut cmd = Command::new(client);
    cmd.args(&client_args);
    let done = run_bounded(cmd);
    // Stop the server whatever the client did, so that no process is left behind.
    let (status, server_err) = running.stop()?;
    let done = done?;

    let ko = lang == "ko";
    println!(
        "--- {} ---",
        if ko {
            "양쪽의 소켓 함수 호출, 일어난 순서대로"
        } else {
            "socket calls, both sides, in the order they happened"
        }
    );
    for line in merge(&server_err, &done.stderr) {
        println!("{line}");
    }
    println!(
        "--- {} ---",
        if ko {
            "클라이언트의 표준 출력"
        } else {
            "client's stdout"
        }
    );
    print!("{}", done.stdout);
    println!(
        "--- {}: {status} ---",
        if ko {
            "SIGTERM으로 서버 종료"
        } else {
            "server stopped by SIGTERM"
        }
    );

    ensure!(
        done.status.success(),
        "hello-client failed ({}): {}",
        done.status,
        done.stderr.trim()
    );
    ensure!(
        done.stdout == format!("{}\n", ex.expect),
        "hello-client printed {:?}, expected {:?}",
        done.stdout,
        ex.expect
    );
    ensure!(
        status.success(),
        "hello-server exited with {status} after SIGTERM"
    );
    ensure!(
        server_err.contains(ex.server_call),
        "the server's trace shows no {}...) call",
        ex.server_call
    );
    Ok(())
}

/// Merges the two sides' trace lines by their timestamps (both programs print the same
/// wall clock). Lines without a timestamp (error messages) keep their place after the
/// line before them.
fn merge(server: &str, client: &str) -> Vec<String> {
    let mut lines: Vec<(String, usize, String)> = Vec::new();
    for (side, text) in [server, client].iter().enumerate() {
        let mut last = String::new();
        for line in text.lines() {
            let stamp = line.split(' ').next().unwrap_or("");
            let is_stamp = stamp.len() == 15 && stamp.as_bytes()[2] == b':' && stamp.as_bytes()[8] == b'.';
            if is_stamp {
                last = stamp.to_string();
            }
            lines.push((last.clone(), side, line.to_string()));
        }
    }
    // A stable sort keeps each side's own order among equal timestamps.
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines.into_iter().map(|(_, _, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_orders_by_time_and_keeps_untimed_lines_in_place() {
        let s = "00:00:01.000000 server  a\n00:00:03.000000 server  c\n";
        let c = "00:00:02.000000 client  b\nhello-client: oops\n00:00:04.000000 client  d\n";
        assert_eq!(
            merge(s, c),
            vec![
                "00:00:01.000000 server  a",
                "00:00:02.000000 client  b",
                "hello-client: oops",
                "00:00:03.000000 server  c",
                "00:00:04.000000 client  d",
            ]
        );
    }
}
