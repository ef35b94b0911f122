// A TCP/TLS relay in C for the `hops` benchmark: what a relay hop costs on this machine when it
// is native code, against the same hop in Node (bench/hops-relay.ts). Plain TCP both sides for
// the time-to-first-byte rows; for the bulk rows, the Z-Tunnel's crypto on its links (mutual TLS
// 1.3, AES-128-GCM first, as src/protocol/tls.ts) with no HTTP/2 and no multiplexing: one TLS
// connection per relayed connection, its handshake outside the timed transfer. Not part of the
// product.
//
// Usage: relay LISTEN_PORT UPSTREAM_PORT [IN OUT DIR]
//   IN, OUT: tcp (the default) or tls (the accepted side is a TLS server, the upstream side a TLS
//   client); DIR holds ca.crt, server.crt, server.key, client.crt, client.key (both sides verify
//   the peer against ca.crt). Both ports on 127.0.0.1; LISTEN_PORT 0 picks a free port. Prints
//   "READY <port>" once it listens.
//
// One thread, epoll, blocking sockets: reads follow readiness, and a write (or a TLS record
// read whose bytes are still arriving) waits. Enough for the benchmark's serial GETs and its one
// bulk stream at a time; a production relay would be non-blocking throughout.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
static int peer[MAXFD];
static char eof[MAXFD];
static SSL *tls[MAXFD];

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return a;
}

static void watch(int ep, int fd) {
  struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static void die(const char *what) {
  fprintf(stderr, "relay: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static SSL_CTX *context(const char *dir, int server) {
  char path[4096];
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  if (!SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")) die("ciphersuites");
  snprintf(path, sizeof path, "%s/%s.crt", dir, server ? "server" : "client");
  if (SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM) != 1) die(path);
  snprintf(path, sizeof path, "%s/%s.key", dir, server ? "server" : "client");
  if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1) die(path);
  snprintf(path, sizeof path, "%s/ca.crt", dir);
  if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) die(path);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  // A record without application data (a TLS 1.3 session ticket) must not make SSL_read wait
  // on the blocking socket for data that may only come once the other side is served.
  SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
  if (server) SSL_CTX_set_num_tickets(ctx, 0);
  // Read whole socket buffers, not a record header and then its body: half the system calls.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 << 10);
  return ctx;
}

/** Reads what is there (at most one TLS record); 0 at the end of the stream, -1 on an error, -2 for nothing yet. */
static ssize_t readFrom(int fd, char *buf, size_t len) {
  if (!tls[fd]) {
    ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
    return r < 0 && errno == EAGAIN ? -2 : r;
  }
  int r = SSL_read(tls[fd], buf, (int)len);
  if (r > 0) return r;
  int e = SSL_get_error(tls[fd], r);
  return e == SSL_ERROR_ZERO_RETURN ? 0 : e == SSL_ERROR_WANT_READ ? -2 : -1;
}

static int writeTo(int fd, const char *buf, size_t len) {
  if (tls[fd]) return SSL_write(tls[fd], buf, (int)len) == (int)len ? 0 : -1;
  for (size_t off = 0; off < len;) {
    ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    off += (size_t)w;
  }
  return 0;
}

static void closeBoth(int ep, int fd) {
  int p = peer[fd];
  int fds[2] = {fd, p};
  for (int i = 0; i < 2; i++) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
    if (tls[fds[i]]) SSL_free(tls[fds[i]]), tls[fds[i]] = NULL;
    close(fds[i]);
  }
}

/** Forwards what `fd` has for its peer; at its end of stream passes the FIN on. */
static void pump(int ep, int fd) {
  static char buf[65536];
  ssize_t r = readFrom(fd, buf, sizeof buf);
  // OpenSSL holds what it read ahead, which the socket no longer signals: drain it.
  while (r > 0) {
    if (writeTo(peer[fd], buf, (size_t)r)) {
      r = -1;
      break;
    }
    r = tls[fd] && SSL_has_pending(tls[fd]) ? readFrom(fd, buf, sizeof buf) : -2;
  }
  if (r == -2) return;
  // End of this direction: pass the FIN on (TLS: close_notify, then the TCP FIN); both
  // ended, or an error: close both.
  int p = peer[fd];
  eof[fd] = 1;
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  if (r < 0 || eof[p]) {
    closeBoth(ep, fd);
  } else {
    if (tls[p]) SSL_shutdown(tls[p]);
    shutdown(p, SHUT_WR);
  }
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 6) {
    fprintf(stderr, "usage: relay LISTEN_PORT UPSTREAM_PORT [tcp|tls tcp|tls DIR]\n");
    return 2;
  }
  // OpenSSL writes with write(2): a peer that went away must be an error, not a SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  int tlsIn = argc == 6 && strcmp(argv[3], "tls") == 0, tlsOut = argc == 6 && strcmp(argv[4], "tls") == 0;
  SSL_CTX *serverCtx = tlsIn ? context(argv[5], 1) : NULL, *clientCtx = tlsOut ? context(argv[5], 0) : NULL;
  struct sockaddr_in listen_at = loopback(atoi(argv[1])), upstream = loopback(atoi(argv[2]));
  int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&listen_at, sizeof listen_at) || listen(ls, 512)) {
    perror("relay: listen");
    return 1;
  }
  socklen_t len = sizeof listen_at;
  getsockname(ls, (struct sockaddr *)&listen_at, &len);
  int ep = epoll_create1(0);
  watch(ep, ls);
  printf("READY %d\n", ntohs(listen_at.sin_port));
  fflush(stdout);
  struct epoll_event evs[64];
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
        tls[c] = tls[u] = NULL;
        int ok = 1;
        if (tlsIn) {
          tls[c] = SSL_new(serverCtx);
          SSL_set_fd(tls[c], c);
          ok = SSL_accept(tls[c]) == 1;
        }
        if (ok && tlsOut) {
          tls[u] = SSL_new(clientCtx);
          SSL_set_fd(tls[u], u);
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls[u]), "127.0.0.1");
          ok = SSL_connect(tls[u]) == 1;
        }
        peer[c] = u, peer[u] = c, eof[c] = eof[u] = 0;
        if (!ok) {
          ERR_print_errors_fp(stderr);
          closeBoth(ep, c);
          continue;
        }
        watch(ep, c);
        watch(ep, u);
        // A handshake reading ahead may have taken the first application data with it.
        if (tls[c] && SSL_has_pending(tls[c])) pump(ep, c);
        if (tls[u] && SSL_has_pending(tls[u])) pump(ep, u);
        continue;
      }
      pump(ep, fd);
    }
  }
}
