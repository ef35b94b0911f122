// The connector's role (HTTP/2 server on the Z-Tunnel it dialled): the edge opens the control
// stream and then microtunnels; each open is checked as parseOpen() does (microtunnel-open.ts),
// its app name resolved (a cache Node fills: `resolve` events, `target` commands), the server
// dialled, and the stream answered 200 only once the TCP connect is done (protocol.md §5.2).
// Datagram microtunnels (§5.5) get a connected UDP socket and length-prefixed datagrams.
#include "dataplane.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


#define TAG_BUCKETS 16384
#define TARGET_SLOTS 4096  // open addressing, power of two
#define MAX_DATAGRAM 65535
#define REFUSED_LINGER_MS 5000

/** The open's headers while its HEADERS frame arrives, then its app name until it is dialled. */
struct open_req {
  char method[16], path[32], authority[MAX_AUTHORITY + 1], tag[16], proto[8];
  unsigned too_long : 1;
  char host[MAX_AUTHORITY + 1];
  int port;
};

struct target {
  char key[MAX_AUTHORITY + 8];  // "host:port"; "" = empty slot
  struct sockaddr_in addr;
  uint64_t expires_ms;   // 0: never (a static server entry)
  uint64_t asked_ms;     // a `resolve` is out since then, 0 when none
  unsigned resolved : 1;
};

static struct conn *by_tag[TAG_BUCKETS];
static struct target *targets;

// ---- tags ----

static struct conn **tag_bucket(int tunnel, uint32_t tag) { return &by_tag[(tag * 2654435761u + (uint32_t)tunnel) & (TAG_BUCKETS - 1)]; }

static struct conn *tag_find(struct tunnel *t, uint32_t tag) {
  for (struct conn *c = *tag_bucket(t->id, tag); c; c = c->tag_next)
    if (c->t == t && c->tag == tag) return c;
  return NULL;
}

void connector_forget(struct conn *c) {
  if (!c->tag || !c->t) return;
  for (struct conn **p = tag_bucket(c->t->id, c->tag); *p; p = &(*p)->tag_next) {
    if (*p == c) {
      *p = c->tag_next;
      break;
    }
  }
  c->tag = 0;
}

/** `reset ID TAG CODE`: the edge asked for the reset of its microtunnel (protocol.md §5.3). */
void connector_reset(int tunnel, uint32_t tag, uint32_t code) {
  if (tunnel < 0 || tunnel >= MAX_TUNNELS || !tunnels[tunnel].used) return;
  struct tunnel *t = &tunnels[tunnel];
  struct conn *c = tag_find(t, tag);
  if (!c || c->stream_closed) return;  // gone already: ignored, as the protocol says
  conn_abort(c, code);
}

// ---- answers ----

/** A refused open: its status and `zcc-reason`, then END_STREAM; only that stream is affected. */
static void refuse_stream(struct tunnel *t, int32_t sid, uint32_t code, const char *why) {
  if (debug) logf_("refused stream %d: %s (%s)", sid, reason_name(code), why);
  st.refused++;
  nghttp2_nv hdrs[] = {NV(":status", reason_status(code)), NV("zcc-reason", reason_name(code))};
  nghttp2_submit_response(t->ng, sid, hdrs, 2, NULL);
}

static void refuse_conn(struct conn *c, uint32_t code, const char *why) {
  c->answered = 1;
  c->active_ms = now_ms();  // the edge closes its side next; connector_sweep_conn if it does not
  c->connecting = 0;
  reset_client(c);
  if (!c->stream_closed) refuse_stream(c->t, c->sid, code, why);
}

// ---- targets (the app servers' addresses) ----

static uint32_t key_hash(const char *k) {
  uint32_t h = 2166136261u;
  for (; *k; k++) h = (h ^ (uint8_t)*k) * 16777619u;
  return h & (TARGET_SLOTS - 1);
}

/** The slot of `key`, or the empty one it would take; the table is emptied when full (it is a cache). */
static struct target *target_slot(const char *key) {
  if (!targets && !(targets = calloc(TARGET_SLOTS, sizeof *targets))) return NULL;
  for (int round = 0; round < 2; round++) {
    for (uint32_t i = key_hash(key), n = 0; n < TARGET_SLOTS; i = (i + 1) & (TARGET_SLOTS - 1), n++) {
      if (!targets[i].key[0] || strcmp(targets[i].key, key) == 0) return &targets[i];
    }
    memset(targets, 0, TARGET_SLOTS * sizeof *targets);
  }
  return NULL;
}

static void start_connect(struct conn *c, const struct sockaddr_in *addr) {
  c->h.fd = socket(AF_INET, (c->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->h.fd < 0) return refuse_conn(c, REASON_UNREACHABLE, strerror(errno));
  int one = 1;
  if (!c->udp) setsockopt(c->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->h.fd, (const struct sockaddr *)addr, sizeof *addr) == 0) return connector_connected(c);
  if (errno != EINPROGRESS) return refuse_conn(c, REASON_UNREACHABLE, strerror(errno));
  watch(&c->h, EPOLLOUT);
}

static void resolve_conn(struct conn *c) {
  char key[MAX_AUTHORITY + 8];
  snprintf(key, sizeof key, "%s:%d", c->req->host, c->req->port);
  struct target *tg = target_slot(key);
  uint64_t now = now_ms();
  if (tg && tg->resolved && (!tg->expires_ms || tg->expires_ms > now)) return start_connect(c, &tg->addr);
  if (!tg) return refuse_conn(c, REASON_UNREACHABLE, "target table");
  // Parked (connecting, no socket) until Node answers with `target` or `unresolved`.
  if (!tg->key[0]) snprintf(tg->key, sizeof tg->key, "%s", key);
  if (tg->asked_ms && now - tg->asked_ms < (uint64_t)connect_ms) return;
  tg->asked_ms = now;
  emit("resolve %s %d", c->req->host, c->req->port);
}

/** Wakes the opens parked on host:port: dialled when `addr`, refused when NULL. */
static void wake_parked(const char *host, int port, const struct sockaddr_in *addr, const char *why) {
  for (int i = 0; i < MAX_TUNNELS; i++) {
    struct tunnel *t = &tunnels[i];
    if (!t->used) continue;
    for (struct conn *c = t->conns, *n; c; c = n) {
      n = c->next;
      if (!c->connecting || c->h.fd >= 0 || !c->req || c->req->port != port || strcmp(c->req->host, host) != 0) continue;
      if (addr) start_connect(c, addr);
      else refuse_conn(c, REASON_UNREACHABLE, why);
    }
  }
}

/** `target HOST PORT IP PORT TTL_MS`: where host:port is, for TTL_MS (0: for good). */
int connector_target(const char *host, int port, const char *ip, int target_port, long ttl_ms) {
  char key[MAX_AUTHORITY + 8];
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target_port)};
  if (strlen(host) > MAX_AUTHORITY || port < 1 || port > 65535 || target_port < 1 || target_port > 65535 || ttl_ms < 0 || inet_pton(AF_INET, ip, &addr.sin_addr) != 1)
    return emit("error target: bad host, port, IPv4 address or TTL"), -1;
  snprintf(key, sizeof key, "%s:%d", host, port);
  struct target *tg = target_slot(key);
  if (!tg) return emit("error target: table"), -1;
  snprintf(tg->key, sizeof tg->key, "%s", key);
  tg->addr = addr;
  tg->resolved = 1;
  tg->asked_ms = 0;
  tg->expires_ms = ttl_ms ? now_ms() + (uint64_t)ttl_ms : 0;
  wake_parked(host, port, &addr, NULL);
  return 0;
}

/** `unresolved HOST PORT WHY`: the name does not resolve; the opens waiting on it are refused. */
void connector_unresolved(const char *host, int port, const char *why) {
  char key[MAX_AUTHORITY + 8];
  snprintf(key, sizeof key, "%s:%d", host, port);
  struct target *tg = target_slot(key);
  if (tg && tg->key[0] && !tg->resolved) memset(tg, 0, sizeof *tg);
  else if (tg) tg->asked_ms = 0;
  wake_parked(host, port, NULL, why);
}

// ---- the dial's outcome ----

void connector_connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err) {
    if (debug) logf_("connect tag %u: %s", c->tag, strerror(err));
    return refuse_conn(c, REASON_UNREACHABLE, strerror(err));
  }
  c->connecting = 0;
  c->answered = 1;
  free(c->req);
  c->req = NULL;
  if (c->stream_closed) return conn_release(c);
  nghttp2_nv hdrs[] = {NV(":status", "200")};
  nghttp2_data_provider dp = {.source.ptr = c, .read_callback = up_read_cb};
  if (nghttp2_submit_response(c->t->ng, c->sid, hdrs, 1, &dp) != 0) return conn_abort(c, NGHTTP2_INTERNAL_ERROR);
  conn_established(c);
  c->reading = 1;
  c->active_ms = now_ms();
  watch(&c->h, EPOLLIN);
  // Early data: what the edge sent with the open goes to the server now.
  conn_write_down(c);
  if (!c->dead && !c->udp) conn_read_up(c);
}

// ---- datagrams (protocol.md §5.5) ----

/** Server datagrams -> stream, each behind its u16 length; dropped past DATAGRAM_QUEUE. */
void connector_udp_read(struct conn *c) {
  static uint8_t d[2 + MAX_DATAGRAM];
  for (;;) {
    ssize_t n = recv(c->h.fd, d + 2, MAX_DATAGRAM, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (debug) logf_("udp tag %u: %s", c->tag, strerror(errno));  // ICMP errors are not carried
      continue;
    }
    c->active_ms = now_ms();
    if (buf_size(&c->up) + 2 + (size_t)n > DATAGRAM_QUEUE) continue;
    st.bytes_up += (size_t)n;
    d[0] = (uint8_t)(n >> 8);
    d[1] = (uint8_t)n;
    buf_append(&c->up, d, 2 + (size_t)n);
  }
  if (!c->stream_closed && buf_size(&c->up)) nghttp2_session_resume_data(c->t->ng, c->sid);
}

/** Stream -> server: whole datagrams only; the edge's END_STREAM is answered with ours. */
void connector_udp_down(struct conn *c) {
  size_t used = 0;
  while (buf_size(&c->down) >= 2) {
    const uint8_t *p = c->down.p + c->down.off;
    size_t n = ((size_t)p[0] << 8) | p[1];
    if (buf_size(&c->down) < 2 + n) break;
    if (c->h.fd >= 0 && send(c->h.fd, p + 2, n, 0) >= 0) st.bytes_down += n;  // else lost: it is UDP
    c->down.off += 2 + n;
    used += 2 + n;
  }
  if (used) {
    c->active_ms = now_ms();
    if (!c->stream_closed && c->t->ng) nghttp2_session_consume_stream(c->t->ng, c->sid, used);
  }
  if (c->stream_closed) return conn_release(c);
  if (c->remote_eof && !c->client_eof) {
    // A stream that ends inside a datagram fails the flow.
    if (buf_size(&c->down)) return conn_abort(c, REASON_PEER_RESET);
    c->client_eof = 1;
    nghttp2_session_resume_data(c->t->ng, c->sid);
  }
}

// ---- opens (HTTP/2 server role) ----

static int valid_host(const char *h) {
  size_t n = strlen(h), label = 0;
  if (n < 1 || n > 253) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = h[i];
    if (ch == '.') {
      if (label == 0 || h[i - 1] == '-') return 0;
      label = 0;
      continue;
    }
    if (!(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_' || (ch == '-' && label > 0))) return 0;
    if (++label > 63) return 0;
  }
  return label > 0 && h[n - 1] != '-';
}

/** parseOpen() of microtunnel-open.ts: NULL when valid, else why. */
static const char *parse_open(struct open_req *r, uint32_t *tag, int *udp) {
  if (r->too_long) return "header too long";
  if (strcmp(r->method, "CONNECT") != 0) return "method must be CONNECT";
  char *colon = strrchr(r->authority, ':');
  if (!colon || colon == r->authority) return "authority must be host:port";
  size_t hl = (size_t)(colon - r->authority);
  for (size_t i = 0; i < hl; i++) r->host[i] = (char)tolower((unsigned char)r->authority[i]);
  r->host[hl] = 0;
  if (!valid_host(r->host)) return "invalid host";
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (!colon[1] || *end || port < 1 || port > 65535) return "port out of range";
  r->port = (int)port;
  size_t tl = strlen(r->tag);
  if (tl < 1 || tl > 10 || strspn(r->tag, "0123456789") != tl) return "tag must be a 32-bit unsigned integer > 0";
  unsigned long long v = strtoull(r->tag, NULL, 10);
  if (v < 1 || v > 0xffffffffULL) return "tag must be a 32-bit unsigned integer > 0";
  *tag = (uint32_t)v;
  if (strcmp(r->proto, "tcp") == 0) *udp = 0;
  else if (strcmp(r->proto, "udp") == 0) *udp = 1;
  else return "proto must be tcp or udp";
  return NULL;
}

static int on_begin_headers_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  (void)ud;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  struct conn *c = calloc(1, sizeof *c);
  if (c && !(c->req = calloc(1, sizeof *c->req))) {
    free(c);
    c = NULL;
  }
  if (!c) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets this stream
  c->h = (struct handle){K_CONN, -1, 0};
  c->sid = f->hd.stream_id;
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, c);
  return 0;
}

static void copy_header(char *dst, size_t cap, const uint8_t *v, size_t vl, struct open_req *r) {
  if (vl >= cap) {
    r->too_long = 1;
    return;
  }
  memcpy(dst, v, vl);
  dst[vl] = 0;
}

static int on_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud) {
  (void)flags, (void)ud;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  struct conn *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!c || !c->req) return 0;
  struct open_req *r = c->req;
#define IS(n) (nl == sizeof(n) - 1 && memcmp(name, n, nl) == 0)
  if (IS(":method")) copy_header(r->method, sizeof r->method, value, vl, r);
  else if (IS(":path")) copy_header(r->path, sizeof r->path, value, vl, r);
  else if (IS(":authority")) copy_header(r->authority, sizeof r->authority, value, vl, r);
  else if (IS("zcc-tag")) copy_header(r->tag, sizeof r->tag, value, vl, r);
  else if (IS("zcc-proto")) copy_header(r->proto, sizeof r->proto, value, vl, r);
#undef IS
  return 0;
}

/** The control stream, or a microtunnel: checked, then dialled (after resolving if need be). */
static void on_open(struct tunnel *t, struct conn *c) {
  nghttp2_session *s = t->ng;
  int32_t sid = c->sid;
  struct open_req *r = c->req;
  if (strcmp(r->method, "POST") == 0 && strcmp(r->path, "/zcc/1/control") == 0) {
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    free(r);
    free(c);
    if (t->control_id > 0) return refuse_stream(t, sid, REASON_BAD_OPEN, "second control stream");
    t->control_id = sid;
    nghttp2_nv hdrs[] = {NV(":status", "200")};
    nghttp2_data_provider dp = {.source.ptr = t, .read_callback = control_read_cb};
    nghttp2_submit_response(s, sid, hdrs, 1, &dp);
    t->up = 1;
    emit("up %d", t->id);
    return;
  }
  uint32_t tag = 0;
  int udp = 0;
  const char *bad = parse_open(r, &tag, &udp);
  if (!bad && t->control_id <= 0) bad = "microtunnel before the control stream";
  uint32_t code = REASON_BAD_OPEN;
  if (!bad && tag_find(t, tag)) code = REASON_DUPLICATE_TAG, bad = "tag in use";
  if (bad) {
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    free(r);
    free(c);
    return refuse_stream(t, sid, code, bad);
  }
  st.accepted++;
  c->tag = tag;
  c->udp = (unsigned)udp;
  c->connecting = 1;
  c->opened_ms = now_ms();
  conn_link(c, t);
  struct conn **b = tag_bucket(t->id, tag);
  c->tag_next = *b;
  *b = c;
  resolve_conn(c);
}

static int on_frame_recv_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  struct tunnel *t = ud;
  tunnel_on_frame(t, f);
  if (f->hd.stream_id <= 0 || f->hd.stream_id == t->control_id) return 0;
  struct conn *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!c) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && !c->t) {
    on_open(t, c);
    c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!c) return 0;
  }
  conn_on_frame_end(c, f);
  return 0;
}

void connector_callbacks(nghttp2_session_callbacks *cb) {
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers_cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv_cb);
}

/**
 * Not dialled within connectMs (unresolved, or the server's SYN unanswered): refused as
 * unreachable. A refused open whose stream the edge still keeps open 5 s after our answer is
 * reset: it holds nothing useful. (An RST_STREAM NO_ERROR right behind the answer, as RFC 9113
 * §8.1 allows, made Node's HTTP/2 client drop the answer itself.)
 */
void connector_sweep_conn(struct conn *c, uint64_t now) {
  if (c->connecting && now - c->opened_ms > (uint64_t)connect_ms) refuse_conn(c, REASON_UNREACHABLE, "connect timeout");
  else if (c->answered && !c->established && now - c->active_ms > REFUSED_LINGER_MS) conn_abort(c, NGHTTP2_CANCEL);
}
