/* free_port.h -- a loopback TCP port for a server that must get the same
 * port back when it is restarted (chat-server in chat-scenario and the
 * integration harness, redis-server in redis_proc.h). Header-only.
 *
 * Why not a port 0 bind: such a port comes from the kernel's ephemeral
 * range, which every port 0 bind and every outgoing connect of every
 * process on the machine draws from. While the server is down, a port that
 * nothing holds any more (a TLS server's connections end with a reset and
 * leave no TIME_WAIT behind) is handed to whoever asks next, and with the
 * suite running tests in parallel the restart then fails with "address
 * already in use". A port below that range is never handed out that way;
 * only an explicit bind can take it, and other runs pick theirs at random.
 */
#ifndef TEST_FREE_PORT_H
#define TEST_FREE_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FP_LOWEST 10000 /* above the well-known and registered test ports */
#define FP_TRIES 64

/* Binds fd to 127.0.0.1:port (0: any); the port bound, or -1. No
 * SO_REUSEADDR, so a port with connections in TIME_WAIT is not free. */
static inline int fp__bind(int fd, int port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  return ntohs(sa.sin_port);
}

/* The first port of the kernel's ephemeral range (32768 when unknown). */
static inline int fp_ephemeral_low(void) {
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  int low = 32768, high;
  if (f != NULL) {
    if (fscanf(f, "%d %d", &low, &high) != 2)
      low = 32768;
    fclose(f);
  }
  return low;
}

/* A loopback port free at this moment, below the ephemeral range when the
 * range leaves room for one (a port 0 port otherwise); -1 when none. */
static inline int fp_free_port(void) {
  int low = fp_ephemeral_low(), port = -1;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned x = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
  for (int i = 0; port < 0 && i <= FP_TRIES; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), want = 0;
    if (fd < 0)
      return -1;
    if (i < FP_TRIES && low - FP_LOWEST >= 1000) {
      x = x * 1103515245u + 12345u; /* spread, not secrecy */
      want = FP_LOWEST + (int)((x >> 8) % (unsigned)(low - FP_LOWEST));
    }
    port = fp__bind(fd, want);
    close(fd);
  }
  return port;
}

#endif /* TEST_FREE_PORT_H */
