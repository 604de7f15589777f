/*
 * least_work.c: the least a hello server can do per connection on Linux, the lower
 * bound `cargo xtask bench` divides by: a blocking accept4(), one send(MSG_MORE) of the
 * greeting AND its NUL, close() (its FIN leaves in the same segment as the greeting).
 * No check for unread bytes (a client that spoke first would get the FIN, not an RST),
 * no deadline, no error handling beyond going on to the next client.
 *
 *   ./least_work PORT      ->  listening on 127.0.0.1:40123
 *
 * It binds 127.0.0.1 with backlog 4096 (hello-server's), port 0 lets the kernel choose,
 * and the start-up line (flushed) shows the real port.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

int main(int argc, char *argv[])
{
	static const char message[] = "Hello World!";
	struct sockaddr_in serv_addr;
	socklen_t len = sizeof(serv_addr);
	int one = 1;
	int serv_sock;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	serv_sock = socket(PF_INET, SOCK_STREAM, 0);
	setsockopt(serv_sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&serv_addr, 0, sizeof(serv_addr));
	serv_addr.sin_family = AF_INET;
	serv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	serv_addr.sin_port = htons(atoi(argv[1]));
	if (bind(serv_sock, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) == -1 ||
	    listen(serv_sock, 4096) == -1 ||
	    getsockname(serv_sock, (struct sockaddr *)&serv_addr, &len) == -1) {
		perror("bind() error");
		return 1;
	}
	printf("listening on 127.0.0.1:%d\n", ntohs(serv_addr.sin_port));
	fflush(stdout);
	for (;;) {
		int clnt_sock = accept4(serv_sock, NULL, NULL, SOCK_CLOEXEC);
		if (clnt_sock == -1)
			continue;
		send(clnt_sock, message, sizeof(message), MSG_MORE);
		close(clnt_sock);
	}
}
