/*
 * textbook_loop.c: the textbook's hello_server.c with its accept() in a loop, the
 * reference server of `cargo xtask bench`: socket(), bind(), listen(), then for ever
 * accept() a client, write(message, sizeof(message)) (the greeting AND its NUL), close().
 *
 *   ./textbook_loop PORT [BACKLOG]      ->  listening on 127.0.0.1:40123
 *
 * Three changes to the textbook, each so that the benchmark measures the code and not an
 * accident: it binds 127.0.0.1 (the benchmark sends traffic to loopback only), port 0
 * lets the kernel choose and the start-up line (printed after listen() and flushed, like
 * hello-server's) shows the real port; the backlog is an argument (default 128, the old
 * SOMAXCONN: the textbook's 5 drops SYNs as soon as 16 clients connect at once); and
 * SIGPIPE is ignored, so a client that went away cannot kill the server.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

void error_handling(char *message);

int main(int argc, char *argv[])
{
	int serv_sock;
	int clnt_sock;
	struct sockaddr_in serv_addr;
	struct sockaddr_in clnt_addr;
	socklen_t addr_size;
	char addr_text[INET_ADDRSTRLEN];
	int backlog = 128;

	char message[] = "Hello World!";

	if (argc != 2 && argc != 3) {
		printf("Usage : %s <port> [backlog]\n", argv[0]);
		exit(2);
	}
	if (argc == 3)
		backlog = atoi(argv[2]);
	signal(SIGPIPE, SIG_IGN);

	serv_sock = socket(PF_INET, SOCK_STREAM, 0);
	if (serv_sock == -1)
		error_handling("socket() error");

	memset(&serv_addr, 0, sizeof(serv_addr));
	serv_addr.sin_family = AF_INET;
	serv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	serv_addr.sin_port = htons(atoi(argv[1]));

	if (bind(serv_sock, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) == -1)
		error_handling("bind() error");

	if (listen(serv_sock, backlog) == -1)
		error_handling("listen() error");

	addr_size = sizeof(serv_addr);
	if (getsockname(serv_sock, (struct sockaddr *)&serv_addr, &addr_size) == -1)
		error_handling("getsockname() error");
	inet_ntop(AF_INET, &serv_addr.sin_addr, addr_text, sizeof(addr_text));
	printf("listening on %s:%d\n", addr_text, ntohs(serv_addr.sin_port));
	fflush(stdout);

	for (;;) {
		addr_size = sizeof(clnt_addr);
		clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_addr, &addr_size);
		if (clnt_sock == -1) {
			/* a client that reset while queued, or a signal: take the next one */
			if (errno == ECONNABORTED || errno == EINTR)
				continue;
			error_handling("accept() error");
		}
		write(clnt_sock, message, sizeof(message));
		close(clnt_sock);
	}
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
