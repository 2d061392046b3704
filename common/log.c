/*
 * log.c - logfmt lines to a stream (stderr) and an optional sink (see log.h).
 *
 * A line is formatted on the caller's stack (heap only for long lines),
 * then written with one fwrite and flushed under log_mutex, so lines from
 * many threads never interleave and reach the stream and the sink in the
 * same order.
 */
#include "sysrepl/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SRL_LOG_Q_SLOTS 8
#define SRL_LOG_Q_SIZE 1024

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_level = SRL_LOG_INFO;
static FILE *log_stream;          /* NULL: stderr; under log_mutex */
static srl_log_sink_fn log_sink;  /* under log_mutex */
static void *log_sink_ctx;        /* under log_mutex */
/* Set while this thread runs the sink (and so holds log_mutex): a line the
 * sink logs goes to the stream without locking again or re-entering it. */
static _Thread_local bool in_sink;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *srl_log_level_name(srl_log_level_t lvl)
{
    if ((unsigned)lvl < sizeof level_names / sizeof level_names[0])
        return level_names[lvl];
    return "unknown";
}

bool srl_log_level_parse(const char *name, srl_log_level_t *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (srl_log_level_t)i;
            return true;
        }
    }
    return false;
}

void srl_log_set_level(srl_log_level_t lvl)
{
    atomic_store(&log_level, (int)lvl);
}

srl_log_level_t srl_log_get_level(void)
{
    return (srl_log_level_t)atomic_load(&log_level);
}

bool srl_log_enabled(srl_log_level_t lvl)
{
    return (int)lvl >= atomic_load(&log_level);
}

void srl_log_set_stream(FILE *stream)
{
    pthread_mutex_lock(&log_mutex);
    log_stream = stream;
    pthread_mutex_unlock(&log_mutex);
}

void srl_log_set_sink(srl_log_sink_fn fn, void *ctx)
{
    pthread_mutex_lock(&log_mutex);
    log_sink = fn;
    log_sink_ctx = ctx;
    pthread_mutex_unlock(&log_mutex);
}

/* ---- quoting ------------------------------------------------------------ */

static bool needs_quote(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= ' ' || *c == '=' || *c == '"' || *c == '\\' || *c == 0x7f)
            return true;
    return false;
}

/* The escaped form of byte c inside quotes; returns its length (1..6). */
static size_t escape_byte(unsigned char c, char out[8])
{
    switch (c) {
    case '"': memcpy(out, "\\\"", 2); return 2;
    case '\\': memcpy(out, "\\\\", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    default:
        if (c < 0x20 || c == 0x7f) {
            snprintf(out, 8, "\\u%04x", c);
            return 6;
        }
        out[0] = (char)c;
        return 1;
    }
}

size_t srl_log_quote(char *buf, size_t size, const char *s)
{
    size_t len = strlen(s);
    if (!needs_quote(s) && len < size) {
        memcpy(buf, s, len + 1);
        return len;
    }
    if (!needs_quote(s) && size == 0)
        return len;

    char e[8];
    size_t full = 2;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        full += escape_byte(*c, e);
    if (size == 0)
        return full;

    size_t at = 0;
    if (full < size) {
        buf[at++] = '"';
        for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
            size_t n = escape_byte(*c, e);
            memcpy(buf + at, e, n);
            at += n;
        }
        buf[at++] = '"';
        buf[at] = '\0';
        return full;
    }

    /* Truncated: keep a closed quoted string ending in `..."`. */
    static const char tail[] = "...\"";
    size_t tail_len = sizeof tail - 1;
    if (size < tail_len + 2) {
        buf[0] = '\0';
        return full;
    }
    buf[at++] = '"';
    const unsigned char *c = (const unsigned char *)s;
    for (; *c; c++) {
        size_t n = escape_byte(*c, e);
        if (at + n + tail_len + 1 > size)
            break;
        memcpy(buf + at, e, n);
        at += n;
    }
    /* Do not cut a UTF-8 character in half: drop its lead bytes. */
    if ((*c & 0xC0) == 0x80) {
        while (at > 1 && ((unsigned char)buf[at - 1] & 0xC0) == 0x80)
            at--;
        if (at > 1 && ((unsigned char)buf[at - 1] & 0xC0) == 0xC0)
            at--;
    }
    memcpy(buf + at, tail, tail_len + 1);
    return full;
}

const char *srl_log_q(const char *s)
{
    static _Thread_local char ring[SRL_LOG_Q_SLOTS][SRL_LOG_Q_SIZE];
    static _Thread_local unsigned next;
    char *buf = ring[next++ % SRL_LOG_Q_SLOTS];
    srl_log_quote(buf, SRL_LOG_Q_SIZE, s != NULL ? s : "(null)");
    return buf;
}

/* ---- writing ------------------------------------------------------------ */

static void format_ts(char *buf, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

void srl_log(srl_log_level_t lvl, const char *component, const char *msg, const char *fmt_kv, ...)
{
    if (!srl_log_enabled(lvl))
        return;

    char kv_stack[1024], *kv = kv_stack, *kv_heap = NULL;
    kv_stack[0] = '\0';
    if (fmt_kv != NULL) {
        va_list ap, ap2;
        va_start(ap, fmt_kv);
        va_copy(ap2, ap);
        int n = vsnprintf(kv_stack, sizeof kv_stack, fmt_kv, ap);
        if (n >= (int)sizeof kv_stack && (kv_heap = malloc((size_t)n + 1)) != NULL) {
            vsnprintf(kv_heap, (size_t)n + 1, fmt_kv, ap2);
            kv = kv_heap;
        } /* else: out of memory, keep the truncated tail */
        va_end(ap2);
        va_end(ap);
        /* One event, one line: a raw newline in the tail (a value the caller
         * forgot to srl_log_q) must not forge a second line. */
        for (char *c = kv; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
    }

    char ts[40], comp_q[160], msg_q[1024];
    format_ts(ts, sizeof ts);
    srl_log_quote(comp_q, sizeof comp_q, component != NULL ? component : "");
    srl_log_quote(msg_q, sizeof msg_q, msg != NULL ? msg : "");

    char line_stack[2048], *line = line_stack, *line_heap = NULL;
    const char *fmt = "ts=%s level=%s component=%s msg=%s%s%s\n";
    const char *sep = *kv ? " " : "";
    int n = snprintf(line_stack, sizeof line_stack, fmt, ts, srl_log_level_name(lvl), comp_q,
                     msg_q, sep, kv);
    if (n < 0)
        goto cleanup;
    size_t len = (size_t)n;
    if (len >= sizeof line_stack) {
        if ((line_heap = malloc(len + 1)) != NULL) {
            snprintf(line_heap, len + 1, fmt, ts, srl_log_level_name(lvl), comp_q, msg_q, sep, kv);
            line = line_heap;
        } else {
            len = sizeof line_stack - 1;
            line_stack[len - 1] = '\n';
        }
    }

    if (in_sink) {
        /* We already hold log_mutex (the sink is running on this thread). */
        FILE *out = log_stream != NULL ? log_stream : stderr;
        fwrite(line, 1, len, out);
        fflush(out);
        goto cleanup;
    }
    pthread_mutex_lock(&log_mutex);
    FILE *out = log_stream != NULL ? log_stream : stderr;
    fwrite(line, 1, len, out);
    fflush(out);
    if (log_sink != NULL) {
        in_sink = true;
        log_sink(log_sink_ctx, lvl, component != NULL ? component : "", msg != NULL ? msg : "",
                 kv);
        in_sink = false;
    }
    pthread_mutex_unlock(&log_mutex);

cleanup:
    free(line_heap);
    free(kv_heap);
}
