// Z-Tunnels: TLS 1.3 through a BIO pair (ciphertext in and out of a non-blocking socket we
// own), HTTP/2 on top (nghttp2, client role at the agent, server role at the connector), the
// control stream whose bytes Node reads and writes, and the keepalive of docs/protocol.md §6.
#include "dataplane.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>


#define BIO_PAIR_SIZE (256 * 1024)
#define TLS_CHUNK (64 * 1024)
#define PING_EVERY_MS 15000
#define PING_TIMEOUT_MS 10000

void tunnel_down(struct tunnel *t, const char *why) {
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
  char refused[sizeof t->goaway + 32] = "";
  if (t->goaway[0]) snprintf(refused, sizeof refused, "refused by the edge: %s", t->goaway);
  memset(t, 0, sizeof *t);
  t->h.fd = -1;
  emit("down %d %s", id, refused[0] ? refused : why);
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
void tunnel_flush(struct tunnel *t) {
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
    if (n == 0) {
      // Streams that closed while we sent (our END_STREAM was their last frame) finish their
      // socket side now, not at the tunnel's next read; that may queue frames (window updates).
      if (process_dirty()) continue;
      break;
    }
    int w = SSL_write(t->ssl, plain, (int)n);
    if (w <= 0) return tunnel_down(t, ssl_failure(t, "SSL_write", w));
  }
  watch(&t->h, EPOLLIN | (blocked ? EPOLLOUT : 0));
  if (t->dead) tunnel_down(t, "control stream closed");
}

ssize_t control_read_cb(nghttp2_session *s, int32_t sid, uint8_t *out, size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)s, (void)sid, (void)flags, (void)ud;
  struct tunnel *t = src->ptr;
  size_t n = buf_size(&t->control_out);
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  if (n > len) n = len;
  memcpy(out, t->control_out.p + t->control_out.off, n);
  t->control_out.off += n;
  return (ssize_t)n;
}

/**
 * Queues control frames (from Node, or the agent's reset requests); they wait for the control
 * stream if it is not open yet, and leave with the event loop's flush.
 */
void tunnel_send_control(struct tunnel *t, const uint8_t *d, size_t n) {
  buf_append(&t->control_out, d, n);
  if (t->ng && t->control_id > 0) nghttp2_session_resume_data(t->ng, t->control_id);
}

/** Session-level frames either role cares about: our PING's answer, the edge's GOAWAY reason. */
void tunnel_on_frame(struct tunnel *t, const nghttp2_frame *f) {
  if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) t->ping_sent_ms = 0;
  if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR && f->goaway.opaque_data_len) {
    size_t n = f->goaway.opaque_data_len < sizeof t->goaway - 1 ? f->goaway.opaque_data_len : sizeof t->goaway - 1;
    for (size_t i = 0; i < n; i++) {
      uint8_t ch = f->goaway.opaque_data[i];
      t->goaway[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    t->goaway[n] = 0;
  }
}

/** A PING every 15 s; one unanswered for 10 s means the edge is gone (protocol.md §6). */
void tunnel_keepalive(struct tunnel *t, uint64_t now) {
  if (!t->used || !t->ng || !t->up) return;
  if (t->ping_sent_ms && now - t->ping_sent_ms > PING_TIMEOUT_MS) return tunnel_down(t, "keepalive: no PING answer within 10 s");
  if (t->ping_sent_ms || now < t->ping_due_ms) return;
  nghttp2_submit_ping(t->ng, NGHTTP2_FLAG_NONE, NULL);
  t->ping_sent_ms = now;
  t->ping_due_ms = now + PING_EVERY_MS;
}

static void tunnel_start_h2(struct tunnel *t) {
  const unsigned char *alpn;
  unsigned alpn_len;
  SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
  if (alpn_len != 5 || memcmp(alpn, "zcc/1", 5) != 0) return tunnel_down(t, "edge did not select ALPN zcc/1");
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close_cb);
  if (role == ROLE_AGENT) agent_callbacks(cb);
  else connector_callbacks(cb);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  // Window given back only as the socket takes the bytes: a slow reader holds its own window.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt, MAX_STREAMS);
  int rv = role == ROLE_AGENT ? nghttp2_session_client_new2(&t->ng, cb, t, opt) : nghttp2_session_server_new2(&t->ng, cb, t, opt);
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
  t->ping_due_ms = now_ms() + PING_EVERY_MS;
  if (role == ROLE_AGENT) {
    // The client opens the control stream (protocol.md §4); at the connector the edge does.
    nghttp2_nv hdrs[] = {NV(":method", "POST"), NV(":path", "/zcc/1/control"), NV(":scheme", "http"), NV(":authority", "ztunnel.invalid")};
    nghttp2_data_provider dp = {.source.ptr = t, .read_callback = control_read_cb};
    t->control_id = nghttp2_submit_request(t->ng, NULL, hdrs, 4, &dp, NULL);
    if (t->control_id < 0) return tunnel_down(t, "control stream");
  }
  tunnel_flush(t);
}

void tunnel_io(struct tunnel *t, uint32_t events) {
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

/**
 * Dials the edge. `hello64` ("-" for none) is put on the control stream first; the connector's
 * Node side writes its hello through `send` instead, as its control channel does.
 */
void tunnel_open(int id, const char *host, int port, const char *servername, const char *ca64, const char *cert64, const char *key64, const char *hello64) {
  if (id < 0 || id >= MAX_TUNNELS) return emit("error tunnel id %d out of range", id);
  struct tunnel *t = &tunnels[id];
  if (t->used) tunnel_down(t, "replaced");
  memset(t, 0, sizeof *t);
  t->h = (struct handle){K_TUNNEL, -1, 0};
  t->id = id;
  t->used = 1;
  t->next_tag = 1;
  size_t ca_len, cert_len, key_len, hello_len = 0;
  int no_hello = strcmp(hello64, "-") == 0;
  uint8_t *ca = b64_decode(ca64, &ca_len), *cert = b64_decode(cert64, &cert_len), *key = b64_decode(key64, &key_len), *hello = no_hello ? NULL : b64_decode(hello64, &hello_len);
  const char *why = NULL;
  if (!ca || !cert || !key || (!hello && !no_hello)) why = "bad base64 in tunnel command";
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
  if (!why && hello) buf_append(&t->control_out, hello, hello_len);
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
