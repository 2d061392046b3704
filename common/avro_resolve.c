/*
 * avro_resolve.c - schema resolution plans and the transcoder that runs
 * them (see avro_resolve.h).
 *
 * Plans form a graph (a recursive record's plan refers to itself); every
 * plan node lives in the resolver's allocation list and is freed with it.
 * The transcoder walks plans with a depth limit, so hostile data cannot
 * recurse without bound.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_resolve.h"

typedef enum op {
    OP_NULL,
    OP_BOOL,
    OP_INT,
    OP_LONG, /* also int -> long: the varint carries over */
    OP_INT_TO_FLOAT,
    OP_INT_TO_DOUBLE,
    OP_LONG_TO_FLOAT,
    OP_LONG_TO_DOUBLE,
    OP_FLOAT,
    OP_FLOAT_TO_DOUBLE,
    OP_DOUBLE,
    OP_BYTES, /* bytes and string, either way (the decoder checks UTF-8) */
    OP_FIXED,
    OP_ENUM,
    OP_ARRAY,
    OP_MAP,
    OP_RECORD,
    OP_UNION, /* writer is a union: one plan per writer branch */
    OP_ERROR  /* a writer branch or value the reader cannot take */
} op_t;

typedef struct plan plan_t;

struct plan {
    op_t op;
    int out_branch;            /* >= 0: reader union index written first */
    const srl__avro_node_t *w; /* writer schema node */
    const char *path;          /* field path, for messages */
    /* OP_ENUM: writer index -> reader index, -1 = no symbol and no default */
    int *enum_map;
    /* OP_ARRAY, OP_MAP */
    plan_t *item;
    /* OP_UNION */
    plan_t **branches;
    /* OP_RECORD */
    plan_t **wfield_plan;     /* per writer field; NULL = skip */
    int *wfield_target;       /* per writer field: reader field index or -1 */
    int *rfield_source;       /* per reader field: writer field index or -1 */
    uint8_t **rfield_default; /* per reader field missing from the writer */
    size_t *rfield_default_len;
    size_t nr;
    bool in_order; /* matched writer fields come in reader order */
    /* OP_ERROR */
    const char *msg;
};

typedef struct alloc {
    struct alloc *next;
    max_align_t data[];
} alloc_t;

typedef struct memo {
    const srl__avro_node_t *w, *r;
    plan_t *plan;
} memo_t;

struct srl__resolver {
    alloc_t *allocs;
    plan_t *root;
    srl__resolve_mode_t mode;
    memo_t *memo;
    size_t nmemo, memo_cap;
    char *errstr;
    size_t errstr_size;
    bool failed;
};

static void *ralloc(srl__resolver_t *res, size_t size)
{
    alloc_t *a = calloc(1, sizeof(alloc_t) + (size ? size : 1));
    if (!a) {
        res->failed = true;
        snprintf(res->errstr, res->errstr_size, "out of memory");
        return NULL;
    }
    a->next = res->allocs;
    res->allocs = a;
    return a->data;
}

static char *rstrdup(srl__resolver_t *res, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ralloc(res, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

__attribute__((format(printf, 2, 3))) static void *rfail(srl__resolver_t *res, const char *fmt, ...)
{
    if (!res->failed && res->errstr && res->errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->errstr, res->errstr_size, fmt, ap);
        va_end(ap);
    }
    res->failed = true;
    return NULL;
}

static bool strict(const srl__resolver_t *res)
{
    return res->mode != SRL__RESOLVE_DATA;
}

static const char *where(const char *path)
{
    return path[0] ? path : "(top)";
}

/* ------------------------------------------------------------------ */
/* building                                                             */

static bool is_named(const srl__avro_node_t *n)
{
    return n->type == SRL__AVRO_RECORD || n->type == SRL__AVRO_ENUM || n->type == SRL__AVRO_FIXED;
}

/* Same type (named types: same kind and unqualified name; the strict
 * modes want the same full name). */
static bool same_type(const srl__resolver_t *res, const srl__avro_node_t *w,
                      const srl__avro_node_t *r)
{
    if (w->type != r->type)
        return false;
    if (!is_named(w))
        return true;
    return strict(res) ? strcmp(w->fullname, r->fullname) == 0 : strcmp(w->name, r->name) == 0;
}

/* The promotion op reading writer type w as reader type r, or -1. */
static int promotion(srl__avro_type_t w, srl__avro_type_t r)
{
    switch (w) {
    case SRL__AVRO_INT:
        return r == SRL__AVRO_LONG     ? OP_LONG
               : r == SRL__AVRO_FLOAT  ? OP_INT_TO_FLOAT
               : r == SRL__AVRO_DOUBLE ? OP_INT_TO_DOUBLE
                                       : -1;
    case SRL__AVRO_LONG:
        return r == SRL__AVRO_FLOAT    ? OP_LONG_TO_FLOAT
               : r == SRL__AVRO_DOUBLE ? OP_LONG_TO_DOUBLE
                                       : -1;
    case SRL__AVRO_FLOAT:
        return r == SRL__AVRO_DOUBLE ? OP_FLOAT_TO_DOUBLE : -1;
    case SRL__AVRO_STRING:
        return r == SRL__AVRO_BYTES ? OP_BYTES : -1;
    case SRL__AVRO_BYTES:
        return r == SRL__AVRO_STRING ? OP_BYTES : -1;
    default:
        return -1;
    }
}

/* The reader union branch a writer (non-union) type resolves to: the
 * first of the same type, else the first it promotes to; -1 if none. */
static int reader_branch(const srl__resolver_t *res, const srl__avro_node_t *w,
                         const srl__avro_node_t *ru)
{
    for (size_t i = 0; i < ru->nbranches; i++)
        if (same_type(res, w, ru->branches[i]))
            return (int)i;
    if (!strict(res))
        for (size_t i = 0; i < ru->nbranches; i++)
            if (promotion(w->type, ru->branches[i]->type) >= 0)
                return (int)i;
    return -1;
}

static plan_t *build(srl__resolver_t *res, const srl__avro_node_t *w, const srl__avro_node_t *r,
                     const char *path, int depth);

static plan_t *new_plan(srl__resolver_t *res, op_t op, const srl__avro_node_t *w, const char *path)
{
    plan_t *p = ralloc(res, sizeof(*p));
    if (!p)
        return NULL;
    p->op = op;
    p->out_branch = -1;
    p->w = w;
    p->path = rstrdup(res, path);
    return p->path ? p : NULL;
}

static plan_t *error_plan(srl__resolver_t *res, const srl__avro_node_t *w, const char *path,
                          const char *msg)
{
    plan_t *p = new_plan(res, OP_ERROR, w, path);
    if (p && !(p->msg = rstrdup(res, msg)))
        return NULL;
    return p;
}

static plan_t *build_enum(srl__resolver_t *res, const srl__avro_node_t *w,
                          const srl__avro_node_t *r, const char *path)
{
    plan_t *p = new_plan(res, OP_ENUM, w, path);
    if (!p || !(p->enum_map = ralloc(res, w->nsymbols * sizeof(int))))
        return NULL;
    for (size_t i = 0; i < w->nsymbols; i++) {
        int found = -1;
        for (size_t k = 0; k < r->nsymbols; k++)
            if (strcmp(w->symbols[i], r->symbols[k]) == 0)
                found = (int)k;
        if (found < 0 && res->mode == SRL__RESOLVE_STRICT_OLD_WRITER)
            return rfail(res, "%s: enum %s: symbol \"%s\" removed (enums may only grow)",
                         where(path), w->fullname, w->symbols[i]);
        if (found < 0 && r->enum_default < 0 && res->mode == SRL__RESOLVE_STRICT_NEW_WRITER)
            return rfail(res,
                         "%s: enum %s: symbol \"%s\" added, but the current schema's enum has "
                         "no default symbol to read it as",
                         where(path), w->fullname, w->symbols[i]);
        p->enum_map[i] = found >= 0 ? found : r->enum_default;
    }
    return p;
}

static bool join_path(char *dst, size_t size, const char *parent, const char *name)
{
    int n = parent[0] ? snprintf(dst, size, "%s.%s", parent, name)
                      : snprintf(dst, size, "%s", name);
    return n >= 0 && (size_t)n < size;
}

static plan_t *build_record(srl__resolver_t *res, const srl__avro_node_t *w,
                            const srl__avro_node_t *r, const char *path, int depth)
{
    for (size_t i = 0; i < res->nmemo; i++)
        if (res->memo[i].w == w && res->memo[i].r == r)
            return res->memo[i].plan;
    plan_t *p = new_plan(res, OP_RECORD, w, path);
    if (!p)
        return NULL;
    if (res->nmemo == res->memo_cap) {
        size_t cap = res->memo_cap ? res->memo_cap * 2 : 8;
        memo_t *m = realloc(res->memo, cap * sizeof(*m));
        if (!m)
            return rfail(res, "out of memory");
        res->memo = m;
        res->memo_cap = cap;
    }
    res->memo[res->nmemo++] = (memo_t){w, r, p};

    size_t nw = w->nfields, nr = r->nfields;
    p->nr = nr;
    p->wfield_plan = ralloc(res, (nw + 1) * sizeof(plan_t *));
    p->wfield_target = ralloc(res, (nw + 1) * sizeof(int));
    p->rfield_source = ralloc(res, (nr + 1) * sizeof(int));
    p->rfield_default = ralloc(res, (nr + 1) * sizeof(uint8_t *));
    p->rfield_default_len = ralloc(res, (nr + 1) * sizeof(size_t));
    if (res->failed)
        return NULL;
    for (size_t j = 0; j < nr; j++)
        p->rfield_source[j] = -1;

    p->in_order = true;
    int last = -1;
    for (size_t i = 0; i < nw; i++) {
        int j = srl__avro_field_index(r, w->fields[i].name);
        p->wfield_target[i] = j;
        if (j < 0)
            continue; /* the reader does not know it: skipped */
        char sub[512];
        if (!join_path(sub, sizeof(sub), path, r->fields[j].name))
            return rfail(res, "%s: field path too long", where(path));
        p->rfield_source[j] = (int)i;
        p->wfield_plan[i] = build(res, w->fields[i].type, r->fields[j].type, sub, depth + 1);
        if (!p->wfield_plan[i])
            return NULL;
        if (j < last)
            p->in_order = false;
        last = j;
    }
    for (size_t j = 0; j < nr; j++) {
        if (p->rfield_source[j] >= 0)
            continue;
        const srl__avro_field_t *f = &r->fields[j];
        char sub[512];
        join_path(sub, sizeof(sub), path, f->name);
        if (!f->default_value) {
            if (res->mode == SRL__RESOLVE_STRICT_OLD_WRITER)
                return rfail(res,
                             "%s: field added without a default (the current schema's "
                             "data lacks it)",
                             sub);
            if (res->mode == SRL__RESOLVE_STRICT_NEW_WRITER)
                return rfail(res,
                             "%s: field removed, but the current schema has no default "
                             "for it (readers of the current schema need it)",
                             sub);
            return rfail(res, "%s: missing from the writer schema and has no default", sub);
        }
        srl__wr_t dw = {0};
        char err[256];
        if (!srl__avro_encode_json(f->type, f->default_value, true, &dw, sub, err, sizeof(err))) {
            free(dw.data);
            return rfail(res, "bad default: %s", err);
        }
        p->rfield_default[j] = ralloc(res, dw.len);
        if (p->rfield_default[j])
            memcpy(p->rfield_default[j], dw.data, dw.len);
        p->rfield_default_len[j] = dw.len;
        free(dw.data);
        if (res->failed)
            return NULL;
    }
    return p;
}

/* p, writing reader union index k first. A record plan may be shared
 * (memoized for recursive schemas) and a plan may already carry an index,
 * so those get a copy. */
static plan_t *with_branch(srl__resolver_t *res, plan_t *p, int k)
{
    if (!p)
        return NULL;
    if (p->out_branch >= 0 || p->op == OP_RECORD) {
        plan_t *copy = ralloc(res, sizeof(*copy));
        if (!copy)
            return NULL;
        *copy = *p;
        p = copy;
    }
    p->out_branch = k;
    return p;
}

static plan_t *build(srl__resolver_t *res, const srl__avro_node_t *w, const srl__avro_node_t *r,
                     const char *path, int depth)
{
    if (depth > SRL__AVRO_MAX_DEPTH)
        return rfail(res, "%s: schema nested deeper than %d levels", where(path),
                     SRL__AVRO_MAX_DEPTH);
    if (res->failed)
        return NULL;

    if (w->type == SRL__AVRO_UNION) {
        plan_t *p = new_plan(res, OP_UNION, w, path);
        if (!p || !(p->branches = ralloc(res, w->nbranches * sizeof(plan_t *))))
            return NULL;
        for (size_t i = 0; i < w->nbranches; i++) {
            const srl__avro_node_t *wb = w->branches[i];
            if (r->type == SRL__AVRO_UNION) {
                int k = reader_branch(res, wb, r);
                if (k < 0) {
                    char msg[256];
                    snprintf(msg, sizeof(msg), "union branch %s has no match in the reader",
                             srl__avro_type_name(wb));
                    if (strict(res))
                        return rfail(res, "%s: %s", where(path), msg);
                    p->branches[i] = error_plan(res, wb, path, msg);
                } else {
                    p->branches[i] = with_branch(res,
                                                 build(res, wb, r->branches[k], path, depth + 1),
                                                 k);
                }
            } else if (same_type(res, wb, r) ||
                       (!strict(res) && promotion(wb->type, r->type) >= 0)) {
                p->branches[i] = build(res, wb, r, path, depth + 1);
            } else {
                char msg[256];
                snprintf(msg, sizeof(msg), "union branch %s cannot be read as %s",
                         srl__avro_type_name(wb), srl__avro_type_name(r));
                if (strict(res))
                    return rfail(res, "%s: %s", where(path), msg);
                p->branches[i] = error_plan(res, wb, path, msg);
            }
            if (!p->branches[i])
                return NULL;
        }
        return p;
    }

    if (r->type == SRL__AVRO_UNION) {
        int k = reader_branch(res, w, r);
        if (k < 0)
            return rfail(res, "%s: %s matches no branch of the reader's union", where(path),
                         srl__avro_type_name(w));
        return with_branch(res, build(res, w, r->branches[k], path, depth + 1), k);
    }

    if (!same_type(res, w, r)) {
        int op = promotion(w->type, r->type);
        if (op < 0 || strict(res))
            return rfail(res, "%s: type changed from %s to %s", where(path), srl__avro_type_name(w),
                         srl__avro_type_name(r));
        return new_plan(res, (op_t)op, w, path);
    }

    switch (w->type) {
    case SRL__AVRO_NULL:
        return new_plan(res, OP_NULL, w, path);
    case SRL__AVRO_BOOLEAN:
        return new_plan(res, OP_BOOL, w, path);
    case SRL__AVRO_INT:
        return new_plan(res, OP_INT, w, path);
    case SRL__AVRO_LONG:
        return new_plan(res, OP_LONG, w, path);
    case SRL__AVRO_FLOAT:
        return new_plan(res, OP_FLOAT, w, path);
    case SRL__AVRO_DOUBLE:
        return new_plan(res, OP_DOUBLE, w, path);
    case SRL__AVRO_BYTES:
    case SRL__AVRO_STRING:
        return new_plan(res, OP_BYTES, w, path);
    case SRL__AVRO_FIXED:
        if (w->size != r->size)
            return rfail(res, "%s: fixed %s changed size from %zu to %zu", where(path), w->fullname,
                         w->size, r->size);
        return new_plan(res, OP_FIXED, w, path);
    case SRL__AVRO_ENUM:
        return build_enum(res, w, r, path);
    case SRL__AVRO_ARRAY:
    case SRL__AVRO_MAP: {
        plan_t *p = new_plan(res, w->type == SRL__AVRO_ARRAY ? OP_ARRAY : OP_MAP, w, path);
        if (p && !(p->item = build(res, w->items, r->items, path, depth + 1)))
            return NULL;
        return p;
    }
    case SRL__AVRO_RECORD:
        return build_record(res, w, r, path, depth);
    case SRL__AVRO_UNION:
        break;
    }
    return rfail(res, "%s: unsupported type", where(path));
}

srl__resolver_t *srl__resolver_new(const srl__avro_schema_t *writer,
                                   const srl__avro_schema_t *reader, srl__resolve_mode_t mode,
                                   char *errstr, size_t errstr_size)
{
    srl__resolver_t *res = calloc(1, sizeof(*res));
    if (!res) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    res->mode = mode;
    res->errstr = errstr;
    res->errstr_size = errstr_size;
    const srl__avro_node_t *w = writer->root, *r = reader->root;
    if (w->type == SRL__AVRO_RECORD && r->type == SRL__AVRO_RECORD &&
        strcmp(w->fullname, r->fullname) != 0 && (strict(res) || strcmp(w->name, r->name) != 0))
        rfail(res, "record %s cannot be read as %s", w->fullname, r->fullname);
    else
        res->root = build(res, w, r, "", 0);
    free(res->memo);
    res->memo = NULL;
    if (!res->root || res->failed) {
        srl__resolver_free(res);
        return NULL;
    }
    res->errstr = NULL;
    res->errstr_size = 0;
    return res;
}

void srl__resolver_free(srl__resolver_t *res)
{
    if (!res)
        return;
    alloc_t *a = res->allocs;
    while (a) {
        alloc_t *next = a->next;
        free(a);
        a = next;
    }
    free(res->memo);
    free(res);
}

/* ------------------------------------------------------------------ */
/* transcoding                                                          */

static bool run(const plan_t *p, srl__rd_t *r, srl__wr_t *o, int depth);

static bool run_record(const plan_t *p, srl__rd_t *r, srl__wr_t *o, int depth)
{
    const srl__avro_node_t *w = p->w;
    if (p->in_order) {
        size_t next_r = 0;
        for (size_t i = 0; i < w->nfields; i++) {
            int j = p->wfield_target[i];
            if (j < 0) {
                if (!srl__avro_skip(w->fields[i].type, r, depth + 1))
                    return false;
                continue;
            }
            for (; next_r < (size_t)j; next_r++)
                srl__wr_raw(o, p->rfield_default[next_r], p->rfield_default_len[next_r]);
            next_r = (size_t)j + 1;
            if (!run(p->wfield_plan[i], r, o, depth + 1))
                return false;
        }
        for (; next_r < p->nr; next_r++)
            srl__wr_raw(o, p->rfield_default[next_r], p->rfield_default_len[next_r]);
        return true;
    }

    /* Fields in another order: find where each writer field starts, then
     * write the reader's fields in the reader's order. */
    const uint8_t *small[32];
    const uint8_t **pos = w->nfields <= 32 ? small : malloc(w->nfields * sizeof(*pos));
    if (!pos)
        return srl__rd_fail(r, "out of memory");
    bool ok = true;
    for (size_t i = 0; i < w->nfields && ok; i++) {
        pos[i] = r->p;
        ok = srl__avro_skip(w->fields[i].type, r, depth + 1);
    }
    for (size_t j = 0; j < p->nr && ok; j++) {
        int i = p->rfield_source[j];
        if (i < 0) {
            srl__wr_raw(o, p->rfield_default[j], p->rfield_default_len[j]);
            continue;
        }
        srl__rd_t sub = *r;
        sub.p = pos[i];
        sub.failed = false;
        ok = run(p->wfield_plan[i], &sub, o, depth + 1);
        if (!ok)
            memcpy(r->err, sub.err, sizeof(r->err)), r->failed = true;
    }
    if (pos != small)
        free(pos);
    return ok;
}

static bool run(const plan_t *p, srl__rd_t *r, srl__wr_t *o, int depth)
{
    const uint8_t *b;
    size_t len = 0, count = 0, total = 0;
    if (depth > SRL__AVRO_MAX_DEPTH)
        return srl__rd_fail(r, "value nested deeper than %d levels", SRL__AVRO_MAX_DEPTH);
    if (p->out_branch >= 0)
        srl__wr_long(o, p->out_branch);
    r->field = p->path[0] ? p->path : NULL;
    switch (p->op) {
    case OP_NULL:
        break;
    case OP_BOOL:
        srl__wr_byte(o, srl__rd_bool(r));
        break;
    case OP_INT:
        srl__wr_long(o, srl__rd_int(r));
        break;
    case OP_LONG:
        srl__wr_long(o, srl__rd_long(r));
        break;
    case OP_INT_TO_FLOAT:
        srl__wr_float(o, (float)srl__rd_int(r));
        break;
    case OP_INT_TO_DOUBLE:
        srl__wr_double(o, (double)srl__rd_int(r));
        break;
    case OP_LONG_TO_FLOAT:
        srl__wr_float(o, (float)srl__rd_long(r));
        break;
    case OP_LONG_TO_DOUBLE:
        srl__wr_double(o, (double)srl__rd_long(r));
        break;
    case OP_FLOAT:
        srl__wr_float(o, srl__rd_float(r));
        break;
    case OP_FLOAT_TO_DOUBLE:
        srl__wr_double(o, (double)srl__rd_float(r));
        break;
    case OP_DOUBLE:
        srl__wr_double(o, srl__rd_double(r));
        break;
    case OP_BYTES:
        if (srl__rd_bytes(r, &b, &len))
            srl__wr_bytes(o, b, len);
        break;
    case OP_FIXED:
        if (srl__rd_left(r) < p->w->size)
            return srl__rd_fail(r, "truncated fixed %s", p->w->fullname);
        srl__wr_raw(o, r->p, p->w->size);
        r->p += p->w->size;
        break;
    case OP_ENUM: {
        int64_t v = srl__rd_long(r);
        if (r->failed)
            return false;
        if (v < 0 || (uint64_t)v >= p->w->nsymbols)
            return srl__rd_fail(r, "enum %s index %lld out of range (%zu symbols)", p->w->fullname,
                                (long long)v, p->w->nsymbols);
        if (p->enum_map[v] < 0)
            return srl__rd_fail(r,
                                "enum %s symbol \"%s\" unknown to the reader, which has no "
                                "default symbol",
                                p->w->fullname, p->w->symbols[v]);
        srl__wr_long(o, p->enum_map[v]);
        break;
    }
    case OP_ARRAY:
    case OP_MAP:
        while (srl__avro_block_count(p->w->items, r, total, &count) && count > 0) {
            total += count;
            srl__wr_long(o, (int64_t)count);
            for (size_t i = 0; i < count; i++) {
                if (p->op == OP_MAP) {
                    if (!srl__rd_bytes(r, &b, &len))
                        return false;
                    srl__wr_bytes(o, b, len);
                }
                if (!run(p->item, r, o, depth + 1))
                    return false;
            }
        }
        if (r->failed)
            return false;
        srl__wr_long(o, 0);
        break;
    case OP_RECORD:
        return run_record(p, r, o, depth) && !r->failed;
    case OP_UNION: {
        int64_t k = srl__rd_long(r);
        if (r->failed)
            return false;
        if (k < 0 || (uint64_t)k >= p->w->nbranches)
            return srl__rd_fail(r, "union index %lld out of range (%zu branches)", (long long)k,
                                p->w->nbranches);
        return run(p->branches[k], r, o, depth + 1);
    }
    case OP_ERROR:
        return srl__rd_fail(r, "%s", p->msg);
    }
    return !r->failed;
}

bool srl__resolver_transcode(const srl__resolver_t *res, srl__rd_t *r, srl__wr_t *out)
{
    if (!run(res->root, r, out, 0))
        return false;
    r->field = NULL;
    if (srl__rd_left(r) > 0)
        return srl__rd_fail(r, "%zu trailing bytes after the value", srl__rd_left(r));
    if (out->failed)
        return srl__rd_fail(r, "out of memory");
    return true;
}
