/*
 * avro_binary.h - private to libsysrepl: the Avro binary encoding's
 * primitives (zig-zag varints, lengths, floats), reading from a bounded
 * buffer and writing to a growing one.
 *
 * A reader never reads past its end: every length is checked against the
 * bytes that remain before anything is allocated, so a hostile length
 * ("4 GB follow") fails at once. The first failure is kept (message and
 * byte offset); later calls on a failed reader do nothing and return 0.
 */
#ifndef SRL_AVRO_BINARY_H
#define SRL_AVRO_BINARY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct srl__rd {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *start;
    bool failed;
    const char *field; /* the field being read, named in errors; may be NULL */
    char err[200];
} srl__rd_t;

typedef struct srl__wr {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed; /* out of memory */
} srl__wr_t;

static inline void srl__rd_init(srl__rd_t *r, const void *buf, size_t len)
{
    r->start = r->p = (const uint8_t *)buf;
    r->end = r->p + len;
    r->failed = false;
    r->field = NULL;
    r->err[0] = '\0';
}

static inline size_t srl__rd_left(const srl__rd_t *r)
{
    return (size_t)(r->end - r->p);
}

__attribute__((format(printf, 2, 3), cold)) static inline bool srl__rd_fail(srl__rd_t *r,
                                                                            const char *fmt, ...)
{
    if (!r->failed) {
        size_t used = 0;
        if (r->field) {
            int n = snprintf(r->err, sizeof(r->err), "field %s: ", r->field);
            used = n > 0 && (size_t)n < sizeof(r->err) ? (size_t)n : 0;
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + used, sizeof(r->err) - used, fmt, ap);
        va_end(ap);
        r->failed = true;
    }
    r->p = r->end;
    return false;
}

/* A long: zig-zag varint of at most 10 bytes. */
static inline int64_t srl__rd_long(srl__rd_t *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    const uint8_t *p = r->p;
    for (;;) {
        if (p >= r->end) {
            srl__rd_fail(r, "truncated varint at byte %zu", (size_t)(r->p - r->start));
            return 0;
        }
        uint8_t b = *p++;
        if (shift == 63 && b > 1) {
            srl__rd_fail(r, "varint overflows 64 bits at byte %zu", (size_t)(r->p - r->start));
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
        if (shift >= 70) {
            srl__rd_fail(r, "varint longer than 10 bytes at byte %zu", (size_t)(r->p - r->start));
            return 0;
        }
    }
    r->p = p;
    return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
}

static inline int32_t srl__rd_int(srl__rd_t *r)
{
    int64_t v = srl__rd_long(r);
    if (v < INT32_MIN || v > INT32_MAX) {
        srl__rd_fail(r, "int out of range at byte %zu", (size_t)(r->p - r->start));
        return 0;
    }
    return (int32_t)v;
}

static inline bool srl__rd_bool(srl__rd_t *r)
{
    if (r->p >= r->end)
        return srl__rd_fail(r, "truncated boolean");
    uint8_t b = *r->p++;
    if (b > 1)
        return srl__rd_fail(r, "boolean byte %u is neither 0 nor 1 at byte %zu", b,
                            (size_t)(r->p - 1 - r->start));
    return b;
}

static inline double srl__rd_double(srl__rd_t *r)
{
    if (srl__rd_left(r) < 8) {
        srl__rd_fail(r, "truncated double");
        return 0;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | r->p[i];
    r->p += 8;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static inline float srl__rd_float(srl__rd_t *r)
{
    if (srl__rd_left(r) < 4) {
        srl__rd_fail(r, "truncated float");
        return 0;
    }
    uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Length of bytes/string: non-negative and within the remaining input. */
static inline bool srl__rd_len(srl__rd_t *r, size_t *len)
{
    *len = 0;
    int64_t n = srl__rd_long(r);
    if (r->failed)
        return false;
    if (n < 0)
        return srl__rd_fail(r, "negative length %lld at byte %zu", (long long)n,
                            (size_t)(r->p - r->start));
    if ((uint64_t)n > srl__rd_left(r))
        return srl__rd_fail(r, "length %lld exceeds the %zu bytes left", (long long)n,
                            srl__rd_left(r));
    *len = (size_t)n;
    return true;
}

/* Bytes in place: *out points into the input (not NUL-terminated). */
static inline bool srl__rd_bytes(srl__rd_t *r, const uint8_t **out, size_t *len)
{
    if (!srl__rd_len(r, len))
        return false;
    *out = r->p;
    r->p += *len;
    return true;
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static inline bool srl__utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return false;
        if (n - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += need + 1;
    }
    return true;
}

/* ---- writer ---- */

static inline bool srl__wr_reserve(srl__wr_t *w, size_t more)
{
    if (w->failed)
        return false;
    if (w->cap - w->len >= more)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < more) {
        if (cap > SIZE_MAX / 2) {
            w->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(w->data, cap);
    if (!d) {
        w->failed = true;
        return false;
    }
    w->data = d;
    w->cap = cap;
    return true;
}

static inline void srl__wr_long(srl__wr_t *w, int64_t v)
{
    if (!srl__wr_reserve(w, 10))
        return;
    uint64_t z = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63)); /* zigzag, no signed shift */
    uint8_t *p = w->data + w->len;
    while (z >= 0x80) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    w->len = (size_t)(p - w->data);
}

static inline void srl__wr_byte(srl__wr_t *w, uint8_t b)
{
    if (!srl__wr_reserve(w, 1))
        return;
    w->data[w->len++] = b;
}

static inline void srl__wr_raw(srl__wr_t *w, const void *p, size_t n)
{
    if (n == 0 || !srl__wr_reserve(w, n))
        return;
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

static inline void srl__wr_bytes(srl__wr_t *w, const void *p, size_t n)
{
    srl__wr_long(w, (int64_t)n);
    srl__wr_raw(w, p, n);
}

static inline void srl__wr_string(srl__wr_t *w, const char *s)
{
    srl__wr_bytes(w, s, s ? strlen(s) : 0);
}

static inline void srl__wr_double(srl__wr_t *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    srl__wr_raw(w, b, 8);
}

static inline void srl__wr_float(srl__wr_t *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    srl__wr_raw(w, b, 4);
}

#endif
