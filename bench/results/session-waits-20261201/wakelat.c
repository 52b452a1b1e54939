/* wakelat.c - loopback TCP round trip (1 byte each way, TCP_NODELAY, two processes) when the
 * client pauses GAP microseconds (nanosleep) between round trips: how the time a vCPU has been
 * idle changes the cost of waking the other side. usage: wakelat GAP_US COUNT PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int gap = atoi(argv[1]), n = atoi(argv[2]), port = atoi(argv[3]), one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(l, (void *)&a, sizeof a) || listen(l, 1)) { perror("bind"); return 1; }
    pid_t pid = fork();
    if (pid == 0) {
        int s = accept(l, 0, 0); setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char c; while (read(s, &c, 1) == 1) if (write(s, &c, 1) != 1) break;
        _exit(0);
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (void *)&a, sizeof a)) { perror("connect"); return 1; }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double *rtt = malloc(n * sizeof *rtt); char c = 'x';
    struct timespec g = {0, gap * 1000L};
    for (int i = 0; i < n; i++) {
        if (gap) nanosleep(&g, 0);
        double t0 = now();
        if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1) { perror("io"); return 1; }
        rtt[i] = now() - t0;
    }
    close(s); wait(0);
    qsort(rtt, n, sizeof *rtt, cmp);
    printf("gap_us=%d n=%d rtt_us p50=%.1f p90=%.1f p99=%.1f\n", gap, n, rtt[n / 2], rtt[n * 9 / 10], rtt[n * 99 / 100]);
    return 0;
}
