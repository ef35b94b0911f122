// A plain TCP relay in C for the `hops` benchmark: what a relay hop costs on this machine when
// it is native code (epoll, one thread), against the same hop in Node (bench/hops-relay.ts).
// Not part of the product. Usage: tcp-relay LISTEN_PORT UPSTREAM_PORT (both on 127.0.0.1;
// LISTEN_PORT 0 picks a free port). Prints "READY <port>" once it listens.
//
// Sockets stay blocking: readiness comes from epoll and reads use MSG_DONTWAIT; a write waits
// for room (the benchmark's payloads are a few hundred bytes, so it never does).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
static int peer[MAXFD];
static char eof[MAXFD];

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return a;
}

static void watch(int ep, int fd) {
  struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tcp-relay LISTEN_PORT UPSTREAM_PORT\n");
    return 2;
  }
  struct sockaddr_in listen_at = loopback(atoi(argv[1])), upstream = loopback(atoi(argv[2]));
  int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&listen_at, sizeof listen_at) || listen(ls, 512)) {
    perror("tcp-relay: listen");
    return 1;
  }
  socklen_t len = sizeof listen_at;
  getsockname(ls, (struct sockaddr *)&listen_at, &len);
  int ep = epoll_create1(0);
  watch(ep, ls);
  printf("READY %d\n", ntohs(listen_at.sin_port));
  fflush(stdout);
  struct epoll_event evs[64];
  static char buf[65536];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c = accept(ls, NULL, NULL);
        if (c < 0 || c >= MAXFD) continue;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        if (u >= MAXFD || connect(u, (struct sockaddr *)&upstream, sizeof upstream)) {
          close(c);
          close(u);
          continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        peer[c] = u, peer[u] = c, eof[c] = eof[u] = 0;
        watch(ep, c);
        watch(ep, u);
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) {
        for (ssize_t off = 0; off < r;) {
          ssize_t w = send(peer[fd], buf + off, r - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += w;
        }
      } else if (r == 0 || errno != EAGAIN) {
        // End of this direction: pass the FIN on; both ended (or an error): close both.
        int p = peer[fd];
        eof[fd] = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        if (r < 0 || eof[p]) {
          epoll_ctl(ep, EPOLL_CTL_DEL, p, NULL);
          close(fd);
          close(p);
        } else {
          shutdown(p, SHUT_WR);
        }
      }
    }
  }
}
