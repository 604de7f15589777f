/*
 * uecho_client.c: the textbook UDP echo client, one message: no connect() (the kernel
 * gives the socket its address at the first sendto()), the message WITH its NUL in one
 * datagram, ONE recvfrom(), print the reply with %s.
 *
 *   ./uecho_client 127.0.0.1 9190 hello      ->  Message from server: 5 : hello
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
	struct sockaddr_in from_addr;
	socklen_t addr_size;
	char message[BUF_SIZE];
	int str_len;

	if (argc != 4) {
		printf("Usage : %s <IP> <port> <message>\n", argv[0]);
		exit(1);
	}

	sock = socket(PF_INET, SOCK_DGRAM, 0);
	if (sock == -1)
		error_handling("socket() error");

	memset(&serv_addr, 0, sizeof(serv_addr));
	serv_addr.sin_family = AF_INET;
	serv_addr.sin_addr.s_addr = inet_addr(argv[1]);
	serv_addr.sin_port = htons(atoi(argv[2]));

	if (sendto(sock, argv[3], strlen(argv[3]) + 1, 0, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) == -1)
		error_handling("sendto() error");

	memset(message, 'X', sizeof(message) - 1);
	message[sizeof(message) - 1] = 0;
	addr_size = sizeof(from_addr);
	str_len = recvfrom(sock, message, sizeof(message) - 1, 0, (struct sockaddr *)&from_addr, &addr_size);
	if (str_len == -1)
		error_handling("recvfrom() error");

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
