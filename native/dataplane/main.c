// zcc-dataplane's entry: the role, the command lines Node writes on stdin, the event loop and
// the timeouts' sweep.
//
// Usage: zcc-dataplane agent LISTEN_PORT CONNECT_MS HALF_CLOSED_IDLE_MS OPEN_IDLE_MS (0: never)
//        zcc-dataplane connector CONNECT_MS
//        zcc-dataplane check          prints "ok" and exits 0 when it can run here (libraries load)
//
// Commands on stdin, one per line, fields separated by one space:
//   tunnel ID HOST PORT SERVERNAME CA_B64 CERT_B64 KEY_B64 HELLO_B64|-   dial a Z-Tunnel
//   send ID B64                                       control bytes to the edge
//   close ID                                          tear a tunnel down
//   stats
//   agent:     peer-resets ID                         the edge's hello announced reset-request
//              route IP ID HOST RANGES                RANGES: 80-80,8000-8099 or - (TCP ports allowed)
//              unroute IP
//   connector: target HOST PORT IP PORT TTL_MS        where an app is (TTL 0: for good)
//              unresolved HOST PORT WHY...            it does not resolve
//              reset ID TAG CODE                      the edge asked for this reset
// Events on stdout, one per line:
//   listening PORT (agent) | ready (connector) | up ID | control ID B64 | down ID REASON
//   use IP (agent: a connection to IP was accepted; at most every 10 s per IP)
//   resolve HOST PORT (connector) | stats k=v... | error WHAT
// Diagnostics go to stderr (ZCC_DATAPLANE_DEBUG=1: every reset and refusal; =/path: to that file).
// Secrets (the key) are never printed.
#include "dataplane.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>


enum role role;
int ep;
int debug;
long connect_ms = 10000, half_closed_idle_ms = 6 * 60 * 1000, open_idle_ms = 0;
struct tunnel tunnels[MAX_TUNNELS];
struct stats st;

static struct handle cmd_h = {K_CMD, 0, 0};

static struct tunnel *tunnel_arg(const char *s) {
  char *end;
  long id = strtol(s, &end, 10);
  if (*end || id < 0 || id >= MAX_TUNNELS || !tunnels[id].used) return NULL;
  return &tunnels[id];
}

static void command(char *line) {
  char *argv[10];
  int argc = 0;
  char *rest = line;
  // Up to 9 fields; the 10th is the rest of the line (unresolved's reason has spaces).
  while (argc < 9 && rest && *rest) {
    argv[argc++] = rest;
    rest = strchr(rest, ' ');
    if (rest) *rest++ = 0;
  }
  if (rest && *rest) argv[argc++] = rest;
  if (argc == 0) return;
  const char *cmd = argv[0];
  if (strcmp(cmd, "tunnel") == 0 && argc == 9) {
    tunnel_open(atoi(argv[1]), argv[2], atoi(argv[3]), argv[4], argv[5], argv[6], argv[7], argv[8]);
  } else if (strcmp(cmd, "send") == 0 && argc == 3) {
    struct tunnel *t = tunnel_arg(argv[1]);
    size_t n;
    uint8_t *d = b64_decode(argv[2], &n);
    if (t && d) tunnel_send_control(t, d, n);
    else emit("error send: no such tunnel or bad base64");
    free(d);
  } else if (strcmp(cmd, "close") == 0 && argc == 2) {
    struct tunnel *t = tunnel_arg(argv[1]);
    if (t) tunnel_down(t, "closed by its owner");
  } else if (strcmp(cmd, "stats") == 0) {
    emit("stats accepted=%lu refused=%lu established=%lu failed=%lu active=%lu conns=%lu bytesUp=%llu bytesDown=%llu", st.accepted, st.refused, st.established, st.failed, st.active, st.conns, st.bytes_up, st.bytes_down);
  } else if (role == ROLE_AGENT && strcmp(cmd, "peer-resets") == 0 && argc == 2) {
    struct tunnel *t = tunnel_arg(argv[1]);
    if (t) t->peer_resets = 1;
  } else if (role == ROLE_AGENT && strcmp(cmd, "route") == 0 && argc == 5) {
    agent_route(argv[1], atoi(argv[2]), argv[3], argv[4]);
  } else if (role == ROLE_AGENT && strcmp(cmd, "unroute") == 0 && argc == 2) {
    agent_unroute(argv[1]);
  } else if (role == ROLE_CONNECTOR && strcmp(cmd, "target") == 0 && argc == 6) {
    connector_target(argv[1], atoi(argv[2]), argv[3], atoi(argv[4]), atol(argv[5]));
  } else if (role == ROLE_CONNECTOR && strcmp(cmd, "unresolved") == 0 && argc >= 3) {
    connector_unresolved(argv[1], atoi(argv[2]), argc > 3 ? argv[3] : "does not resolve");
  } else if (role == ROLE_CONNECTOR && strcmp(cmd, "reset") == 0 && argc == 4) {
    connector_reset(atoi(argv[1]), (uint32_t)strtoul(argv[2], NULL, 10), (uint32_t)strtoul(argv[3], NULL, 10));
  } else {
    emit("error unknown or malformed command: %.32s", cmd);
  }
}

static void on_command_input(void) {
  static char *line;
  static size_t len, cap;
  for (;;) {
    if (cap - len < 65536) {
      cap = cap ? cap * 2 : 131072;
      line = realloc(line, cap);
      if (!line) exit(1);
    }
    ssize_t n = read(0, line + len, cap - len - 1);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      exit(1);
    }
    if (n == 0) exit(0);  // our owner is gone: so are we (the kernel resets every connection)
    len += (size_t)n;
    char *start = line, *nl;
    while ((nl = memchr(start, '\n', len - (size_t)(start - line)))) {
      *nl = 0;
      command(start);
      start = nl + 1;
    }
    len -= (size_t)(start - line);
    memmove(line, start, len);
  }
}

static void sweep(void) {
  uint64_t now = now_ms();
  for (int i = 0; i < MAX_TUNNELS; i++) {
    struct tunnel *t = &tunnels[i];
    if (!t->used || !t->ng) continue;
    for (struct conn *c = t->conns, *n; c; c = n) {
      n = c->next;
      if (role == ROLE_AGENT) agent_sweep_conn(c, now);
      else connector_sweep_conn(c, now);
    }
    tunnel_keepalive(t, now);
    tunnel_flush(t);
  }
}

static int usage(void) {
  fputs("usage: zcc-dataplane agent LISTEN_PORT CONNECT_MS HALF_CLOSED_IDLE_MS OPEN_IDLE_MS | connector CONNECT_MS | check\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *debug_to = getenv("ZCC_DATAPLANE_DEBUG");
  debug = debug_to != NULL;
  if (debug && debug_to[0] == '/' && !freopen(debug_to, "a", stderr)) return 1;
  if (argc == 2 && strcmp(argv[1], "check") == 0) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int ok = ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1;
    SSL_CTX_free(ctx);
    puts(ok ? "ok" : "no TLS 1.3 in this OpenSSL");
    return ok ? 0 : 1;
  }
  if (argc == 6 && strcmp(argv[1], "agent") == 0) {
    role = ROLE_AGENT;
    connect_ms = atol(argv[3]);
    half_closed_idle_ms = atol(argv[4]);
    open_idle_ms = atol(argv[5]);
  } else if (argc == 3 && strcmp(argv[1], "connector") == 0) {
    role = ROLE_CONNECTOR;
    connect_ms = atol(argv[2]);
  } else {
    return usage();
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < MAX_TUNNELS; i++) tunnels[i].h.fd = -1;
  if (role == ROLE_AGENT) {
    const char *why = NULL;
    int port = agent_listen(atoi(argv[2]), &why);
    if (port < 0) {
      emit("error listen: %s", why);
      return 1;
    }
    emit("listening %d", port);
  } else {
    emit("ready");
  }
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  watch(&cmd_h, EPOLLIN);
  uint64_t last_sweep = now_ms();
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      struct handle *h = evs[i].data.ptr;
      uint32_t e = evs[i].events;
      if (h->kind == K_CMD) on_command_input();
      else if (h->kind == K_LISTEN) agent_accept();
      else if (h->kind == K_TUNNEL) {
        struct tunnel *t = (struct tunnel *)h;
        if (t->used) tunnel_io(t, e);
      } else {
        struct conn *c = (struct conn *)h;
        if (!c->dead && c->h.fd >= 0) conn_io(c, e);
      }
    }
    // What this batch queued on any tunnel leaves now, gathered: frames are only ever queued
    // elsewhere (some of it runs inside nghttp2's callbacks, which must not send).
    for (int i = 0; i < MAX_TUNNELS; i++)
      if (tunnels[i].used && tunnels[i].ng && nghttp2_session_want_write(tunnels[i].ng)) tunnel_flush(&tunnels[i]);
    bury();
    if (now_ms() - last_sweep >= 1000) {
      last_sweep = now_ms();
      sweep();
    }
  }
}
