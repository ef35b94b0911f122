// zcc-dataplane: the agent's TCP data plane in native code (docs/architecture.md, "Native data
// plane"). Why C: in Node every intercepted connection costs 600-1100 µs of CPU in the agent
// (a net.Socket, an Http2Stream, their stream machinery), which is most of the path's connection
// setup overhead; the same work here is an accept, a HEADERS frame and a few system calls.
//
// One process, one thread, epoll. It owns the intercept listener (IP_TRANSPARENT, 127.0.0.1)
// and one Z-Tunnel per tenant (TLS 1.3, mutual, pinned CA, ALPN zcc/1, HTTP/2 client role,
// docs/protocol.md), and splices each intercepted connection to a microtunnel. Policy stays with
// the agent: it pushes the routes (synthetic IP -> tenant tunnel, app name, allowed ports), the
// tunnel credentials and the hello frame, and receives the control stream's bytes.
//
// Commands on stdin, one per line, fields separated by one space:
//   tunnel ID HOST PORT SERVERNAME CA_B64 CERT_B64 KEY_B64 HELLO_B64   connect a Z-Tunnel
//   send ID B64                                                        control bytes to the edge
//   close ID                                                           tear a tunnel down
//   route IP ID HOST RANGES      RANGES: 80-80,8000-8099 (TCP ports the app's segments allow)
//   unroute IP
//   stats
// Events on stdout, one per line:
//   listening PORT | up ID | control ID B64 | down ID REASON | stats k=v... | error WHAT
// Diagnostics go to stderr (ZCC_DATAPLANE_DEBUG=1: every reset and refusal; =/path: to that file).
// Secrets (the key) are never printed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_TUNNELS 64
#define SPLICE_BUFFER (256 * 1024)   // per direction, as SPLICE_BUFFER in src/protocol/splice.ts
#define STREAM_WINDOW (1 << 20)      // src/protocol/h2-settings.ts
#define SESSION_WINDOW (16 << 20)
#define MAX_STREAMS 20000
#define BIO_PAIR_SIZE (256 * 1024)
#define TLS_CHUNK (64 * 1024)
#define ROUTE_SLOTS 65536            // open addressing, power of two
#define MAX_RANGES 64
// Reason codes of RST_STREAM (RESET_REASONS in src/protocol/microtunnel-open.ts).
#define REASON_PEER_RESET 0x109
#define REASON_IDLE_TIMEOUT 0x10a

enum kind { K_CMD, K_LISTEN, K_TUNNEL, K_CONN };

struct handle {
  enum kind kind;
  int fd;
  uint32_t events;
};

typedef struct {
  uint8_t *p;
  size_t off, len, cap;
} buf_t;

struct tunnel;

struct conn {
  struct handle h;
  struct tunnel *t;
  int32_t sid;
  uint32_t tag;
  buf_t up;    // client -> microtunnel, waiting for nghttp2 to take it
  buf_t down;  // microtunnel -> client, waiting for the socket
  size_t down_unconsumed;
  int status;  // :status of the answer, 0 until it came
  unsigned client_eof : 1, remote_eof : 1, shut_wr : 1, established : 1, stream_closed : 1, dead : 1, reading : 1;
  uint64_t opened_ms, active_ms;
  struct conn *next, *prev;      // tunnel's list
  struct conn *dirty_next, *grave_next;
  unsigned dirty : 1;
};

struct tunnel {
  struct handle h;
  int id;
  int used, up, dead, handshaking;
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *net;  // network half of the BIO pair: ciphertext to and from the socket
  nghttp2_session *ng;
  int32_t control_id;
  buf_t control_out;
  uint32_t next_tag;
  struct conn *conns;
  char host[256], servername[256];
  int port;
};

struct range { uint16_t from, to; };
struct route {
  uint32_t ip;  // network order; 0 = empty slot, 1 = tombstone
  int tunnel;
  char host[254];
  int nranges;
  struct range ranges[MAX_RANGES];
};

static int ep;
static struct tunnel tunnels[MAX_TUNNELS];
static struct route *routes;
static struct handle cmd_h = {K_CMD, 0, 0}, listen_h = {K_LISTEN, -1, 0};
static uint32_t listen_ip;
static uint16_t listen_port;
static long connect_ms = 10000, half_closed_idle_ms = 6 * 60 * 1000;
static struct conn *dirty_head, *grave_head;
static struct { unsigned long accepted, refused, established, failed, active; } st;
static int debug;  // ZCC_DATAPLANE_DEBUG set: a line per reset, refusal and tunnel loss

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("zcc-dataplane: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  va_end(ap);
}

// ---- buffers ----

static int buf_reserve(buf_t *b, size_t more) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + more <= b->cap) return 0;
  if (b->off > 0) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + more <= b->cap) return 0;
  }
  size_t cap = b->cap ? b->cap : 16384;
  while (cap < b->len + more) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}
static size_t buf_size(const buf_t *b) { return b->len - b->off; }
static int buf_append(buf_t *b, const uint8_t *d, size_t n) {
  if (buf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}
static void buf_free(buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

// ---- epoll ----

/** Sets what wakes us for `h`; none at all takes it out of epoll (no spinning on a HUP). */
static void watch(struct handle *h, uint32_t events) {
  if (h->events == events || h->fd < 0) return;
  struct epoll_event e = {.events = events, .data.ptr = h};
  int op = !h->events ? EPOLL_CTL_ADD : events ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
  if (epoll_ctl(ep, op, h->fd, &e) != 0) logf_("epoll_ctl(%d): %s", h->fd, strerror(errno));
  h->events = events;
}

// ---- base64 ----

static uint8_t *b64_decode(const char *s, size_t *out_len) {
  size_t n = strlen(s);
  if (n % 4 != 0) return NULL;
  uint8_t *out = malloc(n / 4 * 3 + 1);
  if (!out) return NULL;
  int m = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
  if (m < 0) {
    free(out);
    return NULL;
  }
  if (n >= 1 && s[n - 1] == '=') m--;
  if (n >= 2 && s[n - 2] == '=') m--;
  *out_len = (size_t)m;
  out[m] = 0;
  return out;
}

static void emit_b64(const char *what, int id, const uint8_t *d, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out) return;
  EVP_EncodeBlock((unsigned char *)out, d, (int)n);
  emit("%s %d %s", what, id, out);
  free(out);
}

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

// ---- connections ----

static void mark_dirty(struct conn *c) {
  if (c->dirty) return;
  c->dirty = 1;
  c->dirty_next = dirty_head;
  dirty_head = c;
}

/** Closes with an RST: a FIN would make a cut transfer look complete. */
static void close_with_rst(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

static void reset_client(struct conn *c) {
  if (c->h.fd < 0) return;
  close_with_rst(c->h.fd);
  c->h.fd = -1;
}

static void conn_unlink(struct conn *c) {
  if (c->prev) c->prev->next = c->next;
  else if (c->t && c->t->conns == c) c->t->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

/**
 * Ends a connection. The memory is freed after the current epoll batch: a later event of the
 * same batch, or the dirty list, may still point at it.
 */
static void conn_release(struct conn *c) {
  if (c->dead) return;
  if (c->h.fd >= 0) {
    close(c->h.fd);
    c->h.fd = -1;
  }
  c->dead = 1;
  if (c->established) st.active--;
  conn_unlink(c);
  c->grave_next = grave_head;
  grave_head = c;
}

static void bury(void) {
  while (grave_head) {
    struct conn *c = grave_head;
    grave_head = c->grave_next;
    buf_free(&c->up);
    buf_free(&c->down);
    free(c);
  }
}

static void tunnel_flush(struct tunnel *t);

/** Resets both sides: the client with an RST, the microtunnel with RST_STREAM `code`. */
static void conn_abort(struct conn *c, uint32_t code) {
  if (debug) logf_("abort tag %u code 0x%x errno %s", c->tag, code, strerror(errno));
  reset_client(c);
  if (!c->stream_closed && c->sid > 0 && c->t->ng) {
    nghttp2_session_set_stream_user_data(c->t->ng, c->sid, NULL);
    nghttp2_submit_rst_stream(c->t->ng, NGHTTP2_FLAG_NONE, c->sid, code);
    c->stream_closed = 1;
  }
  conn_release(c);
}

/** Writes what the microtunnel delivered to the client and gives the window back for it. */
static void conn_write_down(struct conn *c) {
  while (buf_size(&c->down) > 0 && c->h.fd >= 0) {
    ssize_t n = write(c->h.fd, c->down.p + c->down.off, buf_size(&c->down));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_abort(c, REASON_PEER_RESET);
      return;
    }
    c->down.off += (size_t)n;
    c->active_ms = now_ms();
    if (!c->stream_closed && c->t->ng) nghttp2_session_consume_stream(c->t->ng, c->sid, (size_t)n);
  }
  if (c->h.fd < 0) return;
  if (buf_size(&c->down) == 0 && c->remote_eof && !c->shut_wr) {
    shutdown(c->h.fd, SHUT_WR);
    c->shut_wr = 1;
    if (!c->active_ms) c->active_ms = now_ms();
  }
  watch(&c->h, (c->reading ? EPOLLIN : 0) | (buf_size(&c->down) ? EPOLLOUT : 0));
  // The stream is gone and its FIN delivered: close the client too, like a TCP peer's close().
  if (c->stream_closed && c->shut_wr) conn_release(c);
}

static void conn_read_up(struct conn *c) {
  while (buf_size(&c->up) < SPLICE_BUFFER && !c->client_eof) {
    if (buf_reserve(&c->up, SPLICE_BUFFER - buf_size(&c->up))) break;
    ssize_t n = read(c->h.fd, c->up.p + c->up.len, SPLICE_BUFFER - buf_size(&c->up));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_abort(c, REASON_PEER_RESET);
      return;
    }
    if (n == 0) c->client_eof = 1;
    c->up.len += (size_t)n;
    c->active_ms = now_ms();
  }
  c->reading = !c->client_eof && buf_size(&c->up) < SPLICE_BUFFER;
  if (!c->stream_closed) nghttp2_session_resume_data(c->t->ng, c->sid);
  watch(&c->h, (c->reading ? EPOLLIN : 0) | (buf_size(&c->down) ? EPOLLOUT : 0));
}

static ssize_t up_read_cb(nghttp2_session *s, int32_t sid, uint8_t *out, size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)s, (void)sid, (void)ud;
  struct conn *c = src->ptr;
  size_t n = buf_size(&c->up);
  if (n > len) n = len;
  memcpy(out, c->up.p + c->up.off, n);
  c->up.off += n;
  if (buf_size(&c->up) == 0 && c->client_eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
  else if (n == 0) return NGHTTP2_ERR_DEFERRED;
  if (!c->reading && !c->client_eof && buf_size(&c->up) < SPLICE_BUFFER && c->h.fd >= 0) {
    c->reading = 1;
    watch(&c->h, EPOLLIN | (buf_size(&c->down) ? EPOLLOUT : 0));
  }
  return (ssize_t)n;
}

static ssize_t control_read_cb(nghttp2_session *s, int32_t sid, uint8_t *out, size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)s, (void)sid, (void)flags, (void)ud;
  struct tunnel *t = src->ptr;
  size_t n = buf_size(&t->control_out);
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  if (n > len) n = len;
  memcpy(out, t->control_out.p + t->control_out.off, n);
  t->control_out.off += n;
  return (ssize_t)n;
}

static void on_accept(void) {
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
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}
    nghttp2_nv hdrs[] = {NV(":method", "CONNECT"), NV(":authority", authority), NV("zcc-tag", tag), NV("zcc-proto", "tcp")};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = up_read_cb};
    c->sid = nghttp2_submit_request(t->ng, NULL, hdrs, 4, &dp, c);
    if (c->sid < 0) {
      st.refused++;
      reset_client(c);
      free(c);
      continue;
    }
    c->next = t->conns;
    if (t->conns) t->conns->prev = c;
    t->conns = c;
    watch(&c->h, EPOLLIN);
    // The client's first bytes are often already here: send them with the HEADERS.
    conn_read_up(c);
    tunnel_flush(t);
  }
}

// ---- nghttp2 callbacks ----

static int on_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud) {
  (void)flags, (void)ud;
  if (f->hd.type != NGHTTP2_HEADERS || nl != 7 || memcmp(name, ":status", 7) != 0) return 0;
  struct conn *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (c && vl == 3) c->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
  return 0;
}

static int on_frame_recv_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  struct tunnel *t = ud;
  if (f->hd.stream_id == t->control_id && f->hd.type == NGHTTP2_HEADERS && !t->up) {
    t->up = 1;
    emit("up %d", t->id);
    return 0;
  }
  struct conn *c = f->hd.stream_id > 0 ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id) : NULL;
  if (!c) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    if (c->status == 200) {
      c->established = 1;
      st.established++;
      st.active++;
    } else {
      // Refused by the edge (no policy, no connector, unreachable...): the client gets an RST.
      st.failed++;
      conn_abort(c, NGHTTP2_CANCEL);
      return 0;
    }
  }
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
    c->remote_eof = 1;
    // Shut down after this read is processed: an RST_STREAM right behind the END_STREAM is a reset.
    mark_dirty(c);
  }
  return 0;
}

static int on_data_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  struct tunnel *t = ud;
  nghttp2_session_consume_connection(s, len);
  if (sid == t->control_id) {
    nghttp2_session_consume_stream(s, sid, len);
    emit_b64("control", t->id, data, len);
    return 0;
  }
  struct conn *c = nghttp2_session_get_stream_user_data(s, sid);
  if (!c || c->h.fd < 0) {
    nghttp2_session_consume_stream(s, sid, len);
    return 0;
  }
  size_t written = 0;
  if (buf_size(&c->down) == 0) {
    ssize_t n = write(c->h.fd, data, len);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      nghttp2_session_consume_stream(s, sid, len);
      conn_abort(c, REASON_PEER_RESET);
      return 0;
    }
    if (n > 0) written = (size_t)n;
  }
  if (written) nghttp2_session_consume_stream(s, sid, written);
  if (written < len) {
    buf_append(&c->down, data + written, len - written);
    watch(&c->h, (c->reading ? EPOLLIN : 0) | EPOLLOUT);
  }
  c->active_ms = now_ms();
  return 0;
}

static int on_stream_close_cb(nghttp2_session *s, int32_t sid, uint32_t code, void *ud) {
  struct tunnel *t = ud;
  if (sid == t->control_id) {
    t->dead = 1;  // the control stream lives as long as the Z-Tunnel
    return 0;
  }
  struct conn *c = nghttp2_session_get_stream_user_data(s, sid);
  if (!c) return 0;
  if (debug) logf_("stream close tag %u code 0x%x established %d", c->tag, code, c->established);
  c->stream_closed = 1;
  if (code != NGHTTP2_NO_ERROR || !c->established) {
    if (!c->established) st.failed++;
    reset_client(c);
    conn_release(c);
    return 0;
  }
  mark_dirty(c);
  return 0;
}

// ---- TLS and the tunnel ----

static void tunnel_down(struct tunnel *t, const char *why) {
  if (!t->used) return;
  if (debug) logf_("tunnel %d down: %s", t->id, why);
  for (struct conn *c = t->conns, *n; c; c = n) {
    n = c->next;
    c->stream_closed = 1;
    reset_client(c);
    conn_release(c);
  }
  if (t->ng) nghttp2_session_del(t->ng);
  if (t->ssl) SSL_free(t->ssl);  // frees the internal half of the BIO pair
  if (t->net) BIO_free(t->net);
  if (t->ctx) SSL_CTX_free(t->ctx);
  if (t->h.fd >= 0) close(t->h.fd);
  buf_free(&t->control_out);
  int id = t->id;
  memset(t, 0, sizeof *t);
  t->h.fd = -1;
  emit("down %d %s", id, why);
}

/** Moves ciphertext from the BIO pair to the socket. Returns -1 when the socket failed. */
static int net_send(struct tunnel *t) {
  for (;;) {
    char *p;
    int n = BIO_nread0(t->net, &p);
    if (n <= 0) return 0;
    ssize_t w = write(t->h.fd, p, (size_t)n);
    if (w < 0) return errno == EAGAIN || errno == EINTR ? 1 : -1;
    BIO_nread(t->net, &p, (int)w);
    if (w < n) return 1;
  }
}

static const char *ssl_error(void) {
  static char buf[256];
  unsigned long e = ERR_get_error();
  if (!e) return "connection closed";
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

/** Why an SSL_read or SSL_write returning `r` failed, for the `down` event. */
static const char *ssl_failure(struct tunnel *t, const char *op, int r) {
  static char buf[400];
  int e = SSL_get_error(t->ssl, r);
  const char *what = e == SSL_ERROR_ZERO_RETURN ? "the edge closed TLS" : e == SSL_ERROR_SYSCALL ? "I/O error" : e == SSL_ERROR_WANT_WRITE ? "TLS buffer full" : "TLS error";
  snprintf(buf, sizeof buf, "%s: %s (%d): %s [pending %ld guarantee %ld]", op, what, e, ssl_error(), (long)BIO_ctrl_pending(t->net), (long)BIO_ctrl_get_write_guarantee(SSL_get_wbio(t->ssl)));
  return buf;
}

/** nghttp2 -> TLS -> socket, gathering frames so a TLS record is full-sized. */
static void tunnel_flush(struct tunnel *t) {
  if (!t->used || t->handshaking || !t->ng) return;
  static uint8_t plain[TLS_CHUNK];
  int blocked = 0;
  for (;;) {
    int r = net_send(t);
    if (r < 0) return tunnel_down(t, "socket write failed");
    if (r > 0) {
      blocked = 1;
      break;
    }
    size_t n = 0;
    while (n < TLS_CHUNK) {
      const uint8_t *d;
      ssize_t m = nghttp2_session_mem_send(t->ng, &d);
      if (m < 0) return tunnel_down(t, nghttp2_strerror((int)m));
      if (m == 0) break;
      if (n + (size_t)m > TLS_CHUNK) {
        // Does not fit: seal what we have, then start the next chunk with this frame. At most
        // two chunks go into the BIO pair before it is drained to the socket again.
        int w;
        if (n && (w = SSL_write(t->ssl, plain, (int)n)) <= 0) return tunnel_down(t, ssl_failure(t, "SSL_write", w));
        n = 0;
        if ((size_t)m > TLS_CHUNK) {
          if ((w = SSL_write(t->ssl, d, (int)m)) <= 0) return tunnel_down(t, ssl_failure(t, "SSL_write", w));
          break;
        }
        memcpy(plain, d, (size_t)m);
        n = (size_t)m;
        break;
      }
      memcpy(plain + n, d, (size_t)m);
      n += (size_t)m;
    }
    if (n == 0) break;
    int w = SSL_write(t->ssl, plain, (int)n);
    if (w <= 0) return tunnel_down(t, ssl_failure(t, "SSL_write", w));
  }
  watch(&t->h, EPOLLIN | (blocked ? EPOLLOUT : 0));
  if (t->dead) tunnel_down(t, "control stream closed");
}

static void process_dirty(void) {
  while (dirty_head) {
    struct conn *c = dirty_head;
    dirty_head = c->dirty_next;
    c->dirty = 0;
    if (!c->dead) conn_write_down(c);
  }
}

static void tunnel_start_h2(struct tunnel *t) {
  const unsigned char *alpn;
  unsigned alpn_len;
  SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
  if (alpn_len != 5 || memcmp(alpn, "zcc/1", 5) != 0) return tunnel_down(t, "edge did not select ALPN zcc/1");
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close_cb);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  // Window given back only as the client takes the bytes: a slow reader holds its own window.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt, MAX_STREAMS);
  int rv = nghttp2_session_client_new2(&t->ng, cb, t, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv) return tunnel_down(t, "nghttp2 session");
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16 << 10},
  };
  nghttp2_submit_settings(t->ng, NGHTTP2_FLAG_NONE, iv, 4);
  nghttp2_session_set_local_window_size(t->ng, NGHTTP2_FLAG_NONE, 0, SESSION_WINDOW);
  nghttp2_nv hdrs[] = {NV(":method", "POST"), NV(":path", "/zcc/1/control"), NV(":scheme", "http"), NV(":authority", "ztunnel.invalid")};
  nghttp2_data_provider dp = {.source.ptr = t, .read_callback = control_read_cb};
  t->control_id = nghttp2_submit_request(t->ng, NULL, hdrs, 4, &dp, NULL);
  if (t->control_id < 0) return tunnel_down(t, "control stream");
  tunnel_flush(t);
}

static void tunnel_io(struct tunnel *t, uint32_t events) {
  if (events & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(t->h.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return tunnel_down(t, strerror(err));
  }
  if (events & EPOLLOUT) {
    if (net_send(t) < 0) return tunnel_down(t, "socket write failed");
  }
  // Socket -> BIO pair -> TLS.
  int eof = 0;
  for (;;) {
    char *p;
    int space = BIO_nwrite0(t->net, &p);
    if (space <= 0) break;
    ssize_t n = read(t->h.fd, p, (size_t)space);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return tunnel_down(t, strerror(errno));
    }
    if (n == 0) {
      if (t->handshaking) return tunnel_down(t, "edge closed during the TLS handshake");
      eof = 1;  // the records already buffered are still delivered below
      break;
    }
    BIO_nwrite(t->net, &p, (int)n);
    if (n < space) break;
  }
  if (t->handshaking) {
    int r = SSL_do_handshake(t->ssl);
    if (net_send(t) < 0) return tunnel_down(t, "socket write failed");
    if (r == 1) {
      t->handshaking = 0;
      tunnel_start_h2(t);
      if (!t->used) return;
    } else {
      int e = SSL_get_error(t->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        long v = SSL_get_verify_result(t->ssl);
        char why[320];
        snprintf(why, sizeof why, "TLS handshake failed: %s%s%s", ssl_error(), v != X509_V_OK ? ": " : "", v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
        return tunnel_down(t, why);
      }
      watch(&t->h, EPOLLIN | (BIO_ctrl_pending(t->net) ? EPOLLOUT : 0));
      return;
    }
  }
  static uint8_t plain[TLS_CHUNK];
  for (;;) {
    int m = SSL_read(t->ssl, plain, sizeof plain);
    if (m <= 0) {
      int e = SSL_get_error(t->ssl, m);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      return tunnel_down(t, ssl_failure(t, "SSL_read", m));
    }
    ssize_t rv = nghttp2_session_mem_recv(t->ng, plain, (size_t)m);
    if (rv < 0) return tunnel_down(t, nghttp2_strerror((int)rv));
    if (!t->used) return;
  }
  process_dirty();
  if (eof) return tunnel_down(t, "edge closed the Z-Tunnel");
  tunnel_flush(t);
}

static int load_pem(SSL_CTX *ctx, const uint8_t *ca, size_t ca_len, const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len, const char **why) {
  X509_STORE *store = X509_STORE_new();
  BIO *b = BIO_new_mem_buf(ca, (int)ca_len);
  X509 *x;
  int n = 0;
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
    X509_STORE_add_cert(store, x);
    X509_free(x);
    n++;
  }
  BIO_free(b);
  ERR_clear_error();
  SSL_CTX_set_cert_store(ctx, store);  // the pinned CA is the only trust anchor
  if (!n) return *why = "no CA certificate", -1;
  b = BIO_new_mem_buf(cert, (int)cert_len);
  x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
    BIO_free(b);
    X509_free(x);
    return *why = "bad client certificate", -1;
  }
  X509_free(x);
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) SSL_CTX_add0_chain_cert(ctx, x);
  BIO_free(b);
  ERR_clear_error();
  b = BIO_new_mem_buf(key, (int)key_len);
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  if (!k || SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    EVP_PKEY_free(k);
    return *why = "bad private key", -1;
  }
  EVP_PKEY_free(k);
  return 0;
}

static void tunnel_open(int id, const char *host, int port, const char *servername, const char *ca64, const char *cert64, const char *key64, const char *hello64) {
  if (id < 0 || id >= MAX_TUNNELS) return emit("error tunnel id %d out of range", id);
  struct tunnel *t = &tunnels[id];
  if (t->used) tunnel_down(t, "replaced");
  memset(t, 0, sizeof *t);
  t->h = (struct handle){K_TUNNEL, -1, 0};
  t->id = id;
  t->used = 1;
  t->next_tag = 1;
  t->port = port;
  snprintf(t->host, sizeof t->host, "%s", host);
  snprintf(t->servername, sizeof t->servername, "%s", servername);
  size_t ca_len, cert_len, key_len, hello_len;
  uint8_t *ca = b64_decode(ca64, &ca_len), *cert = b64_decode(cert64, &cert_len), *key = b64_decode(key64, &key_len), *hello = b64_decode(hello64, &hello_len);
  const char *why = NULL;
  if (!ca || !cert || !key || !hello) why = "bad base64 in tunnel command";
  if (!why) {
    t->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    load_pem(t->ctx, ca, ca_len, cert, cert_len, key, key_len, &why);
  }
  if (key) OPENSSL_cleanse(key, key_len);
  free(ca), free(cert), free(key);
  if (!why) buf_append(&t->control_out, hello, hello_len);
  free(hello);
  if (!why) {
    t->ssl = SSL_new(t->ctx);
    BIO *internal;
    BIO_new_bio_pair(&internal, BIO_PAIR_SIZE, &t->net, BIO_PAIR_SIZE);
    SSL_set_bio(t->ssl, internal, internal);
    SSL_set_connect_state(t->ssl);
    SSL_set_alpn_protos(t->ssl, (const unsigned char *)"\x05zcc/1", 6);
    struct in_addr a;
    if (inet_pton(AF_INET, servername, &a) == 1) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), servername);
    } else {
      SSL_set_tlsext_host_name(t->ssl, servername);
      SSL_set1_host(t->ssl, servername);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) why = "tunnel host must be an IPv4 address";
    else {
      t->h.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(t->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connect(t->h.fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) why = strerror(errno);
    }
  }
  if (why) return tunnel_down(t, why);
  t->handshaking = 1;
  SSL_do_handshake(t->ssl);
  watch(&t->h, EPOLLIN | EPOLLOUT);
}

// ---- commands ----

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

static void command(char *line) {
  char *argv[10];
  int argc = 0;
  for (char *tok = strtok(line, " "); tok && argc < 10; tok = strtok(NULL, " ")) argv[argc++] = tok;
  if (argc == 0) return;
  const char *cmd = argv[0];
  if (strcmp(cmd, "tunnel") == 0 && argc == 9) {
    tunnel_open(atoi(argv[1]), argv[2], atoi(argv[3]), argv[4], argv[5], argv[6], argv[7], argv[8]);
  } else if (strcmp(cmd, "send") == 0 && argc == 3) {
    int id = atoi(argv[1]);
    size_t n;
    uint8_t *d = b64_decode(argv[2], &n);
    if (!d || id < 0 || id >= MAX_TUNNELS || !tunnels[id].used || !tunnels[id].ng) {
      free(d);
      return emit("error send: no such tunnel or bad base64");
    }
    buf_append(&tunnels[id].control_out, d, n);
    free(d);
    nghttp2_session_resume_data(tunnels[id].ng, tunnels[id].control_id);
    tunnel_flush(&tunnels[id]);
  } else if (strcmp(cmd, "close") == 0 && argc == 2) {
    int id = atoi(argv[1]);
    if (id >= 0 && id < MAX_TUNNELS && tunnels[id].used) tunnel_down(&tunnels[id], "closed by the agent");
  } else if (strcmp(cmd, "route") == 0 && argc == 5) {
    struct in_addr a;
    if (inet_pton(AF_INET, argv[1], &a) != 1 || a.s_addr <= 1) return emit("error route: bad IP %s", argv[1]);
    struct route tmp = {.ip = a.s_addr, .tunnel = atoi(argv[2])};
    if (strlen(argv[3]) >= sizeof tmp.host || parse_ranges(argv[4], &tmp)) return emit("error route: bad host or port ranges for %s", argv[1]);
    snprintf(tmp.host, sizeof tmp.host, "%s", argv[3]);
    struct route *r = route_slot(a.s_addr);
    if (!r) return emit("error route: table full");
    *r = tmp;
  } else if (strcmp(cmd, "unroute") == 0 && argc == 2) {
    struct in_addr a;
    struct route *r = inet_pton(AF_INET, argv[1], &a) == 1 ? route_find(a.s_addr) : NULL;
    if (r) r->ip = 1;  // tombstone keeps probe chains intact
  } else if (strcmp(cmd, "stats") == 0) {
    emit("stats accepted=%lu refused=%lu established=%lu failed=%lu active=%lu", st.accepted, st.refused, st.established, st.failed, st.active);
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
    if (n == 0) exit(0);  // the agent is gone: so are we (the kernel resets every connection)
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

// ---- timeouts ----

static void sweep(void) {
  uint64_t now = now_ms();
  for (int i = 0; i < MAX_TUNNELS; i++) {
    struct tunnel *t = &tunnels[i];
    if (!t->used || !t->ng) continue;
    for (struct conn *c = t->conns, *n; c; c = n) {
      n = c->next;
      if (!c->established && now - c->opened_ms > (uint64_t)connect_ms) {
        st.failed++;
        conn_abort(c, NGHTTP2_CANCEL);
      } else if (half_closed_idle_ms > 0 && (c->client_eof || c->shut_wr) && now - c->active_ms > (uint64_t)half_closed_idle_ms) {
        conn_abort(c, REASON_IDLE_TIMEOUT);
      }
    }
    tunnel_flush(t);
  }
}

int main(int argc, char **argv) {
  // Usage: zcc-dataplane LISTEN_PORT [CONNECT_MS HALF_CLOSED_IDLE_MS]
  signal(SIGPIPE, SIG_IGN);
  const char *debug_to = getenv("ZCC_DATAPLANE_DEBUG");
  debug = debug_to != NULL;
  if (debug && debug_to[0] == '/' && !freopen(debug_to, "a", stderr)) return 1;
  int port = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2) connect_ms = atol(argv[2]);
  if (argc > 3) half_closed_idle_ms = atol(argv[3]);
  routes = calloc(ROUTE_SLOTS, sizeof *routes);
  ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < MAX_TUNNELS; i++) tunnels[i].h.fd = -1;
  listen_h.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_h.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // TPROXY hands this listener connections for any synthetic IP:port (needs CAP_NET_ADMIN).
  if (setsockopt(listen_h.fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) logf_("IP_TRANSPARENT: %s (TPROXY will not reach this listener)", strerror(errno));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (bind(listen_h.fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(listen_h.fd, 4096) != 0 || getsockname(listen_h.fd, (struct sockaddr *)&sa, &len) != 0) {
    emit("error listen: %s", strerror(errno));
    return 1;
  }
  listen_ip = sa.sin_addr.s_addr;
  listen_port = ntohs(sa.sin_port);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  watch(&cmd_h, EPOLLIN);
  watch(&listen_h, EPOLLIN);
  emit("listening %u", listen_port);
  uint64_t last_sweep = now_ms();
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      struct handle *h = evs[i].data.ptr;
      uint32_t e = evs[i].events;
      if (h->kind == K_CMD) on_command_input();
      else if (h->kind == K_LISTEN) on_accept();
      else if (h->kind == K_TUNNEL) {
        struct tunnel *t = (struct tunnel *)h;
        if (t->used) tunnel_io(t, e);
      } else {
        struct conn *c = (struct conn *)h;
        if (c->dead || c->h.fd < 0) continue;
        struct tunnel *t = c->t;
        if (e & (EPOLLOUT | EPOLLERR)) conn_write_down(c);
        if (!c->dead && c->h.fd >= 0 && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->reading) conn_read_up(c);
        process_dirty();
        tunnel_flush(t);
      }
    }
    bury();
    if (now_ms() - last_sweep >= 1000) {
      last_sweep = now_ms();
      sweep();
    }
  }
}
