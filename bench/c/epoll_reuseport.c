/*
 * epoll_reuseport.c: the near-the-limit reference server of `cargo xtask bench`: what
 * the kernel allows a hello server on this machine, with no design cost on top.
 *
 *   ./epoll_reuseport PORT [THREADS [hello|echo]]   ->  listening on 127.0.0.1:40123
 *
 * THREADS threads (default 1), each with its own listening socket on the same port
 * (SO_REUSEPORT: the kernel spreads new connections over them, no lock is shared) and
 * its own epoll loop. On readiness a thread drains its accept queue with
 * accept4(SOCK_NONBLOCK); in hello mode it sends the 13 bytes (a fresh socket's send
 * buffer is empty: this never blocks) and closes. Backlog 4096. Port 0 lets the kernel
 * choose: the first listener binds it, the others bind the port it got; the start-up
 * line is printed once all are listening.
 *
 * echo mode (for the benchmark's idle-connection step): read the message until the
 * client half-closes, drop one trailing NUL, reply "<len> : <msg>\0" and close. A client
 * that sends nothing costs a 48-byte struct and its epoll registration: the floor for
 * what holding an idle connection costs a server in user space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define MAX_THREADS 64
#define MAX_EVENTS 256
#define MAX_MSG (1u << 20)

static const char hello[] = "Hello World!"; /* sizeof: 13, the NUL included */
static int echo_mode;

struct conn {
	int fd;
	size_t len, cap, sent;
	int replying;
	char *buf;
};

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int listener(unsigned short port)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("setsockopt");
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
	free(c);
}

/* Sends what is left of the reply; 1 when the connection is done with. */
static int conn_send(struct conn *c)
{
	while (c->sent < c->len) {
		ssize_t n = send(c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
		if (n < 0)
			return errno != EAGAIN && errno != EINTR ? 1 : 0;
		c->sent += (size_t)n;
	}
	return 1;
}

/* echo mode: the client's socket is ready. */
static void conn_ready(int ep, struct conn *c)
{
	if (c->replying) {
		if (conn_send(c))
			conn_close(c);
		return;
	}
	for (;;) {
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 256;
			char *buf = cap <= MAX_MSG ? realloc(c->buf, cap) : NULL;
			if (!buf) {
				conn_close(c);
				return;
			}
			c->buf = buf;
			c->cap = cap;
		}
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			conn_close(c);
			return;
		}
		break; /* end of stream: the whole message is here */
	}
	size_t msg = c->len && c->buf[c->len - 1] == '\0' ? c->len - 1 : c->len;
	char head[32];
	int h = snprintf(head, sizeof head, "%zu : ", msg);
	char *reply = malloc((size_t)h + msg + 1);
	if (!reply) {
		conn_close(c);
		return;
	}
	memcpy(reply, head, (size_t)h);
	memcpy(reply + h, c->buf, msg);
	reply[h + msg] = '\0';
	free(c->buf);
	c->buf = reply;
	c->len = c->cap = (size_t)h + msg + 1;
	c->replying = 1;
	if (conn_send(c)) {
		conn_close(c);
		return;
	}
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_close(c);
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				perror("accept4"); /* out of descriptors: the next wake-up retries */
			return;
		}
		if (!echo_mode) {
			send(fd, hello, sizeof hello, MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(c);
	}
}

static void *worker(void *arg)
{
	int lfd = (int)(long)arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr)
				conn_ready(ep, evs[i].data.ptr);
			else
				accept_all(ep, lfd);
		}
	}
	return NULL;
}

int main(int argc, char *argv[])
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s PORT [THREADS [hello|echo]]\n", argv[0]);
		return 2;
	}
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	if (threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "THREADS must be 1..%d\n", MAX_THREADS);
		return 2;
	}
	if (argc > 3 && strcmp(argv[3], "echo") != 0 && strcmp(argv[3], "hello") != 0) {
		fprintf(stderr, "the mode is hello or echo\n");
		return 2;
	}
	echo_mode = argc > 3 && strcmp(argv[3], "echo") == 0;
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	int lfds[MAX_THREADS];
	lfds[0] = listener((unsigned short)atoi(argv[1]));
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	if (getsockname(lfds[0], (struct sockaddr *)&a, &len) < 0)
		die("getsockname");
	for (int i = 1; i < threads; i++)
		lfds[i] = listener(ntohs(a.sin_port));
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
	printf("listening on %s:%d\n", text, ntohs(a.sin_port));
	fflush(stdout);

	for (int i = 1; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, (void *)(long)lfds[i]) != 0)
			die("pthread_create");
		pthread_detach(t);
	}
	worker((void *)(long)lfds[0]);
	return 0;
}
