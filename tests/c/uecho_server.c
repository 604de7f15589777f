/*
 * uecho_server.c: the textbook UDP echo server, made one-shot: bind(), ONE recvfrom(),
 * reply sprintf("%d : %s", strlen(buf), buf) WITH its NUL to the sender, close, exit.
 * There is no listen() and no accept(): UDP has no connection.
 *
 *   ./uecho_server 9190 [ADDR]      ->  listening on 0.0.0.0:9190
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define BUF_SIZE 1024
void error_handling(char *message);

int main(int argc, char *argv[])
{
	int serv_sock;
	struct sockaddr_in serv_addr;
	struct sockaddr_in clnt_addr;
	socklen_t addr_size;
	char addr_text[INET_ADDRSTRLEN];
	char buf[BUF_SIZE];
	char reply[BUF_SIZE + 32];
	int str_len;

	if (argc != 2 && argc != 3) {
		printf("Usage : %s <port> [addr]\n", argv[0]);
		exit(1);
	}

	serv_sock = socket(PF_INET, SOCK_DGRAM, 0);
	if (serv_sock == -1)
		error_handling("socket() error");

	memset(&serv_addr, 0, sizeof(serv_addr));
	serv_addr.sin_family = AF_INET;
	serv_addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (argc == 3 && inet_pton(AF_INET, argv[2], &serv_addr.sin_addr) != 1)
		error_handling("inet_pton() error");
	serv_addr.sin_port = htons(atoi(argv[1]));

	if (bind(serv_sock, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) == -1)
		error_handling("bind() error");

	addr_size = sizeof(serv_addr);
	if (getsockname(serv_sock, (struct sockaddr *)&serv_addr, &addr_size) == -1)
		error_handling("getsockname() error");
	inet_ntop(AF_INET, &serv_addr.sin_addr, addr_text, sizeof(addr_text));
	printf("listening on %s:%d\n", addr_text, ntohs(serv_addr.sin_port));
	fflush(stdout);

	addr_size = sizeof(clnt_addr);
	str_len = recvfrom(serv_sock, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&clnt_addr, &addr_size);
	if (str_len == -1)
		error_handling("recvfrom() error");
	buf[str_len] = 0;

	sprintf(reply, "%d : %s", (int)strlen(buf), buf);
	sendto(serv_sock, reply, strlen(reply) + 1, 0, (struct sockaddr *)&clnt_addr, addr_size);
	close(serv_sock);
	return 0;
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
