/*
 * buf.c - growable byte buffer and COPY text fields (see buf.h).
 */
#include "sysrepl/buf.h"

#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool srl_buf_reserve(srl_buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return false;
    b->data = d;
    b->cap = cap;
    return true;
}

bool srl_buf_add(srl_buf_t *b, const void *p, size_t n)
{
    if (!srl_buf_reserve(b, n))
        return false;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

bool srl_buf_addf(srl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !srl_buf_reserve(b, (size_t)n + 1))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void srl_buf_free(srl_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

bool srl_copy_field(srl_buf_t *b, const char *s, size_t len, char sep)
{
    if (!s) {
        if (!srl_buf_reserve(b, 3))
            return false;
        memcpy(b->data + b->len, "\\N", 2);
        b->data[b->len + 2] = sep;
        b->len += 3;
        return true;
    }
    /* Worst case every byte is escaped to two. */
    if (!srl_buf_reserve(b, 2 * len + 1))
        return false;
    char *d = b->data + b->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\\':
            *d++ = '\\';
            *d++ = '\\';
            break;
        case '\n':
            *d++ = '\\';
            *d++ = 'n';
            break;
        case '\r':
            *d++ = '\\';
            *d++ = 'r';
            break;
        case '\t':
            *d++ = '\\';
            *d++ = 't';
            break;
        default:
            *d++ = (char)c;
        }
    }
    *d++ = sep;
    b->len = (size_t)(d - b->data);
    return true;
}
