/*
 * deadletter.c - the dead_letters table (see deadletter.h).
 */
#include "deadletter.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sysrepl/log.h"

/* bytea in COPY text form: \\x followed by hex (the backslash doubled for
 * COPY's own escaping). NULL stays \N. */
static bool bytea_field(srl_buf_t *b, const void *p, size_t n, char sep)
{
    static const char hex[] = "0123456789abcdef";
    if (!p)
        return srl_copy_field(b, NULL, 0, sep);
    if (!srl_buf_reserve(b, 3 + 2 * n + 1))
        return false;
    char *d = b->data + b->len;
    *d++ = '\\';
    *d++ = '\\';
    *d++ = 'x';
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        *d++ = hex[s[i] >> 4];
        *d++ = hex[s[i] & 15];
    }
    *d++ = sep;
    b->len = (size_t)(d - b->data);
    return true;
}

bool srl_deadletter_add(srl_deadletters_t *dl, const char *topic, const srl_record_t *r,
                        const char *reason)
{
    char num[64], clean[1024];
    /* The reason may quote record bytes; keep it plain ASCII so the row
     * can never be refused (which would stop the transaction). */
    size_t i = 0;
    for (; i < sizeof(clean) - 1 && reason[i]; i++) {
        unsigned char c = (unsigned char)reason[i];
        clean[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    clean[i] = '\0';
    reason = clean;
    srl_log(SRL_LOG_WARN, "consumer", "record dead-lettered",
            "topic=%s partition=%d offset=%" PRId64 " reason=%s", srl_log_q(topic),
            (int)r->partition, r->offset, srl_log_q(reason));
    size_t mark = dl->rows.len;
    bool ok = srl_copy_field(&dl->rows, topic, strlen(topic), '\t');
    int n = snprintf(num, sizeof(num), "%d", (int)r->partition);
    ok = ok && srl_copy_field(&dl->rows, num, (size_t)n, '\t');
    n = snprintf(num, sizeof(num), "%" PRId64, r->offset);
    ok = ok && srl_copy_field(&dl->rows, num, (size_t)n, '\t') &&
         bytea_field(&dl->rows, r->key, r->key_len, '\t') &&
         bytea_field(&dl->rows, r->value, r->value_len, '\t') &&
         srl_copy_field(&dl->rows, reason, strlen(reason), '\n');
    if (!ok) {
        dl->rows.len = mark;
        return false;
    }
    dl->count++;
    return true;
}

srl_store_rc_t srl_deadletter_write(srl_deadletters_t *dl, PGconn *conn, char *errstr,
                                    size_t errstr_size)
{
    if (dl->count == 0)
        return SRL_STORE_OK;
    return srl_store_copy_in(
        conn,
        "COPY sysrepl.dead_letters (topic, partition, record_offset, key, value,"
        " reason) FROM STDIN",
        dl->rows.data, dl->rows.len, errstr, errstr_size);
}

void srl_deadletter_reset(srl_deadletters_t *dl)
{
    dl->rows.len = 0;
    dl->count = 0;
}

void srl_deadletter_free(srl_deadletters_t *dl)
{
    if (!dl)
        return;
    srl_buf_free(&dl->rows);
    dl->count = 0;
}
