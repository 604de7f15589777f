/*
 * echo_loop.c: the echo exchange in a loop, the request-first reference of `cargo xtask
 * bench`: a blocking accept4(), one read() of the message, the reply "<len> : <msg>" AND
 * its NUL in one write(), close(). No framing (a message split over two segments is cut),
 * no half-close handling, no deadline: the least an echo server does per exchange.
 *
 *   ./echo_loop PORT [defer]      ->  listening on 127.0.0.1:40123
 *
 * With `defer`, the listener has TCP_DEFER_ACCEPT (1 s, as nginx's `deferred`): accept()
 * returns a connection only once its first bytes arrived, so the read never waits.
 *
 * It binds 127.0.0.1 with backlog 4096, port 0 lets the kernel choose, and the start-up
 * line (flushed) shows the real port.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int main(int argc, char *argv[])
{
	char msg[1025], reply[1100];
	struct sockaddr_in serv_addr;
	socklen_t len = sizeof(serv_addr);
	int one = 1;
	int serv_sock;

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "defer") != 0)) {
		fprintf(stderr, "usage: %s PORT [defer]\n", argv[0]);
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
	if (argc == 3)
		setsockopt(serv_sock, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
	printf("listening on 127.0.0.1:%d\n", ntohs(serv_addr.sin_port));
	fflush(stdout);
	for (;;) {
		int clnt_sock = accept4(serv_sock, NULL, NULL, SOCK_CLOEXEC);
		if (clnt_sock == -1)
			continue;
		ssize_t n = read(clnt_sock, msg, sizeof(msg) - 1);
		if (n > 0) {
			msg[n] = 0;
			int m = snprintf(reply, sizeof(reply), "%d : %s", (int)strlen(msg), msg);
			write(clnt_sock, reply, m + 1);
		}
		close(clnt_sock);
	}
}
