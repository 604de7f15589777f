/*
 * echo_client.c: the textbook echo client: connect(), write the message WITH its NUL
 * (strlen + 1, a C string on the wire), ONE read(), print the reply with %s.
 *
 *   ./echo_client 127.0.0.1 9190 hello      ->  Message from server: 5 : hello
 *
 * As in hello_client.c, the buffer is filled with 'X' before the read, so a reply
 * without its NUL is visible, deterministically.
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
	int sock;
	struct sockaddr_in serv_addr;
	char message[BUF_SIZE];
	int str_len;

	if (argc != 4) {
		printf("Usage : %s <IP> <port> <message>\n", argv[0]);
		exit(1);
	}

	sock = socket(PF_INET, SOCK_STREAM, 0);
	if (sock == -1)
		error_handling("socket() error");

	memset(&serv_addr, 0, sizeof(serv_addr));
	serv_addr.sin_family = AF_INET;
	serv_addr.sin_addr.s_addr = inet_addr(argv[1]);
	serv_addr.sin_port = htons(atoi(argv[2]));

	if (connect(sock, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) == -1)
		error_handling("connect() error");

	if (write(sock, argv[3], strlen(argv[3]) + 1) == -1)
		error_handling("write() error");

	memset(message, 'X', sizeof(message) - 1);
	message[sizeof(message) - 1] = 0;
	str_len = read(sock, message, sizeof(message) - 1);
	if (str_len == -1)
		error_handling("read() error");

	printf("Message from server: %s\n", message);
	close(sock);
	return 0;
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
