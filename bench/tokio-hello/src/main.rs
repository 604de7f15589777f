//! The minimal tokio server `cargo xtask bench` measures beside hello-server: what a Rust
//! user would write instead, with the default multi-threaded runtime (a worker per core),
//! `TcpListener::bind` and a task per connection.
//!
//! ```text
//! tokio-hello PORT [hello|echo]      ->  listening on 127.0.0.1:40123
//! ```
//!
//! hello (default): write `Hello World!\0` and close. echo (for the idle-connection
//! step): read the message until the client half-closes, drop one trailing NUL, reply
//! `"<len> : <msg>\0"` and close. It listens on 127.0.0.1; port 0 lets the kernel choose,
//! and the start-up line shows the real port.

use std::io::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HELLO: &[u8] = b"Hello World!\0";
const MAX_MSG: usize = 1 << 20;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: Option<u16> = args.next().and_then(|s| s.parse().ok());
    let mode = args.next();
    let (Some(port), None | Some("hello" | "echo")) = (port, mode.as_deref()) else {
        eprintln!("usage: tokio-hello PORT [hello|echo]");
        std::process::exit(2);
    };
    let echo = mode.as_deref() == Some("echo");
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    loop {
        let mut sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors, say: back off a moment instead of spinning.
                eprintln!("tokio-hello: accept: {e}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        if !echo {
            tokio::spawn(async move {
                let _ = sock.write_all(HELLO).await;
            });
            continue;
        }
        tokio::spawn(async move {
            let mut msg = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) if msg.len() + n <= MAX_MSG => msg.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            if msg.last() == Some(&0) {
                msg.pop();
            }
            let mut reply = format!("{} : ", msg.len()).into_bytes();
            reply.extend_from_slice(&msg);
            reply.push(0);
            let _ = sock.write_all(&reply).await;
        });
    }
}
