// A socket spliced to a microtunnel, in either role: the socket's bytes go up the stream, the
// stream's bytes down to the socket, each direction bounded and half-closed on its own, a reset
// on either side a reset on the other.
#include "dataplane.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


static struct conn *dirty_head, *grave_head;

/** The RST_STREAM code when our socket failed: the client reset (agent), the server reset (connector). */
static uint32_t local_reset_code(void) { return role == ROLE_AGENT ? REASON_PEER_RESET : REASON_UPSTREAM_RESET; }

static void rewatch(struct conn *c) { watch(&c->h, (c->reading ? EPOLLIN : 0) | (buf_size(&c->down) ? EPOLLOUT : 0)); }

void conn_link(struct conn *c, struct tunnel *t) {
  c->t = t;
  c->linked = 1;
  st.conns++;
  c->next = t->conns;
  if (t->conns) t->conns->prev = c;
  t->conns = c;
}

void mark_dirty(struct conn *c) {
  if (c->dirty) return;
  c->dirty = 1;
  c->dirty_next = dirty_head;
  dirty_head = c;
}

void reset_client(struct conn *c) {
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
void conn_release(struct conn *c) {
  if (c->dead) return;
  if (c->h.fd >= 0) {
    close(c->h.fd);
    c->h.fd = -1;
  }
  c->dead = 1;
  if (c->established) st.active--;
  if (c->linked) st.conns--;
  if (role == ROLE_CONNECTOR) connector_forget(c);
  conn_unlink(c);
  c->grave_next = grave_head;
  grave_head = c;
}

void bury(void) {
  while (grave_head) {
    struct conn *c = grave_head;
    grave_head = c->grave_next;
    buf_free(&c->up);
    buf_free(&c->down);
    free(c->req);
    free(c);
  }
}

/**
 * Resets both sides: the socket with an RST, the microtunnel with RST_STREAM `code` — at the
 * agent, by the edge at our request when it takes them (agent_reset_via_edge).
 */
void conn_abort(struct conn *c, uint32_t code) {
  if (debug) logf_("abort tag %u code 0x%x errno %s", c->tag, code, strerror(errno));
  reset_client(c);
  if (role == ROLE_AGENT && agent_reset_via_edge(c, code)) return;
  conn_rst(c, code);
}

/** Our own RST_STREAM `code`, then the connection is released. */
void conn_rst(struct conn *c, uint32_t code) {
  reset_client(c);
  if (!c->stream_closed && c->sid > 0 && c->t->ng) {
    nghttp2_session_set_stream_user_data(c->t->ng, c->sid, NULL);
    nghttp2_submit_rst_stream(c->t->ng, NGHTTP2_FLAG_NONE, c->sid, code);
    c->stream_closed = 1;
  }
  conn_release(c);
}

/** The far end's END_STREAM (on DATA or HEADERS): a FIN for the socket. */
void conn_on_frame_end(struct conn *c, const nghttp2_frame *f) {
  if ((f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return;
  c->remote_eof = 1;
  // Shut down after this read is processed: an RST_STREAM right behind the END_STREAM is a reset.
  mark_dirty(c);
}

void conn_established(struct conn *c) {
  c->established = 1;
  c->active_ms = now_ms();
  st.established++;
  st.active++;
}

/** Writes what the microtunnel delivered to the socket and gives the window back for it. */
void conn_write_down(struct conn *c) {
  if (!c->established) return;  // connector: the server's connect is not done yet
  if (c->udp) return connector_udp_down(c);
  while (buf_size(&c->down) > 0 && c->h.fd >= 0) {
    ssize_t n = write(c->h.fd, c->down.p + c->down.off, buf_size(&c->down));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_abort(c, local_reset_code());
      return;
    }
    c->down.off += (size_t)n;
    st.bytes_down += (size_t)n;
    c->active_ms = now_ms();
    if (!c->stream_closed && c->t->ng) nghttp2_session_consume_stream(c->t->ng, c->sid, (size_t)n);
  }
  if (c->h.fd < 0) return;
  if (buf_size(&c->down) == 0) buf_free(&c->down);
  if (buf_size(&c->down) == 0 && c->remote_eof && !c->shut_wr) {
    shutdown(c->h.fd, SHUT_WR);
    c->shut_wr = 1;
    if (!c->active_ms) c->active_ms = now_ms();
  }
  rewatch(c);
  // The stream is gone and its FIN delivered: close the socket too, like a TCP peer's close().
  if (c->stream_closed && c->shut_wr) conn_release(c);
}

void conn_read_up(struct conn *c) {
  if (c->udp) return connector_udp_read(c);
  while (buf_size(&c->up) < SPLICE_BUFFER && !c->client_eof) {
    if (buf_reserve(&c->up, SPLICE_BUFFER - buf_size(&c->up))) break;
    ssize_t n = read(c->h.fd, c->up.p + c->up.len, SPLICE_BUFFER - buf_size(&c->up));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_abort(c, local_reset_code());
      return;
    }
    if (n == 0) c->client_eof = 1;
    c->up.len += (size_t)n;
    st.bytes_up += (size_t)n;
    c->active_ms = now_ms();
  }
  c->reading = !c->client_eof && buf_size(&c->up) < SPLICE_BUFFER;
  // An idle connection holds no buffer: 10,000 of them would otherwise keep a touched page each.
  if (buf_size(&c->up) == 0) buf_free(&c->up);
  if (!c->stream_closed) nghttp2_session_resume_data(c->t->ng, c->sid);
  rewatch(c);
}

/** Socket events of a connection (main loop). */
void conn_io(struct conn *c, uint32_t e) {
  if (c->connecting) {
    if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connector_connected(c);
    return;
  }
  if (e & (EPOLLOUT | EPOLLERR)) conn_write_down(c);
  if (!c->dead && c->h.fd >= 0 && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->reading) conn_read_up(c);
}

/** nghttp2 takes the socket's bytes for the stream (the agent's request body, the connector's response body). */
ssize_t up_read_cb(nghttp2_session *s, int32_t sid, uint8_t *out, size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)s, (void)sid, (void)ud;
  struct conn *c = src->ptr;
  size_t n = buf_size(&c->up);
  if (n > len) n = len;
  if (n) memcpy(out, c->up.p + c->up.off, n);
  c->up.off += n;
  if (buf_size(&c->up) == 0) buf_free(&c->up);  // taken: nothing held while the socket is quiet
  if (buf_size(&c->up) == 0 && c->client_eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
  else if (n == 0) return NGHTTP2_ERR_DEFERRED;
  if (!c->udp && !c->reading && !c->client_eof && buf_size(&c->up) < SPLICE_BUFFER && c->h.fd >= 0) {
    c->reading = 1;
    rewatch(c);
  }
  return (ssize_t)n;
}

int on_data_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  struct tunnel *t = ud;
  nghttp2_session_consume_connection(s, len);
  if (sid == t->control_id) {
    nghttp2_session_consume_stream(s, sid, len);
    emit_b64("control", t->id, data, len);
    return 0;
  }
  struct conn *c = nghttp2_session_get_stream_user_data(s, sid);
  if (!c || c->dead || (c->h.fd < 0 && !c->connecting)) {
    nghttp2_session_consume_stream(s, sid, len);
    return 0;
  }
  c->active_ms = now_ms();
  size_t written = 0;
  // Straight to the socket when nothing waits before it; else queue (the stream's window, given
  // back only as the socket takes the bytes, bounds the queue). Before the connector's connect
  // is done, early data waits here.
  if (buf_size(&c->down) == 0 && c->established && !c->udp) {
    ssize_t n = write(c->h.fd, data, len);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      nghttp2_session_consume_stream(s, sid, len);
      conn_abort(c, local_reset_code());
      return 0;
    }
    if (n > 0) written = (size_t)n;
    st.bytes_down += written;
  }
  if (written) nghttp2_session_consume_stream(s, sid, written);
  if (written < len) {
    buf_append(&c->down, data + written, len - written);
    if (c->udp) conn_write_down(c);
    else if (c->established) rewatch(c);
  }
  return 0;
}

int on_stream_close_cb(nghttp2_session *s, int32_t sid, uint32_t code, void *ud) {
  struct tunnel *t = ud;
  if (sid == t->control_id) {
    t->dead = 1;  // the control stream lives as long as the Z-Tunnel
    return 0;
  }
  struct conn *c = nghttp2_session_get_stream_user_data(s, sid);
  if (!c || c->dead) return 0;
  if (debug) logf_("stream close tag %u code 0x%x established %d", c->tag, code, c->established);
  c->stream_closed = 1;
  if (c->resetting) {
    conn_release(c);  // the reset we asked for (or our own, after the wait)
    return 0;
  }
  if (code != NGHTTP2_NO_ERROR || !c->established) {
    if (!c->established && !c->answered) st.failed++;
    reset_client(c);
    conn_release(c);
    return 0;
  }
  mark_dirty(c);
  return 0;
}

/** Runs the socket side of the connections marked dirty; returns how many there were. */
int process_dirty(void) {
  int n = 0;
  while (dirty_head) {
    struct conn *c = dirty_head;
    dirty_head = c->dirty_next;
    c->dirty = 0;
    n++;
    if (!c->dead) conn_write_down(c);
  }
  return n;
}
