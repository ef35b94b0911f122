// The agent's role: the intercept listener TPROXY (or redirect) feeds, the routes Node pushes
// (synthetic IP -> tenant Z-Tunnel, app name, allowed TCP ports), and a microtunnel opened for
// every accepted connection (HTTP/2 client role).
#include "dataplane.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


#define ROUTE_SLOTS 65536  // open addressing, power of two
#define MAX_RANGES 64
#define USE_EVERY_MS 10000  // PortGate's refresh: its kernel gates last 30 s from a use

struct range {
  uint16_t from, to;
};
struct route {
  uint32_t ip;  // network order; 0 = empty slot, 1 = tombstone
  int tunnel;
  uint64_t used_ms;  // when the last `use` event went out for it
  char host[254];
  int nranges;
  struct range ranges[MAX_RANGES];
};

static struct route *routes;
static struct handle listen_h = {K_LISTEN, -1, 0};
static uint32_t listen_ip;
static uint16_t listen_port;

// ---- routes ----

static uint32_t route_hash(uint32_t ip) { return (ip * 2654435761u) & (ROUTE_SLOTS - 1); }

static struct route *route_find(uint32_t ip) {
  for (uint32_t i = route_hash(ip), n = 0; n < ROUTE_SLOTS; i = (i + 1) & (ROUTE_SLOTS - 1), n++) {
    if (routes[i].ip == ip) return &routes[i];
    if (routes[i].ip == 0) return NULL;
  }
  return NULL;
}

static struct route *route_slot(uint32_t ip) {
  struct route *found = route_find(ip);
  if (found) return found;
  for (uint32_t i = route_hash(ip), n = 0; n < ROUTE_SLOTS; i = (i + 1) & (ROUTE_SLOTS - 1), n++)
    if (routes[i].ip <= 1) return &routes[i];
  return NULL;
}

static int port_allowed(const struct route *r, uint16_t port) {
  for (int i = 0; i < r->nranges; i++)
    if (port >= r->ranges[i].from && port <= r->ranges[i].to) return 1;
  return 0;
}

static int parse_ranges(const char *s, struct route *r) {
  r->nranges = 0;
  if (strcmp(s, "-") == 0) return 0;
  while (*s) {
    char *end;
    long from = strtol(s, &end, 10), to = from;
    if (end == s || from < 1 || from > 65535) return -1;
    if (*end == '-') {
      s = end + 1;
      to = strtol(s, &end, 10);
      if (end == s || to < from || to > 65535) return -1;
    }
    if (r->nranges == MAX_RANGES) return -1;
    r->ranges[r->nranges++] = (struct range){(uint16_t)from, (uint16_t)to};
    if (*end == ',') end++;
    else if (*end) return -1;
    s = end;
  }
  return 0;
}

/** `route IP ID HOST RANGES`; 0 when taken, else an `error` line was emitted. */
int agent_route(const char *ip, int tunnel, const char *host, const char *ranges) {
  struct in_addr a;
  if (inet_pton(AF_INET, ip, &a) != 1 || a.s_addr <= 1) return emit("error route: bad IP %s", ip), -1;
  struct route tmp = {.ip = a.s_addr, .tunnel = tunnel};
  if (strlen(host) >= sizeof tmp.host || parse_ranges(ranges, &tmp)) return emit("error route: bad host or port ranges for %s", ip), -1;
  snprintf(tmp.host, sizeof tmp.host, "%s", host);
  struct route *r = route_slot(a.s_addr);
  if (!r) return emit("error route: table full"), -1;
  *r = tmp;
  return 0;
}

void agent_unroute(const char *ip) {
  struct in_addr a;
  struct route *r = inet_pton(AF_INET, ip, &a) == 1 ? route_find(a.s_addr) : NULL;
  if (r) r->ip = 1;  // tombstone keeps probe chains intact
}

// ---- the listener ----

/** Listens on 127.0.0.1:`port` (0: any) for what TPROXY or redirect hands us; returns the port. */
int agent_listen(int port, const char **why) {
  routes = calloc(ROUTE_SLOTS, sizeof *routes);
  listen_h.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_h.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // TPROXY hands this listener connections for any synthetic IP:port (needs CAP_NET_ADMIN).
  if (setsockopt(listen_h.fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) logf_("IP_TRANSPARENT: %s (TPROXY will not reach this listener)", strerror(errno));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (!routes || bind(listen_h.fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(listen_h.fd, 4096) != 0 || getsockname(listen_h.fd, (struct sockaddr *)&sa, &len) != 0) {
    *why = strerror(errno);
    return -1;
  }
  listen_ip = sa.sin_addr.s_addr;
  listen_port = ntohs(sa.sin_port);
  watch(&listen_h, EPOLLIN);
  return listen_port;
}

void agent_accept(void) {
  for (;;) {
    int fd = accept4(listen_h.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) logf_("accept: %s", strerror(errno));
      if (errno == ECONNABORTED || errno == EINTR) continue;
      return;
    }
    st.accepted++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in dst;
    socklen_t len = sizeof dst;
    int ok = getsockname(fd, (struct sockaddr *)&dst, &len) == 0;
    // Under the redirect fallback the local address is the listener's; conntrack has the original.
    if (ok && dst.sin_addr.s_addr == listen_ip && ntohs(dst.sin_port) == listen_port) {
      len = sizeof dst;
      ok = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0;
    }
    struct route *r = ok ? route_find(dst.sin_addr.s_addr) : NULL;
    struct tunnel *t = r && r->tunnel >= 0 && r->tunnel < MAX_TUNNELS ? &tunnels[r->tunnel] : NULL;
    uint16_t port = ntohs(dst.sin_port);
    uint64_t now = now_ms();
    if (r && now - r->used_ms >= USE_EVERY_MS) {
      // Node keeps the IP's pool mapping fresh and gates its other ports in the kernel.
      r->used_ms = now;
      emit("use %s", inet_ntoa(dst.sin_addr));
    }
    if (!r || !port_allowed(r, port) || !t || !t->up || t->dead) {
      // No app at this IP, a port no segment allows, or no Z-Tunnel: refuse at once.
      st.refused++;
      if (debug) logf_("refused %s:%u route %d tunnel up %d", inet_ntoa(dst.sin_addr), port, !!r, t ? t->up : -1);
      close_with_rst(fd);
      continue;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->h = (struct handle){K_CONN, fd, 0};
    c->t = t;
    c->tag = t->next_tag++;
    if (t->next_tag == 0) t->next_tag = 1;
    c->opened_ms = now_ms();
    c->reading = 1;
    char authority[300], tag[16];
    snprintf(authority, sizeof authority, "%s:%u", r->host, port);
    snprintf(tag, sizeof tag, "%u", c->tag);
    nghttp2_nv hdrs[] = {NV(":method", "CONNECT"), NV(":authority", authority), NV("zcc-tag", tag), NV("zcc-proto", "tcp")};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = up_read_cb};
    c->sid = nghttp2_submit_request(t->ng, NULL, hdrs, 4, &dp, c);
    if (c->sid < 0) {
      st.refused++;
      reset_client(c);
      free(c);
      continue;
    }
    conn_link(c, t);
    watch(&c->h, EPOLLIN);
    // The client's first bytes are often already here: they leave with the HEADERS.
    conn_read_up(c);
  }
}

// ---- the microtunnels' answers (HTTP/2 client role) ----

static int on_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud) {
  (void)flags, (void)ud;
  if (f->hd.type != NGHTTP2_HEADERS || nl != 7 || memcmp(name, ":status", 7) != 0) return 0;
  struct conn *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (c && vl == 3) c->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
  return 0;
}

static int on_frame_recv_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  struct tunnel *t = ud;
  tunnel_on_frame(t, f);
  if (f->hd.stream_id == t->control_id && f->hd.type == NGHTTP2_HEADERS && !t->up) {
    t->up = 1;
    emit("up %d", t->id);
    return 0;
  }
  struct conn *c = f->hd.stream_id > 0 ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id) : NULL;
  if (!c || c->resetting) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    if (c->status == 200) {
      conn_established(c);
    } else {
      // Refused by the edge (no policy, no connector, unreachable...): the client gets an RST.
      // The edge's answer ended the stream its way; ours ends cleanly (END_STREAM, the early data
      // dropped), not with an RST_STREAM, which a server's nghttp2 counts against the session.
      st.failed++;
      reset_client(c);
      buf_free(&c->up);
      c->client_eof = 1;
      c->answered = 1;
      nghttp2_session_resume_data(s, c->sid);
      return 0;
    }
  }
  conn_on_frame_end(c, f);
  return 0;
}

void agent_callbacks(nghttp2_session_callbacks *cb) {
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv_cb);
}

/**
 * Asks the edge to reset the microtunnel (a `reset` control message, protocol.md §5.3) instead
 * of sending RST_STREAM: the edge's nghttp2 tears a whole session down after ~1,000 of those in
 * a burst, and applications abort connections all the time. Until the edge's RST_STREAM comes
 * the connection holds nothing but its stream (what arrives is dropped); after 5 s without it
 * we send our own. Returns 0 when the edge cannot be asked (older edge, no control stream).
 */
int agent_reset_via_edge(struct conn *c, uint32_t code) {
  struct tunnel *t = c->t;
  if (c->resetting) return 1;
  if (c->stream_closed || c->sid <= 0 || !t->ng || !t->peer_resets || t->control_id <= 0 || t->dead) return 0;
  char frame[128];
  int n = snprintf(frame + 4, sizeof frame - 4, "{\"type\":\"reset\",\"tag\":%u,\"reason\":\"%s\"}", c->tag, reason_name(code));
  frame[0] = frame[1] = 0;
  frame[2] = (char)(n >> 8);
  frame[3] = (char)n;
  tunnel_send_control(t, (const uint8_t *)frame, 4 + (size_t)n);
  c->resetting = 1;
  c->reset_asked_ms = now_ms();
  buf_free(&c->up);
  buf_free(&c->down);
  if (c->established) {
    c->established = 0;
    st.active--;
  }
  return 1;
}

/** The agent's timeouts (seed 003): not established within connectMs, or idle, half-closed or open. */
void agent_sweep_conn(struct conn *c, uint64_t now) {
  if (c->resetting) {
    // The edge did not reset it: we do (RESET_THROUGH_PEER_MS in client-resets.ts).
    if (now - c->reset_asked_ms > 5000) conn_rst(c, REASON_PEER_RESET);
    return;
  }
  if (c->answered) return;  // refused: closes with the edge's answer and our END_STREAM
  int half_closed = c->client_eof || c->shut_wr;
  long idle_limit = half_closed ? half_closed_idle_ms : open_idle_ms;
  if (!c->established && now - c->opened_ms > (uint64_t)connect_ms) {
    st.failed++;
    conn_abort(c, NGHTTP2_CANCEL);
  } else if (c->established && idle_limit > 0 && now - c->active_ms > (uint64_t)idle_limit) {
    conn_abort(c, REASON_IDLE_TIMEOUT);
  }
}
