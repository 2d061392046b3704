/*
 * store_jsonl.c - the JSON-lines form of `sysrepl export` / `import`:
 *   {"kind":"<kind>","value":{<the JSON form of json.h>}}
 *
 * Assessments are the many: they are written by a direct formatter, ten
 * times faster than building a jansson tree per row, that produces the
 * same bytes as srl_json_from_entity() + json_dumps(JSON_COMPACT)
 * (tests/unit/test_store_jsonl.c holds the two to each other). Other kinds
 * go through json.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store_private.h"
#include "sysrepl/json.h"

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf_t;

static bool jb_reserve(jbuf_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void jb_raw(jbuf_t *b, const char *s, size_t n)
{
    if (!jb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define JB_LIT(b, lit) jb_raw((b), (lit), sizeof(lit) - 1)

/* A JSON string, escaped as jansson does without flags: " \ and control
 * characters; \b \f \n \r \t by name, others as \u00XX (upper-case hex);
 * UTF-8 as is. */
static void jb_str(jbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!jb_reserve(b, 2 + strlen(s) * 6))
        return;
    char *w = b->p + b->len;
    *w++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    *w++ = '"';
    b->len = (size_t)(w - b->p);
}

static void jb_int(jbuf_t *b, int64_t v)
{
    char num[24], *w = num + sizeof(num);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--w = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--w = '-';
    jb_raw(b, w, (size_t)(num + sizeof(num) - w));
}

/* A time as json.c writes it: RFC 3339, or integer ms outside 0000..9999.
 * Formatting a date costs more than the rest of a row, and neighbouring
 * rows share their second (changed_at of one import, bulk assessed_at):
 * each field keeps the last second it formatted. */
typedef struct time_cache {
    int64_t second; /* floor(ms / 1000) of text */
    bool valid;
    char text[40]; /* "2026-11-26T12:00:00." */
    size_t len;
} time_cache_t;

static void jb_time(jbuf_t *b, int64_t ms, time_cache_t *c)
{
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - sec * 1000);
    if (!c->valid || c->second != sec) {
        char t[40];
        if (!srl_json_format_time(sec * 1000, t, sizeof(t))) {
            jb_int(b, ms);
            return;
        }
        /* "...SS.000Z": keep up to and including the '.' */
        char *dot = strrchr(t, '.');
        if (!dot) {
            jb_str(b, t);
            return;
        }
        c->len = (size_t)(dot - t) + 1;
        memcpy(c->text, t, c->len);
        c->second = sec;
        c->valid = true;
    }
    char tail[6] = {(char)('0' + frac / 100),
                    (char)('0' + frac / 10 % 10),
                    (char)('0' + frac % 10),
                    'Z',
                    '"',
                    0};
    JB_LIT(b, "\"");
    jb_raw(b, c->text, c->len);
    jb_raw(b, tail, 5);
}

/* ,"name": */
static void jb_key(jbuf_t *b, const char *name, bool first)
{
    if (!first)
        JB_LIT(b, ",");
    jb_str(b, name);
    JB_LIT(b, ":");
}

/* The field order and omissions of json.c's assessment_json(). */
static bool assessment_json(jbuf_t *b, const srl_assessment_t *a)
{
    static _Thread_local time_cache_t cache[3];
    const char *scope = srl_scope_kind_name(a->scope_kind);
    if (!a->vulnerability_id || !scope)
        return false;
    JB_LIT(b, "{");
    jb_key(b, "vulnerability_id", true);
    jb_str(b, a->vulnerability_id);
    jb_key(b, "scope", false);
    JB_LIT(b, "{\"kind\":");
    jb_str(b, scope);
    if (a->scope_name) {
        jb_key(b, "name", false);
        jb_str(b, a->scope_name);
    }
    JB_LIT(b, "}");
    if (a->assessment_type) {
        jb_key(b, "assessment_type", false);
        jb_str(b, a->assessment_type);
    }
    if (a->comment) {
        jb_key(b, "comment", false);
        jb_str(b, a->comment);
    }
    if (a->has_package_filter) {
        jb_key(b, "package_filter", false);
        JB_LIT(b, "{");
        bool first = true;
        if (a->package_name) {
            jb_key(b, "name", first);
            jb_str(b, a->package_name);
            first = false;
        }
        if (a->package_version_range) {
            jb_key(b, "version_range", first);
            jb_str(b, a->package_version_range);
        }
        JB_LIT(b, "}");
    }
    if (a->has_expires_at) {
        jb_key(b, "expires_at", false);
        jb_time(b, a->expires_at, &cache[0]);
    }
    jb_key(b, "automatic", false);
    if (a->automatic)
        JB_LIT(b, "true");
    else
        JB_LIT(b, "false");
    if (a->assessed_by) {
        jb_key(b, "assessed_by", false);
        jb_str(b, a->assessed_by);
    }
    jb_key(b, "assessed_at", false);
    jb_time(b, a->assessed_at, &cache[1]);
    if (a->meta.origin) {
        jb_key(b, "origin", false);
        jb_str(b, a->meta.origin);
    }
    jb_key(b, "version", false);
    jb_int(b, a->meta.version);
    jb_key(b, "changed_at", false);
    jb_time(b, a->meta.changed_at, &cache[2]);
    JB_LIT(b, "}");
    return true;
}

char *srl_store_entity_json(const srl_entity_t *e, size_t *len, char *errstr, size_t errstr_size)
{
    if (e->kind != SRL_KIND_ASSESSMENT) {
        char *text = srl__store_doc(e, errstr, errstr_size);
        if (text && len)
            *len = strlen(text);
        return text;
    }
    jbuf_t b = {NULL, 0, 0, false};
    if (!assessment_json(&b, &e->u.assessment)) {
        free(b.p);
        srl__store_errf(errstr, errstr_size, "%s: a key field is missing or out of range",
                        srl_kind_name(e->kind));
        return NULL;
    }
    JB_LIT(&b, "");
    if (b.oom || !jb_reserve(&b, 1)) {
        free(b.p);
        srl__store_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    b.p[b.len] = '\0';
    if (len)
        *len = b.len;
    return b.p;
}

bool srl_store_jsonl_write(FILE *out, const srl_entity_t *e, char *errstr, size_t errstr_size)
{
    const char *kind = srl_kind_name(e->kind);
    if (!kind) {
        srl__store_errf(errstr, errstr_size, "unknown kind %d", (int)e->kind);
        return false;
    }
    if (e->kind != SRL_KIND_ASSESSMENT) {
        size_t len;
        char *text = srl_store_entity_json(e, &len, errstr, errstr_size);
        if (!text)
            return false;
        fprintf(out, "{\"kind\":\"%s\",\"value\":", kind);
        fwrite(text, 1, len, out);
        fputs("}\n", out);
        free(text);
        return true;
    }
    /* One reused buffer per thread: an export writes millions of lines. */
    static _Thread_local jbuf_t b;
    b.len = 0;
    b.oom = false;
    JB_LIT(&b, "{\"kind\":\"");
    jb_raw(&b, kind, strlen(kind));
    JB_LIT(&b, "\",\"value\":");
    if (!assessment_json(&b, &e->u.assessment)) {
        srl__store_errf(errstr, errstr_size, "%s: a key field is missing or out of range", kind);
        return false;
    }
    JB_LIT(&b, "}\n");
    if (b.oom) {
        srl__store_errf(errstr, errstr_size, "out of memory");
        return false;
    }
    fwrite(b.p, 1, b.len, out);
    return true;
}
