/*
 * buf.h - a growable byte buffer, and PostgreSQL's COPY text format written
 * into it. Every program that streams rows into the store through COPY
 * (the consumer's apply and rebuild, sysrepl import) builds them here.
 */
#ifndef SRL_BUF_H
#define SRL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct srl_buf {
    char *data;
    size_t len, cap;
} srl_buf_t;

/* Room for extra more bytes (the capacity doubles). False on out of
 * memory, the buffer unchanged. */
bool srl_buf_reserve(srl_buf_t *b, size_t extra);
bool srl_buf_add(srl_buf_t *b, const void *p, size_t n);
void srl_buf_free(srl_buf_t *b); /* NULL-safe; leaves an empty buffer */
/* Append printf-formatted text (kept NUL-terminated, the NUL not counted
 * in len). False on out of memory or a bad format, the buffer unchanged. */
bool srl_buf_addf(srl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append one COPY text field: s[0..len) escaped (s NULL: \N), then sep
 * ('\t' between fields, '\n' after the last). False on out of memory. */
bool srl_copy_field(srl_buf_t *b, const char *s, size_t len, char sep);

#endif
