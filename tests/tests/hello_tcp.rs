//! The hello exchange over TCP between the real binaries.

use hello_tests::{Server, client};

#[test]
fn client_prints_the_greeting_from_every_model() {
    for model in ["iterative", "threads", "epoll"] {
        let server = Server::start(&["--model", model, "--bind", "127.0.0.1", "0"]);
        let port = server.port().to_string();
        client(&["127.0.0.1", &port])
            .assert()
            .success()
            .stdout("Message from server: Hello World!\n")
            .stderr("");
    }
}
