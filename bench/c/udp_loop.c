/*
 * udp_loop.c: the textbook UDP server's loop (uecho_server.c's shape, answering the hello
 * service), the UDP reference of `cargo xtask bench`: socket(SOCK_DGRAM), bind(), then
 * for ever recvfrom() a datagram and sendto() its sender the greeting AND its NUL. Two
 * system calls per datagram, the least the textbook's API can do.
 *
 *   ./udp_loop PORT [N]      ->  listening on 127.0.0.1:40123
 *
 * With N (2 or more): N processes, each its own socket on the port (SO_REUSEPORT: the
 * kernel spreads the senders over them by a hash of their addresses), each the same loop.
 *
 * Changes to the textbook, each so that the benchmark measures the loop and not an
 * accident: it binds 127.0.0.1, port 0 lets the kernel choose and the start-up line
 * (flushed, like hello-server's) shows the real port; and the receive buffer is the one
 * hello-server --udp asks for (4 MiB, capped by net.core.rmem_max), so that both queue
 * the same burst instead of dropping it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>

int main(int argc, char *argv[])
{
	static const char message[] = "Hello World!";
	char buf[65536];
	struct sockaddr_in serv_adr, clnt_adr;
	socklen_t adr_sz = sizeof(serv_adr);
	int rcvbuf = 4 << 20, one = 1;
	int workers = argc == 3 ? atoi(argv[2]) : 1;
	int serv_sock;

	if (argc < 2 || argc > 3 || workers < 1) {
		fprintf(stderr, "usage: %s PORT [N]\n", argv[0]);
		return 2;
	}
	serv_sock = socket(PF_INET, SOCK_DGRAM, 0);
	if (serv_sock == -1) {
		perror("socket() error");
		return 1;
	}
	setsockopt(serv_sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (workers > 1)
		setsockopt(serv_sock, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	serv_adr.sin_port = htons(atoi(argv[1]));
	if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1 ||
	    getsockname(serv_sock, (struct sockaddr *)&serv_adr, &adr_sz) == -1) {
		perror("bind() error");
		return 1;
	}
	/* The other workers: a socket each on the port the first one got. */
	int first = 1;
	for (int w = 1; w < workers && first; w++) {
		if (fork() == 0) {
			first = 0;
			/* A worker ends with the first process. */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			serv_sock = socket(PF_INET, SOCK_DGRAM, 0);
			setsockopt(serv_sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
			setsockopt(serv_sock, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
			if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1) {
				perror("bind() error");
				return 1;
			}
		}
	}
	if (first) {
		printf("listening on 127.0.0.1:%d\n", ntohs(serv_adr.sin_port));
		fflush(stdout);
	}
	for (;;) {
		socklen_t clnt_adr_sz = sizeof(clnt_adr);
		if (recvfrom(serv_sock, buf, sizeof(buf), 0, (struct sockaddr *)&clnt_adr, &clnt_adr_sz) < 0)
			continue;
		sendto(serv_sock, message, sizeof(message), 0, (struct sockaddr *)&clnt_adr, clnt_adr_sz);
	}
}
