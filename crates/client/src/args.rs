//! hello-client's positional arguments: the textbook `HOST PORT`, or one or more
//! `HOST:PORT` targets, and the rule that tells the two forms apart
//! (docs/contract.md#several-targets).
//!
//! The rule, in order:
//! 1. exactly two arguments whose second is all ASCII digits: `HOST PORT`, the textbook
//!    form (`::1 9190`, `localhost 9190`, and `127.0.0.1 70000`, a port out of range);
//! 2. otherwise, if the first argument carries a port (`[v6]:port`, or exactly one
//!    colon): every argument is a `HOST:PORT` target (`[::1]:9190 127.0.0.1:9191`);
//! 3. otherwise `HOST PORT`, with its usual errors (`127.0.0.1` alone lacks its PORT).
//!
//! An IPv6 address in a target is written in brackets; without them (`::1`) it has
//! several colons and is a host, never a target, so `::1 9190` cannot be misread.

use hello_proto::addr::{Host, Target, has_port, parse_client_port};

/// Which form the command line used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `HOST PORT`: one server, the textbook output.
    Textbook,
    /// `HOST:PORT...`: each target named in the output when there are several.
    Targets,
}

/// A server to check, and how the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    /// The argument as typed (`HOST:PORT`; for the textbook form, `HOST:PORT` made of the
    /// two, IPv6 in brackets).
    pub typed: String,
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

/// What is wrong with the positional arguments, as clap would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// Arguments are missing; their names (`<PORT>`).
    Missing(Vec<&'static str>),
    /// An argument is not valid: its name, its value, and why.
    Invalid(&'static str, String, String),
    /// An argument nobody asked for.
    Unexpected(String),
}

impl Usage {
    /// Says so in clap's words and form for `command`, and exits 2.
    pub fn exit(self, mut command: clap::Command) -> ! {
        use clap::error::ErrorKind;
        let (kind, message) = match self {
            Usage::Missing(names) => (
                ErrorKind::MissingRequiredArgument,
                format!(
                    "the following required arguments were not provided:\n  {}",
                    names.join("\n  ")
                ),
            ),
            Usage::Invalid(name, value, why) => (
                ErrorKind::InvalidValue,
                format!("invalid value '{value}' for '{name}': {why}"),
            ),
            Usage::Unexpected(value) => (
                ErrorKind::UnknownArgument,
                format!("unexpected argument '{value}' found"),
            ),
        };
        command.error(kind, message).exit()
    }
}

/// The one server of a command line that names one (hello-load's): `HOST PORT` or a
/// single `HOST:PORT`.
pub fn parse_one(args: &[String]) -> Result<Typed, Usage> {
    let (_, mut targets) = parse(args)?;
    match targets.len() {
        1 => Ok(targets.remove(0)),
        _ => Err(Usage::Unexpected(targets.remove(1).typed)),
    }
}

/// Applies the rule above to the positional arguments.
pub fn parse(args: &[String]) -> Result<(Form, Vec<Typed>), Usage> {
    match args {
        [] => Err(Usage::Missing(vec!["<HOST>", "<PORT>"])),
        [host, port] if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            textbook(host, port).map(|t| (Form::Textbook, vec![t]))
        }
        [first, ..] if has_port(first) => {
            let targets = args
                .iter()
                .map(|a| {
                    Target::parse(a)
                        .map(|t| Typed {
                            typed: a.clone(),
                            host: t.host,
                            port: t.port,
                        })
                        .map_err(|e| Usage::Invalid("<HOST:PORT>", a.clone(), e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((Form::Targets, targets))
        }
        [_] => Err(Usage::Missing(vec!["<PORT>"])),
        [host, port, rest @ ..] => {
            let t = textbook(host, port)?;
            match rest.first() {
                Some(extra) => Err(Usage::Unexpected(extra.clone())),
                None => Ok((Form::Textbook, vec![t])),
            }
        }
    }
}

fn textbook(host: &str, port: &str) -> Result<Typed, Usage> {
    let h = Host::parse(host).map_err(|e| Usage::Invalid("<HOST>", host.into(), e))?;
    let p = parse_client_port(port).map_err(|e| Usage::Invalid("<PORT>", port.into(), e))?;
    Ok(Typed {
        typed: h.with_port(p),
        host: h,
        port: p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<(Form, Vec<String>), Usage> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&args).map(|(f, t)| (f, t.into_iter().map(|t| t.host.with_port(t.port)).collect()))
    }

    #[test]
    fn two_arguments_ending_in_a_bare_port_are_host_port() {
        assert_eq!(
            run(&["127.0.0.1", "9190"]),
            Ok((Form::Textbook, vec!["127.0.0.1:9190".into()]))
        );
        assert_eq!(
            run(&["::1", "9190"]),
            Ok((Form::Textbook, vec!["[::1]:9190".into()]))
        );
        assert_eq!(
            run(&["[::1]", "9190"]),
            Ok((Form::Textbook, vec!["[::1]:9190".into()]))
        );
        assert!(matches!(
            run(&["127.0.0.1", "70000"]),
            Err(Usage::Invalid("<PORT>", _, _))
        ));
        // A target followed by a bare port is the textbook form with a bad HOST, not two
        // targets: the second would have no host.
        let Err(Usage::Invalid("<HOST>", _, why)) = run(&["localhost:9190", "9191"]) else {
            panic!("a target before a bare port was accepted");
        };
        assert!(why.contains("holds a port"), "{why}");
    }

    #[test]
    fn a_first_argument_with_a_port_makes_every_argument_a_target() {
        assert_eq!(
            run(&["[::1]:9190", "127.0.0.1:9191"]),
            Ok((Form::Targets, vec!["[::1]:9190".into(), "127.0.0.1:9191".into()]))
        );
        assert_eq!(
            run(&["localhost:1"]),
            Ok((Form::Targets, vec!["localhost:1".into()]))
        );
        assert_eq!(
            run(&["a:1", "b:2", "c:3"]).map(|(_, t)| t.len()),
            Ok(3),
            "any number of targets"
        );
        for bad in [
            &["a:1", "b"][..],
            &["a:1", "::1:9190"],
            &["a:1", "b:0"],
            &["[::1]:1", "c:x"],
        ] {
            assert!(
                matches!(run(bad), Err(Usage::Invalid("<HOST:PORT>", _, _))),
                "{bad:?}: {:?}",
                run(bad)
            );
        }
    }

    #[test]
    fn anything_else_is_host_port_with_its_usual_errors() {
        assert_eq!(run(&[]), Err(Usage::Missing(vec!["<HOST>", "<PORT>"])));
        assert_eq!(run(&["127.0.0.1"]), Err(Usage::Missing(vec!["<PORT>"])));
        assert_eq!(
            run(&["::1"]),
            Err(Usage::Missing(vec!["<PORT>"])),
            "::1 is a host"
        );
        assert!(matches!(
            run(&["127.0.0.1", "abc"]),
            Err(Usage::Invalid("<PORT>", _, _))
        ));
        assert!(matches!(
            run(&["127.0.0.1", "-1"]),
            Err(Usage::Invalid("<PORT>", _, _))
        ));
        assert!(matches!(run(&["", "9190"]), Err(Usage::Invalid("<HOST>", _, _))));
        assert_eq!(
            run(&["127.0.0.1", "9190", "extra"]),
            Err(Usage::Unexpected("extra".into()))
        );
        // The first argument decides: `::1` has no port, so this is HOST PORT, and the
        // second is no port.
        assert!(matches!(
            run(&["::1", "[::1]:9190"]),
            Err(Usage::Invalid("<PORT>", _, _))
        ));
    }

    #[test]
    fn one_server_is_either_form_and_no_more() {
        let one = |a: &[&str]| parse_one(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(one(&["127.0.0.1", "9190"]).unwrap().typed, "127.0.0.1:9190");
        assert_eq!(one(&["[::1]:9190"]).unwrap().typed, "[::1]:9190");
        assert_eq!(one(&["a:1", "b:2"]), Err(Usage::Unexpected("b:2".into())));
        assert_eq!(one(&["localhost"]), Err(Usage::Missing(vec!["<PORT>"])));
    }

    #[test]
    fn the_typed_form_is_kept_for_the_output() {
        let args: Vec<String> = vec!["localhost:09190".into()];
        let (_, t) = parse(&args).unwrap();
        assert_eq!(t[0].typed, "localhost:09190");
        let args: Vec<String> = vec!["::1".into(), "9190".into()];
        let (_, t) = parse(&args).unwrap();
        assert_eq!(t[0].typed, "[::1]:9190");
    }
}
