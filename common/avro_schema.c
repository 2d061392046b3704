/*
 * avro_schema.c - Avro schema parsing, parsing canonical form, CRC-64-AVRO
 * fingerprints, and generic skip / JSON decode / JSON encode over a schema.
 *
 * The canonical form follows the Avro specification's "Parsing Canonical
 * Form for Schemas": [PRIMITIVES] simple names for primitives,
 * [FULLNAMES] full names for named types, [STRIP] only type, name, fields,
 * symbols, items, values and size kept, [ORDER] in that order (name first),
 * [STRINGS] no escapes (names and symbols are plain ASCII by the naming
 * rules, which parsing enforces), [INTEGERS] plain decimal sizes,
 * [WHITESPACE] none. A named type is written in full where it is first
 * met and by its full name afterwards.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_schema.h"
#include "sysrepl/codec.h"

/* ------------------------------------------------------------------ */
/* CRC-64-AVRO                                                          */

#define CRC64_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc64_table[256];

static void crc64_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_EMPTY & (0 - (fp & 1)));
        crc64_table[i] = fp;
    }
}

uint64_t srl_fingerprint64(const void *buf, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc64_init);
    const uint8_t *p = buf;
    uint64_t fp = CRC64_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
    return fp;
}

/* ------------------------------------------------------------------ */
/* parsing                                                              */

typedef struct parse_ctx {
    srl__avro_schema_t *s;
    srl__avro_node_t **named;
    size_t nnamed, named_cap;
    char *errstr;
    size_t errstr_size;
    bool failed;
} parse_ctx_t;

__attribute__((format(printf, 2, 3))) static void *perr(parse_ctx_t *c, const char *fmt, ...)
{
    if (!c->failed && c->errstr && c->errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errstr, c->errstr_size, fmt, ap);
        va_end(ap);
    }
    c->failed = true;
    return NULL;
}

static const char *const type_names[] = {"null",   "boolean", "int",    "long",   "float",
                                         "double", "bytes",   "string", "record", "enum",
                                         "array",  "map",     "union",  "fixed"};

const char *srl__avro_type_name(const srl__avro_node_t *n)
{
    if (n->fullname)
        return n->fullname;
    return type_names[n->type];
}

static int primitive_type(const char *s)
{
    for (int i = SRL__AVRO_NULL; i <= SRL__AVRO_STRING; i++)
        if (strcmp(type_names[i], s) == 0)
            return i;
    return -1;
}

static srl__avro_node_t *new_node(parse_ctx_t *c, srl__avro_type_t type)
{
    srl__avro_node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return perr(c, "out of memory");
    n->type = type;
    n->enum_default = -1;
    n->next_owned = c->s->owned;
    c->s->owned = n;
    return n;
}

static bool valid_name_part(const char *s, size_t len)
{
    if (len == 0)
        return false;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* A dotted name: every part a valid name. */
static bool valid_fullname(const char *s)
{
    const char *part = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (!valid_name_part(part, (size_t)(p - part)))
                return false;
            if (*p == '\0')
                return true;
            part = p + 1;
        }
    }
}

static char *join_name(const char *ns, const char *name)
{
    char *out;
    if (!ns || !ns[0] || strchr(name, '.'))
        return strdup(name);
    size_t len = strlen(ns) + 1 + strlen(name) + 1;
    out = malloc(len);
    if (out)
        snprintf(out, len, "%s.%s", ns, name);
    return out;
}

static srl__avro_node_t *find_named(parse_ctx_t *c, const char *fullname)
{
    for (size_t i = 0; i < c->nnamed; i++)
        if (strcmp(c->named[i]->fullname, fullname) == 0)
            return c->named[i];
    return NULL;
}

static bool add_named(parse_ctx_t *c, srl__avro_node_t *n)
{
    if (find_named(c, n->fullname)) {
        perr(c, "type %s defined twice", n->fullname);
        return false;
    }
    if (c->nnamed == c->named_cap) {
        size_t cap = c->named_cap ? c->named_cap * 2 : 16;
        srl__avro_node_t **p = realloc(c->named, cap * sizeof(*p));
        if (!p) {
            perr(c, "out of memory");
            return false;
        }
        c->named = p;
        c->named_cap = cap;
    }
    c->named[c->nnamed++] = n;
    return true;
}

static srl__avro_node_t *parse_node(parse_ctx_t *c, const json_t *j, const char *ns, int depth);

static srl__avro_node_t *parse_reference(parse_ctx_t *c, const char *s, const char *ns)
{
    int prim = primitive_type(s);
    if (prim >= 0)
        return new_node(c, (srl__avro_type_t)prim);
    srl__avro_node_t *n = NULL;
    char *full = join_name(ns, s);
    if (!full)
        return perr(c, "out of memory");
    n = find_named(c, full);
    free(full);
    if (!n)
        n = find_named(c, s); /* a name in the null namespace */
    if (!n)
        return perr(c, "unknown type \"%s\"", s);
    return n;
}

/* Name and namespace of a named type; returns its namespace for children. */
static bool parse_name(parse_ctx_t *c, const json_t *j, srl__avro_node_t *n, const char *ns,
                       char **child_ns)
{
    const json_t *name = json_object_get(j, "name");
    const json_t *space = json_object_get(j, "namespace");
    if (!json_is_string(name))
        return perr(c, "a %s needs a \"name\"", type_names[n->type]), false;
    const char *nm = json_string_value(name);
    if (space && !json_is_null(space)) {
        if (!json_is_string(space))
            return perr(c, "%s: \"namespace\" must be a string", nm), false;
        ns = json_string_value(space);
    }
    n->fullname = join_name(ns, nm);
    if (!n->fullname)
        return perr(c, "out of memory"), false;
    if (!valid_fullname(n->fullname) || (ns && ns[0] && !strchr(nm, '.') && !valid_fullname(ns)))
        return perr(c, "invalid name \"%s\"", n->fullname), false;
    const char *dot = strrchr(n->fullname, '.');
    n->name = dot ? dot + 1 : n->fullname;
    if (primitive_type(n->name) >= 0)
        return perr(c, "\"%s\" may not be used as a type name", n->name), false;
    *child_ns = strdup(n->fullname);
    if (!*child_ns)
        return perr(c, "out of memory"), false;
    char *last = strrchr(*child_ns, '.');
    if (last)
        *last = '\0';
    else
        (*child_ns)[0] = '\0';
    return add_named(c, n);
}

static bool check_default(parse_ctx_t *c, const srl__avro_node_t *type, const json_t *dflt,
                          const char *path)
{
    srl__wr_t w = {0};
    char err[256];
    bool ok = srl__avro_encode_json(type, dflt, true, &w, path, err, sizeof(err));
    free(w.data);
    if (!ok)
        perr(c, "default of %s", err);
    return ok;
}

static srl__avro_node_t *parse_record(parse_ctx_t *c, const json_t *j, const char *ns, int depth)
{
    srl__avro_node_t *n = new_node(c, SRL__AVRO_RECORD);
    char *child_ns = NULL;
    if (!n || !parse_name(c, j, n, ns, &child_ns)) {
        free(child_ns);
        return NULL;
    }
    const json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields)) {
        free(child_ns);
        return perr(c, "record %s: \"fields\" must be an array", n->fullname);
    }
    size_t nf = json_array_size(fields);
    n->fields = calloc(nf ? nf : 1, sizeof(*n->fields));
    if (!n->fields) {
        free(child_ns);
        return perr(c, "out of memory");
    }
    for (size_t i = 0; i < nf; i++) {
        const json_t *f = json_array_get(fields, i);
        const json_t *fname = json_object_get(f, "name");
        if (!json_is_object(f) || !json_is_string(fname) ||
            !valid_name_part(json_string_value(fname), strlen(json_string_value(fname)))) {
            free(child_ns);
            return perr(c, "record %s: field %zu needs a valid \"name\"", n->fullname, i);
        }
        srl__avro_field_t *fd = &n->fields[i];
        fd->name = strdup(json_string_value(fname));
        n->nfields = i + 1;
        if (!fd->name) {
            free(child_ns);
            return perr(c, "out of memory");
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->fields[k].name, fd->name) == 0) {
                free(child_ns);
                return perr(c, "record %s: field %s defined twice", n->fullname, fd->name);
            }
        const json_t *ftype = json_object_get(f, "type");
        if (!ftype) {
            free(child_ns);
            return perr(c, "record %s: field %s has no \"type\"", n->fullname, fd->name);
        }
        fd->type = parse_node(c, ftype, child_ns, depth + 1);
        if (!fd->type) {
            free(child_ns);
            return NULL;
        }
        const json_t *dflt = json_object_get(f, "default");
        if (dflt) {
            char path[256];
            snprintf(path, sizeof(path), "%s.%s", n->name, fd->name);
            if (!check_default(c, fd->type, dflt, path)) {
                free(child_ns);
                return NULL;
            }
            fd->default_value = json_incref((json_t *)dflt);
        }
    }
    free(child_ns);
    return n;
}

static srl__avro_node_t *parse_enum(parse_ctx_t *c, const json_t *j, const char *ns)
{
    srl__avro_node_t *n = new_node(c, SRL__AVRO_ENUM);
    char *child_ns = NULL;
    bool named = n && parse_name(c, j, n, ns, &child_ns);
    free(child_ns);
    if (!named)
        return NULL;
    const json_t *syms = json_object_get(j, "symbols");
    if (!json_is_array(syms) || json_array_size(syms) == 0)
        return perr(c, "enum %s: \"symbols\" must be a non-empty array", n->fullname);
    size_t ns_count = json_array_size(syms);
    n->symbols = calloc(ns_count, sizeof(char *));
    if (!n->symbols)
        return perr(c, "out of memory");
    for (size_t i = 0; i < ns_count; i++) {
        const json_t *s = json_array_get(syms, i);
        if (!json_is_string(s) || !valid_name_part(json_string_value(s), json_string_length(s)))
            return perr(c, "enum %s: symbol %zu is not a valid name", n->fullname, i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->symbols[k], json_string_value(s)) == 0)
                return perr(c, "enum %s: symbol %s listed twice", n->fullname,
                            json_string_value(s));
        n->symbols[i] = strdup(json_string_value(s));
        n->nsymbols = i + 1;
        if (!n->symbols[i])
            return perr(c, "out of memory");
    }
    const json_t *dflt = json_object_get(j, "default");
    if (dflt) {
        for (size_t i = 0; i < n->nsymbols && json_is_string(dflt); i++)
            if (strcmp(n->symbols[i], json_string_value(dflt)) == 0)
                n->enum_default = (int)i;
        if (n->enum_default < 0)
            return perr(c, "enum %s: default is not one of its symbols", n->fullname);
    }
    return n;
}

static srl__avro_node_t *parse_object(parse_ctx_t *c, const json_t *j, const char *ns, int depth)
{
    const json_t *type = json_object_get(j, "type");
    if (json_is_object(type) || json_is_array(type))
        return parse_node(c, type, ns, depth + 1); /* {"type": {...}} */
    if (!json_is_string(type))
        return perr(c, "a schema object needs a \"type\"");
    const char *t = json_string_value(type);
    srl__avro_node_t *n = NULL;
    if (primitive_type(t) >= 0) {
        n = new_node(c, (srl__avro_type_t)primitive_type(t));
    } else if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
        return parse_record(c, j, ns, depth);
    } else if (strcmp(t, "enum") == 0) {
        return parse_enum(c, j, ns);
    } else if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
        bool array = t[0] == 'a';
        n = new_node(c, array ? SRL__AVRO_ARRAY : SRL__AVRO_MAP);
        const json_t *items = json_object_get(j, array ? "items" : "values");
        if (!n)
            return NULL;
        if (!items)
            return perr(c, "%s needs \"%s\"", t, array ? "items" : "values");
        n->items = parse_node(c, items, ns, depth + 1);
        if (!n->items)
            return NULL;
    } else if (strcmp(t, "fixed") == 0) {
        n = new_node(c, SRL__AVRO_FIXED);
        char *child_ns = NULL;
        bool named = n && parse_name(c, j, n, ns, &child_ns);
        free(child_ns);
        if (!named)
            return NULL;
        const json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0 ||
            json_integer_value(size) > (1 << 24))
            return perr(c, "fixed %s: \"size\" must be a non-negative integer", n->fullname);
        n->size = (size_t)json_integer_value(size);
    } else {
        return parse_reference(c, t, ns);
    }
    if (!n)
        return NULL;
    const json_t *logical = json_object_get(j, "logicalType");
    if (json_is_string(logical) && !(n->logical = strdup(json_string_value(logical))))
        return perr(c, "out of memory");
    return n;
}

static srl__avro_node_t *parse_node(parse_ctx_t *c, const json_t *j, const char *ns, int depth)
{
    if (depth > SRL__AVRO_MAX_DEPTH)
        return perr(c, "schema nested deeper than %d levels", SRL__AVRO_MAX_DEPTH);
    if (json_is_string(j))
        return parse_reference(c, json_string_value(j), ns);
    if (json_is_object(j))
        return parse_object(c, j, ns, depth);
    if (!json_is_array(j))
        return perr(c, "a schema must be a string, object or array");
    srl__avro_node_t *n = new_node(c, SRL__AVRO_UNION);
    size_t nb = json_array_size(j);
    if (!n)
        return NULL;
    if (nb == 0)
        return perr(c, "a union needs at least one branch");
    n->branches = calloc(nb, sizeof(*n->branches));
    if (!n->branches)
        return perr(c, "out of memory");
    for (size_t i = 0; i < nb; i++) {
        srl__avro_node_t *b = parse_node(c, json_array_get(j, i), ns, depth + 1);
        if (!b)
            return NULL;
        if (b->type == SRL__AVRO_UNION)
            return perr(c, "a union may not contain a union");
        for (size_t k = 0; k < i; k++)
            if (strcmp(srl__avro_type_name(n->branches[k]), srl__avro_type_name(b)) == 0)
                return perr(c, "union lists %s twice", srl__avro_type_name(b));
        n->branches[i] = b;
        n->nbranches = i + 1;
    }
    return n;
}

/* Fewest bytes a value takes; a type met again while being sized (a
 * recursive record) counts as one byte: it sits behind a union or array. */
static size_t min_size(srl__avro_node_t *n, int depth)
{
    if (depth > SRL__AVRO_MAX_DEPTH || n->emitted)
        return 1;
    switch (n->type) {
    case SRL__AVRO_NULL:
        return 0;
    case SRL__AVRO_FLOAT:
        return 4;
    case SRL__AVRO_DOUBLE:
        return 8;
    case SRL__AVRO_FIXED:
        return n->size;
    case SRL__AVRO_RECORD: {
        size_t sum = 0;
        n->emitted = true;
        for (size_t i = 0; i < n->nfields; i++)
            sum += min_size(n->fields[i].type, depth + 1);
        n->emitted = false;
        return sum;
    }
    default:
        return 1;
    }
}

static void set_min_sizes(srl__avro_schema_t *s)
{
    for (srl__avro_node_t *n = s->owned; n; n = n->next_owned)
        n->min_size = min_size(n, 0);
}

/* ------------------------------------------------------------------ */
/* canonical form                                                       */

static void put(srl__wr_t *w, const char *s)
{
    srl__wr_raw(w, s, strlen(s));
}

static void put_qstr(srl__wr_t *w, const char *s)
{
    put(w, "\"");
    put(w, s);
    put(w, "\"");
}

static void canonical(srl__wr_t *w, srl__avro_node_t *n)
{
    switch (n->type) {
    case SRL__AVRO_RECORD:
    case SRL__AVRO_ENUM:
    case SRL__AVRO_FIXED:
        if (n->emitted) {
            put_qstr(w, n->fullname);
            return;
        }
        n->emitted = true;
        put(w, "{\"name\":");
        put_qstr(w, n->fullname);
        put(w, ",\"type\":");
        put_qstr(w, type_names[n->type]);
        if (n->type == SRL__AVRO_RECORD) {
            put(w, ",\"fields\":[");
            for (size_t i = 0; i < n->nfields; i++) {
                put(w, i ? ",{\"name\":" : "{\"name\":");
                put_qstr(w, n->fields[i].name);
                put(w, ",\"type\":");
                canonical(w, n->fields[i].type);
                put(w, "}");
            }
            put(w, "]}");
        } else if (n->type == SRL__AVRO_ENUM) {
            put(w, ",\"symbols\":[");
            for (size_t i = 0; i < n->nsymbols; i++) {
                if (i)
                    put(w, ",");
                put_qstr(w, n->symbols[i]);
            }
            put(w, "]}");
        } else {
            char size[32];
            snprintf(size, sizeof(size), ",\"size\":%zu}", n->size);
            put(w, size);
        }
        return;
    case SRL__AVRO_ARRAY:
        put(w, "{\"type\":\"array\",\"items\":");
        canonical(w, n->items);
        put(w, "}");
        return;
    case SRL__AVRO_MAP:
        put(w, "{\"type\":\"map\",\"values\":");
        canonical(w, n->items);
        put(w, "}");
        return;
    case SRL__AVRO_UNION:
        put(w, "[");
        for (size_t i = 0; i < n->nbranches; i++) {
            if (i)
                put(w, ",");
            canonical(w, n->branches[i]);
        }
        put(w, "]");
        return;
    default:
        put_qstr(w, type_names[n->type]);
        return;
    }
}

/* ------------------------------------------------------------------ */
/* schema lifetime                                                      */

void srl__avro_schema_free(srl__avro_schema_t *s)
{
    if (!s)
        return;
    srl__avro_node_t *n = s->owned;
    while (n) {
        srl__avro_node_t *next = n->next_owned;
        free(n->fullname);
        free(n->logical);
        for (size_t i = 0; i < n->nfields; i++) {
            free(n->fields[i].name);
            json_decref(n->fields[i].default_value);
        }
        free(n->fields);
        for (size_t i = 0; i < n->nsymbols; i++)
            free(n->symbols[i]);
        free(n->symbols);
        free(n->branches);
        free(n);
        n = next;
    }
    free(s->json);
    free(s->canonical);
    free(s);
}

srl__avro_schema_t *srl__avro_schema_parse(const char *json_text, char *errstr, size_t errstr_size)
{
    parse_ctx_t c = {.errstr = errstr, .errstr_size = errstr_size};
    json_error_t jerr;
    json_t *j = NULL;
    srl__wr_t w = {0};

    c.s = calloc(1, sizeof(*c.s));
    if (!c.s) {
        perr(&c, "out of memory");
        return NULL;
    }
    if (!json_text) {
        perr(&c, "no schema text");
        goto cleanup;
    }
    j = json_loads(json_text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        perr(&c, "schema is not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        goto cleanup;
    }
    c.s->root = parse_node(&c, j, "", 0);
    if (!c.s->root)
        goto cleanup;
    c.s->json = strdup(json_text);
    canonical(&w, c.s->root);
    srl__wr_byte(&w, 0);
    if (!c.s->json || w.failed) {
        perr(&c, "out of memory");
        goto cleanup;
    }
    for (srl__avro_node_t *n = c.s->owned; n; n = n->next_owned)
        n->emitted = false;
    set_min_sizes(c.s);
    c.s->canonical = (char *)w.data;
    w.data = NULL;
    c.s->fingerprint = srl_fingerprint64(c.s->canonical, strlen(c.s->canonical));

cleanup:
    free(w.data);
    free(c.named);
    json_decref(j);
    if (c.failed) {
        srl__avro_schema_free(c.s);
        return NULL;
    }
    return c.s;
}

char *srl_schema_canonical(const char *schema_json, char *errstr, size_t errstr_size)
{
    srl__avro_schema_t *s = srl__avro_schema_parse(schema_json, errstr, errstr_size);
    if (!s)
        return NULL;
    char *out = s->canonical;
    s->canonical = NULL;
    srl__avro_schema_free(s);
    return out;
}

int srl__avro_field_index(const srl__avro_node_t *record, const char *name)
{
    for (size_t i = 0; i < record->nfields; i++)
        if (strcmp(record->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ */
/* generic binary walking                                               */

bool srl__avro_block_count(const srl__avro_node_t *item, srl__rd_t *r, size_t total, size_t *count)
{
    int64_t n = srl__rd_long(r);
    if (r->failed)
        return false;
    if (n < 0) {
        if (n == INT64_MIN)
            return srl__rd_fail(r, "block count out of range");
        n = -n;
        int64_t bytes = srl__rd_long(r);
        if (r->failed)
            return false;
        if (bytes < 0 || (uint64_t)bytes > srl__rd_left(r))
            return srl__rd_fail(r, "block size %lld invalid (%zu bytes left)", (long long)bytes,
                                srl__rd_left(r));
    }
    size_t min = item ? item->min_size : 1;
    if (min == 0) {
        if ((uint64_t)n + total > SRL__AVRO_MAX_EMPTY_ITEMS)
            return srl__rd_fail(r, "more than %u zero-size items", SRL__AVRO_MAX_EMPTY_ITEMS);
    } else if ((uint64_t)n > srl__rd_left(r) / min) {
        return srl__rd_fail(r, "block of %lld items exceeds the %zu bytes left", (long long)n,
                            srl__rd_left(r));
    }
    *count = (size_t)n;
    return true;
}

static bool union_branch(const srl__avro_node_t *n, srl__rd_t *r, size_t *idx)
{
    int64_t b = srl__rd_long(r);
    if (r->failed)
        return false;
    if (b < 0 || (uint64_t)b >= n->nbranches)
        return srl__rd_fail(r, "union index %lld out of range (%zu branches)", (long long)b,
                            n->nbranches);
    *idx = (size_t)b;
    return true;
}

static bool enum_index(const srl__avro_node_t *n, srl__rd_t *r, size_t *idx)
{
    int64_t v = srl__rd_long(r);
    if (r->failed)
        return false;
    if (v < 0 || (uint64_t)v >= n->nsymbols)
        return srl__rd_fail(r, "enum %s index %lld out of range (%zu symbols)", n->fullname,
                            (long long)v, n->nsymbols);
    *idx = (size_t)v;
    return true;
}

bool srl__avro_skip(const srl__avro_node_t *n, srl__rd_t *r, int depth)
{
    const uint8_t *b;
    size_t len = 0, idx = 0, count = 0, total = 0;
    if (depth > SRL__AVRO_MAX_DEPTH)
        return srl__rd_fail(r, "value nested deeper than %d levels", SRL__AVRO_MAX_DEPTH);
    switch (n->type) {
    case SRL__AVRO_NULL:
        return true;
    case SRL__AVRO_BOOLEAN:
        srl__rd_bool(r);
        break;
    case SRL__AVRO_INT:
        srl__rd_int(r);
        break;
    case SRL__AVRO_LONG:
        srl__rd_long(r);
        break;
    case SRL__AVRO_FLOAT:
        srl__rd_float(r);
        break;
    case SRL__AVRO_DOUBLE:
        srl__rd_double(r);
        break;
    case SRL__AVRO_BYTES:
    case SRL__AVRO_STRING:
        srl__rd_bytes(r, &b, &len);
        break;
    case SRL__AVRO_FIXED:
        if (srl__rd_left(r) < n->size)
            return srl__rd_fail(r, "truncated fixed %s", n->fullname);
        r->p += n->size;
        break;
    case SRL__AVRO_ENUM:
        enum_index(n, r, &idx);
        break;
    case SRL__AVRO_UNION:
        if (union_branch(n, r, &idx))
            return srl__avro_skip(n->branches[idx], r, depth + 1);
        break;
    case SRL__AVRO_RECORD:
        for (size_t i = 0; i < n->nfields && !r->failed; i++)
            srl__avro_skip(n->fields[i].type, r, depth + 1);
        break;
    case SRL__AVRO_ARRAY:
    case SRL__AVRO_MAP:
        while (srl__avro_block_count(n->items, r, total, &count) && count > 0) {
            total += count;
            for (size_t i = 0; i < count && !r->failed; i++) {
                if (n->type == SRL__AVRO_MAP)
                    srl__rd_bytes(r, &b, &len);
                srl__avro_skip(n->items, r, depth + 1);
            }
        }
        break;
    }
    return !r->failed;
}

static json_t *bytes_json(const uint8_t *b, size_t len)
{
    /* each byte as the code point of the same value, as Avro's JSON does */
    char *s = malloc(len * 2 + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] < 0x80) {
            s[o++] = (char)b[i];
        } else {
            s[o++] = (char)(0xc0 | (b[i] >> 6));
            s[o++] = (char)(0x80 | (b[i] & 0x3f));
        }
    }
    json_t *j = json_stringn(s, o);
    free(s);
    return j;
}

json_t *srl__avro_decode_json(const srl__avro_node_t *n, srl__rd_t *r, int depth)
{
    const uint8_t *b;
    size_t len = 0, idx = 0, count = 0, total = 0;
    json_t *out = NULL;
    if (depth > SRL__AVRO_MAX_DEPTH) {
        srl__rd_fail(r, "value nested deeper than %d levels", SRL__AVRO_MAX_DEPTH);
        return NULL;
    }
    switch (n->type) {
    case SRL__AVRO_NULL:
        return json_null();
    case SRL__AVRO_BOOLEAN: {
        bool v = srl__rd_bool(r);
        return r->failed ? NULL : json_boolean(v);
    }
    case SRL__AVRO_INT:
    case SRL__AVRO_LONG: {
        int64_t v = n->type == SRL__AVRO_INT ? srl__rd_int(r) : srl__rd_long(r);
        return r->failed ? NULL : json_integer(v);
    }
    case SRL__AVRO_FLOAT:
    case SRL__AVRO_DOUBLE: {
        double v = n->type == SRL__AVRO_FLOAT ? srl__rd_float(r) : srl__rd_double(r);
        return r->failed ? NULL : json_real(v);
    }
    case SRL__AVRO_STRING:
        if (!srl__rd_bytes(r, &b, &len))
            return NULL;
        if (!srl__utf8_valid(b, len)) {
            srl__rd_fail(r, "string is not valid UTF-8");
            return NULL;
        }
        out = json_stringn((const char *)b, len);
        if (!out)
            srl__rd_fail(r, "string not representable in JSON");
        return out;
    case SRL__AVRO_BYTES:
        if (!srl__rd_bytes(r, &b, &len))
            return NULL;
        return bytes_json(b, len);
    case SRL__AVRO_FIXED:
        if (srl__rd_left(r) < n->size) {
            srl__rd_fail(r, "truncated fixed %s", n->fullname);
            return NULL;
        }
        out = bytes_json(r->p, n->size);
        r->p += n->size;
        return out;
    case SRL__AVRO_ENUM:
        return enum_index(n, r, &idx) ? json_string(n->symbols[idx]) : NULL;
    case SRL__AVRO_UNION:
        return union_branch(n, r, &idx) ? srl__avro_decode_json(n->branches[idx], r, depth + 1)
                                        : NULL;
    case SRL__AVRO_RECORD:
        out = json_object();
        for (size_t i = 0; out && i < n->nfields; i++) {
            json_t *v = srl__avro_decode_json(n->fields[i].type, r, depth + 1);
            if (!v || json_object_set_new(out, n->fields[i].name, v) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    case SRL__AVRO_ARRAY:
    case SRL__AVRO_MAP:
        out = n->type == SRL__AVRO_ARRAY ? json_array() : json_object();
        while (out && srl__avro_block_count(n->items, r, total, &count) && count > 0) {
            total += count;
            for (size_t i = 0; i < count; i++) {
                char *key = NULL;
                if (n->type == SRL__AVRO_MAP) {
                    if (!srl__rd_bytes(r, &b, &len))
                        break;
                    key = strndup((const char *)b, len);
                    if (!key)
                        break;
                }
                json_t *v = srl__avro_decode_json(n->items, r, depth + 1);
                int rc = !v    ? -1
                         : key ? json_object_set_new(out, key, v)
                               : json_array_append_new(out, v);
                free(key);
                if (rc != 0) {
                    srl__rd_fail(r, "cannot build JSON value");
                    break;
                }
            }
            if (r->failed)
                break;
        }
        if (r->failed) {
            json_decref(out);
            return NULL;
        }
        return out;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* JSON -> binary (defaults, test data)                                 */

__attribute__((format(printf, 4, 5))) static bool jfail(char *errstr, size_t size, const char *path,
                                                        const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (errstr && size)
        snprintf(errstr, size, "%s: %s", path, msg);
    return false;
}

/* Bytes from a JSON string whose code points are all 0..255. */
static bool json_bytes(const json_t *v, srl__wr_t *w, size_t want_len, bool check_len)
{
    const uint8_t *s = (const uint8_t *)json_string_value(v);
    size_t n = json_string_length(v), count = 0;
    srl__wr_t tmp = {0};
    for (size_t i = 0; i < n; i++, count++) {
        if (s[i] < 0x80) {
            srl__wr_byte(&tmp, s[i]);
        } else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n && s[i] <= 0xc3) {
            srl__wr_byte(&tmp, (uint8_t)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f)));
            i++;
        } else {
            free(tmp.data);
            return false;
        }
    }
    bool ok = !tmp.failed && (!check_len || count == want_len);
    if (ok) {
        if (!check_len)
            srl__wr_long(w, (int64_t)tmp.len);
        srl__wr_raw(w, tmp.data, tmp.len);
    }
    free(tmp.data);
    return ok;
}

bool srl__avro_encode_json(const srl__avro_node_t *n, const json_t *v, bool defaults_mode,
                           srl__wr_t *w, const char *path, char *errstr, size_t errstr_size)
{
    char sub[256];
    switch (n->type) {
    case SRL__AVRO_NULL:
        if (!json_is_null(v))
            return jfail(errstr, errstr_size, path, "expected null");
        return true;
    case SRL__AVRO_BOOLEAN:
        if (!json_is_boolean(v))
            return jfail(errstr, errstr_size, path, "expected a boolean");
        srl__wr_byte(w, json_is_true(v));
        return true;
    case SRL__AVRO_INT:
    case SRL__AVRO_LONG:
        if (!json_is_integer(v) ||
            (n->type == SRL__AVRO_INT &&
             (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)))
            return jfail(errstr, errstr_size, path, "expected an %s", type_names[n->type]);
        srl__wr_long(w, json_integer_value(v));
        return true;
    case SRL__AVRO_FLOAT:
    case SRL__AVRO_DOUBLE:
        if (!json_is_number(v))
            return jfail(errstr, errstr_size, path, "expected a number");
        if (n->type == SRL__AVRO_FLOAT)
            srl__wr_float(w, (float)json_number_value(v));
        else
            srl__wr_double(w, json_number_value(v));
        return true;
    case SRL__AVRO_STRING:
        if (!json_is_string(v))
            return jfail(errstr, errstr_size, path, "expected a string");
        srl__wr_bytes(w, json_string_value(v), json_string_length(v));
        return true;
    case SRL__AVRO_BYTES:
    case SRL__AVRO_FIXED:
        if (!json_is_string(v) || !json_bytes(v, w, n->size, n->type == SRL__AVRO_FIXED))
            return jfail(errstr, errstr_size, path, "expected a string of %s", type_names[n->type]);
        return true;
    case SRL__AVRO_ENUM:
        if (json_is_string(v))
            for (size_t i = 0; i < n->nsymbols; i++)
                if (strcmp(n->symbols[i], json_string_value(v)) == 0) {
                    srl__wr_long(w, (int64_t)i);
                    return true;
                }
        return jfail(errstr, errstr_size, path, "expected a symbol of %s", n->fullname);
    case SRL__AVRO_UNION:
        for (size_t i = 0; i < (defaults_mode ? 1 : n->nbranches); i++) {
            size_t mark = w->len;
            srl__wr_long(w, (int64_t)i);
            if (srl__avro_encode_json(n->branches[i], v, defaults_mode, w, path, errstr,
                                      errstr_size))
                return true;
            w->len = mark;
        }
        if (defaults_mode)
            return jfail(errstr, errstr_size, path, "does not match the union's first branch (%s)",
                         srl__avro_type_name(n->branches[0]));
        return jfail(errstr, errstr_size, path, "matches no branch of the union");
    case SRL__AVRO_ARRAY:
        if (!json_is_array(v))
            return jfail(errstr, errstr_size, path, "expected an array");
        if (json_array_size(v) > 0) {
            srl__wr_long(w, (int64_t)json_array_size(v));
            for (size_t i = 0; i < json_array_size(v); i++) {
                snprintf(sub, sizeof(sub), "%.200s[%zu]", path, i);
                if (!srl__avro_encode_json(n->items, json_array_get(v, i), defaults_mode, w, sub,
                                           errstr, errstr_size))
                    return false;
            }
        }
        srl__wr_long(w, 0);
        return true;
    case SRL__AVRO_MAP: {
        if (!json_is_object(v))
            return jfail(errstr, errstr_size, path, "expected an object");
        const char *key;
        json_t *val;
        if (json_object_size(v) > 0) {
            srl__wr_long(w, (int64_t)json_object_size(v));
            json_object_foreach((json_t *)v, key, val) {
                snprintf(sub, sizeof(sub), "%.200s.%.50s", path, key);
                srl__wr_string(w, key);
                if (!srl__avro_encode_json(n->items, val, defaults_mode, w, sub, errstr,
                                           errstr_size))
                    return false;
            }
        }
        srl__wr_long(w, 0);
        return true;
    }
    case SRL__AVRO_RECORD:
        if (!json_is_object(v))
            return jfail(errstr, errstr_size, path, "expected an object");
        for (size_t i = 0; i < n->nfields; i++) {
            const srl__avro_field_t *f = &n->fields[i];
            const json_t *fv = json_object_get(v, f->name);
            snprintf(sub, sizeof(sub), "%.200s.%.50s", path, f->name);
            if (!fv && !f->default_value)
                return jfail(errstr, errstr_size, sub, "missing and has no default");
            if (!fv) {
                if (!srl__avro_encode_json(f->type, f->default_value, true, w, sub, errstr,
                                           errstr_size))
                    return false;
            } else if (!srl__avro_encode_json(f->type, fv, defaults_mode, w, sub, errstr,
                                              errstr_size)) {
                return false;
            }
        }
        return true;
    }
    return jfail(errstr, errstr_size, path, "unknown type");
}
