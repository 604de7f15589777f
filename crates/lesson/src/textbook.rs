//! The tutorials' own programs (`--textbook`) in the hello scenario's four exchanges:
//! run traced (`cargo xtask demo --textbook`), each call's record with the C line that
//! makes it (`src`), to set beside the same exchange made the real way
//! ([`crate::pairing`]); and the exchanges `--step` walks through ([`crate::step`]).

use anyhow::{Context, Result, ensure};
use hello_proto::trace::Lang;
use hello_proto::trace::record::Record;

use crate::line::parse_all;
use crate::run::{Pipe, Proc, WAIT};
use crate::scenario::{Programs, typed};

/// One exchange of the textbook's programs: its title and the programs' extra arguments.
pub struct Exchange {
    /// Its title, in English and Korean.
    pub title: (&'static str, &'static str),
    /// The server's arguments besides `--textbook`, the trace and the address.
    pub server: &'static [&'static str],
    /// The client's, besides the server's address.
    pub client: &'static [&'static str],
    /// Over UDP.
    pub udp: bool,
}

/// The `hello` scenario's exchanges, as the tutorials' programs make them, in its order.
pub const EXCHANGES: [Exchange; 4] = [
    Exchange {
        title: (
            "hello over TCP: hello_server.c / hello_client.c",
            "TCP hello: hello_server.c / hello_client.c",
        ),
        server: &[],
        client: &[],
        udp: false,
    },
    Exchange {
        title: (
            "echo over TCP: echo_server.c / echo_client.c",
            "TCP 에코: echo_server.c / echo_client.c",
        ),
        server: &["--service", "echo"],
        client: &["-m", "hello"],
        udp: false,
    },
    Exchange {
        title: (
            "hello over UDP: the UDP hello programs",
            "UDP hello: UDP hello 프로그램",
        ),
        server: &["--udp"],
        client: &["--udp"],
        udp: true,
    },
    Exchange {
        title: (
            "echo over UDP: uecho_server.c / uecho_client.c",
            "UDP 에코: uecho_server.c / uecho_client.c",
        ),
        server: &["--udp", "--service", "echo"],
        client: &["--udp", "-m", "hello"],
        udp: true,
    },
];

/// The arguments both programs get: the textbook's program, traced as JSON in `lang`.
pub fn traced(lang: Lang) -> Vec<String> {
    let lang = match lang {
        Lang::En => "en",
        Lang::Ko => "ko",
    };
    ["--textbook", "--trace", "--trace-format", "json", "--lang", lang]
        .map(String::from)
        .to_vec()
}

/// One exchange made by the textbook's programs.
#[derive(Debug, Clone)]
pub struct Made {
    /// Its title.
    pub title: String,
    /// The commands, as a reader types them.
    pub commands: Vec<String>,
    /// Both programs' records, in the order the calls were made.
    pub records: Vec<Record>,
    /// What the client printed.
    pub output: String,
}

/// Runs the four exchanges with the textbook's programs, traced in `lang`.
pub fn run(programs: &Programs, lang: Lang) -> Result<Vec<Made>> {
    EXCHANGES.iter().map(|ex| exchange(programs, lang, ex)).collect()
}

fn exchange(programs: &Programs, lang: Lang, ex: &Exchange) -> Result<Made> {
    let mut args = traced(lang);
    args.extend(ex.server.iter().map(|s| s.to_string()));
    args.extend(["--bind", "127.0.0.1", "0"].map(String::from));
    let server = Proc::spawn(&programs.server, &args)?;
    let mut commands = vec![format!("$ {}", typed("hello-server", &args))];
    let port = server
        .listening(Pipe::Stderr, WAIT)
        .context("the textbook server did not start")?
        .port();
    let mut args = traced(lang);
    args.extend(ex.client.iter().map(|s| s.to_string()));
    args.extend(["127.0.0.1".to_string(), port.to_string()]);
    commands.push(format!("$ {}", typed("hello-client", &args)));
    // A UDP server waits for its one datagram: the client is started after it is bound.
    let client = Proc::spawn(&programs.client, &args)?.finish()?;
    let server = server.finish()?;
    ensure!(
        client.status.success() && server.status.success(),
        "the textbook programs failed: client {}: {}; server {}: {}",
        client.status,
        client.stderr.lines().last().unwrap_or_default(),
        server.status,
        server.stderr.lines().last().unwrap_or_default()
    );
    let mut records = parse_all(&server.stderr);
    records.extend(parse_all(&client.stderr));
    records.sort_by_key(|r| r.t_us);
    Ok(Made {
        title: match lang {
            Lang::En => ex.title.0,
            Lang::Ko => ex.title.1,
        }
        .to_string(),
        commands,
        records,
        output: client.stdout.trim_end().to_string(),
    })
}
