// Small things every part uses: time, logging, the event line, buffers, epoll, base64.
#include "dataplane.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>


uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("zcc-dataplane: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  va_end(ap);
}

// ---- buffers ----

int buf_reserve(buf_t *b, size_t more) {
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

size_t buf_size(const buf_t *b) { return b->len - b->off; }

int buf_append(buf_t *b, const uint8_t *d, size_t n) {
  if (buf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

void buf_free(buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

// ---- epoll ----

/** Sets what wakes us for `h`; none at all takes it out of epoll (no spinning on a HUP). */
void watch(struct handle *h, uint32_t events) {
  if (h->events == events || h->fd < 0) return;
  struct epoll_event e = {.events = events, .data.ptr = h};
  int op = !h->events ? EPOLL_CTL_ADD : events ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
  if (epoll_ctl(ep, op, h->fd, &e) != 0) logf_("epoll_ctl(%d): %s", h->fd, strerror(errno));
  h->events = events;
}

// ---- base64 ----

uint8_t *b64_decode(const char *s, size_t *out_len) {
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

void emit_b64(const char *what, int id, const uint8_t *d, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out) return;
  EVP_EncodeBlock((unsigned char *)out, d, (int)n);
  emit("%s %d %s", what, id, out);
  free(out);
}

// The reasons this process sends, as RESET_REASONS (src/protocol/microtunnel-open.ts) has them.
static const struct {
  uint32_t code;
  const char *name, *status;
} reasons[] = {
    {REASON_UNREACHABLE, "unreachable", "504"},   {REASON_UPSTREAM_RESET, "upstream-reset", "502"},
    {REASON_PEER_RESET, "peer-reset", "499"},     {REASON_IDLE_TIMEOUT, "idle-timeout", "408"},
    {REASON_BAD_OPEN, "bad-open", "400"},         {REASON_DUPLICATE_TAG, "duplicate-tag", "409"},
};

/** The reason's name; HTTP/2's own codes (CANCEL...) read as `peer-reset`, as reasonFromCode does. */
const char *reason_name(uint32_t code) {
  for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
    if (reasons[i].code == code) return reasons[i].name;
  return "peer-reset";
}

/** The status a refusal with this reason carries. */
const char *reason_status(uint32_t code) {
  for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
    if (reasons[i].code == code) return reasons[i].status;
  return "499";
}

/** Closes with an RST: a FIN would make a cut transfer look complete. */
void close_with_rst(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}
