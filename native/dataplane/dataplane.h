// zcc-dataplane: the TCP (and, at the connector, UDP) data plane in native code
// (docs/architecture.md, "Native data plane"). Why C: in Node every relayed connection costs
// 300-1100 µs of CPU per hop (a net.Socket, an Http2Stream, their stream machinery), which is
// most of the path's connection setup overhead; the same work here is an accept or a connect, a
// HEADERS frame and a few system calls.
//
// One process, one thread, epoll, in one of two roles:
// * agent (agent.c): owns the intercept listener (IP_TRANSPARENT, 127.0.0.1) and one Z-Tunnel per
//   tenant (HTTP/2 client role), and splices each intercepted connection to a microtunnel it opens.
// * connector (connector.c): owns the connector's Z-Tunnel to the edge (HTTP/2 server role),
//   accepts the microtunnels the edge opens and dials the app servers.
// Z-Tunnels (tunnel.c): TLS 1.3, mutual, pinned CA, ALPN zcc/1, docs/protocol.md. Splicing a
// socket to a stream (splice.c) is the same in both roles. Policy, control messages and name
// resolution stay in Node, which drives this process through lines on stdin (main.c).
#ifndef ZCC_DATAPLANE_H
#define ZCC_DATAPLANE_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#define MAX_TUNNELS 64
#define SPLICE_BUFFER (256 * 1024)  // per direction, as SPLICE_BUFFER in src/protocol/splice.ts
#define DATAGRAM_QUEUE (1 << 20)    // DEFAULT_DATAGRAM_QUEUE in src/protocol/datagram.ts
#define STREAM_WINDOW (1 << 20)     // src/protocol/h2-settings.ts
#define SESSION_WINDOW (16 << 20)
#define MAX_STREAMS 20000
#define MAX_AUTHORITY 262  // a 253-character name, ':' and a port
// Reason codes of RST_STREAM and refusal statuses (RESET_REASONS in src/protocol/microtunnel-open.ts;
// reason_name and reason_status in util.c have the names and statuses of the ones used here).
#define REASON_UNREACHABLE 0x106
#define REASON_UPSTREAM_RESET 0x108
#define REASON_PEER_RESET 0x109
#define REASON_IDLE_TIMEOUT 0x10a
#define REASON_BAD_OPEN 0x10b
#define REASON_DUPLICATE_TAG 0x10c

enum role { ROLE_AGENT, ROLE_CONNECTOR };
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

/**
 * One microtunnel and the socket it is spliced to: the intercepted client at the agent, the app
 * server at the connector. `up` carries the socket's bytes towards the stream, `down` the
 * stream's bytes towards the socket, in both roles.
 */
struct conn {
  struct handle h;
  struct tunnel *t;
  int32_t sid;
  uint32_t tag;
  buf_t up;
  buf_t down;
  int status;  // agent: :status of the answer, 0 until it came
  unsigned client_eof : 1, remote_eof : 1, shut_wr : 1, established : 1, stream_closed : 1, dead : 1, reading : 1;
  unsigned udp : 1, connecting : 1, answered : 1, linked : 1, resetting : 1;
  uint64_t reset_asked_ms;  // agent: the edge was asked to reset the stream then (protocol.md §5.3)
  uint64_t opened_ms, active_ms;
  struct conn *next, *prev;  // the tunnel's list
  struct conn *dirty_next, *grave_next, *tag_next;
  unsigned dirty : 1;
  struct open_req *req;  // connector: the open's headers while they arrive
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
  uint64_t ping_sent_ms;  // keepalive PING outstanding since, 0 when none
  uint64_t ping_due_ms;   // when the next one goes
  char goaway[256];  // the edge's GOAWAY debug data (why it refused us), printable only
  int peer_resets;   // agent: the edge's hello announced reset-request
};

// main.c
extern enum role role;
extern int ep;
extern int debug;  // ZCC_DATAPLANE_DEBUG set: a line per reset, refusal and tunnel loss
extern long connect_ms, half_closed_idle_ms, open_idle_ms;
extern struct tunnel tunnels[MAX_TUNNELS];
extern struct stats {
  unsigned long accepted, refused, established, failed, active;
  unsigned long conns;  // connections held (linked to a tunnel), established or not
  unsigned long long bytes_up, bytes_down;  // socket -> stream, stream -> socket
} st;

// util.c
uint64_t now_ms(void);
void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int buf_reserve(buf_t *b, size_t more);
size_t buf_size(const buf_t *b);
int buf_append(buf_t *b, const uint8_t *d, size_t n);
void buf_free(buf_t *b);
void watch(struct handle *h, uint32_t events);
uint8_t *b64_decode(const char *s, size_t *out_len);
void emit_b64(const char *what, int id, const uint8_t *d, size_t n);
void close_with_rst(int fd);
const char *reason_name(uint32_t code);
const char *reason_status(uint32_t code);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}

// splice.c
void conn_link(struct conn *c, struct tunnel *t);
void mark_dirty(struct conn *c);
void reset_client(struct conn *c);
void conn_release(struct conn *c);
void conn_abort(struct conn *c, uint32_t code);
void conn_rst(struct conn *c, uint32_t code);
void conn_write_down(struct conn *c);
void conn_read_up(struct conn *c);
void conn_io(struct conn *c, uint32_t events);
void conn_established(struct conn *c);
void conn_on_frame_end(struct conn *c, const nghttp2_frame *f);
ssize_t up_read_cb(nghttp2_session *s, int32_t sid, uint8_t *out, size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud);
int on_data_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *ud);
int on_stream_close_cb(nghttp2_session *s, int32_t sid, uint32_t code, void *ud);
int process_dirty(void);
void bury(void);

// tunnel.c
void tunnel_open(int id, const char *host, int port, const char *servername, const char *ca64, const char *cert64, const char *key64, const char *hello64);
void tunnel_down(struct tunnel *t, const char *why);
void tunnel_flush(struct tunnel *t);
void tunnel_io(struct tunnel *t, uint32_t events);
void tunnel_send_control(struct tunnel *t, const uint8_t *d, size_t n);
void tunnel_keepalive(struct tunnel *t, uint64_t now);
void tunnel_on_frame(struct tunnel *t, const nghttp2_frame *f);
ssize_t control_read_cb(nghttp2_session *s, int32_t sid, uint8_t *out, size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud);

// agent.c
int agent_listen(int port, const char **why);
void agent_accept(void);
void agent_callbacks(nghttp2_session_callbacks *cb);
int agent_route(const char *ip, int tunnel, const char *host, const char *ranges);
void agent_unroute(const char *ip);
void agent_sweep_conn(struct conn *c, uint64_t now);
int agent_reset_via_edge(struct conn *c, uint32_t code);

// connector.c
void connector_callbacks(nghttp2_session_callbacks *cb);
void connector_connected(struct conn *c);
void connector_udp_down(struct conn *c);
void connector_udp_read(struct conn *c);
int connector_target(const char *host, int port, const char *ip, int target_port, long ttl_ms);
void connector_unresolved(const char *host, int port, const char *why);
void connector_reset(int tunnel, uint32_t tag, uint32_t code);
void connector_forget(struct conn *c);
void connector_sweep_conn(struct conn *c, uint64_t now);

#endif
