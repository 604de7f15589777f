/*
 * hello_client.c: the textbook hello client, kept as the book writes it: connect(),
 * ONE read() into char message[30], printf("%s").
 *
 *   ./hello_client 127.0.0.1 9190      ->  Message from server: Hello World!
 *
 * It relies on the server sending the greeting's NUL (write(sizeof(message))). The
 * buffer is filled with 'X' (not zeroed) before the read, so a server that forgets the
 * NUL shows up as "Hello World!XXXXXXXXXXXXXXXXX" every time, not as random garbage.
 * Only the last byte is a NUL, so that printf never runs off the end of the array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

void error_handling(char *message);

int main(int argc, char *argv[])
{
	int sock;
	struct sockaddr_in serv_addr;
	char message[30];
	int str_len;

	if (argc != 3) {
		printf("Usage : %s <IP> <port>\n", argv[0]);
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
