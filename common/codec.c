/*
 * codec.c - entities <-> Avro single-object encoding (codec.h): the schema
 * registry, and the hand-written encoder and decoder of each kind.
 *
 * Why hand-written: our own schemas are fixed at compile time, so their
 * encoding is a straight sequence of varints and strings. Writing that out
 * directly is several times faster than avro-c's generic values, and the
 * resolution of other writer schemas (avro_resolve.c) reduces every
 * decode to this one path: a record written with another schema is first
 * transcoded into our schema's encoding, then decoded here. A record
 * written with our own schema (the common case) skips that step.
 *
 * The functions below follow schemas/ field by field, in schema order; the
 * unit tests check every encoding against the parsed schema tree (and the
 * interop test against fastavro), so a schema change without a matching
 * change here fails the build's tests.
 *
 * Decoding checks everything the schema promises: union and enum indexes,
 * lengths against the bytes left, UTF-8, no NUL inside strings, unique map
 * keys, no trailing bytes. On failure the entity is cleared and errstr
 * names the field.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_resolve.h"
#include "codec_internal.h"

/* Generated from schemas/ by common/CMakeLists.txt. */
extern const char *const srl__builtin_schema_json[SRL_KIND_COUNT];

static const char *const kind_record_names[SRL_KIND_COUNT] = {"io.sysrepl.AssessmentType",
                                                              "io.sysrepl.VulnerabilityAssessment",
                                                              "io.sysrepl.Policy"};

/* RuleGroup symbol 3 is "unknown": a group a newer hub knows and we do not. */
#define RULE_GROUP_SYMBOLS 4
#define RULE_GROUP_KNOWN 3

typedef struct reg_entry {
    uint64_t fingerprint;
    srl_kind_t kind;
    bool ours; /* decoded directly, no resolution */
    srl__avro_schema_t *schema;
    srl__resolver_t *resolver; /* writer -> our schema; NULL for ours */
    char *unreadable;          /* why its records cannot be read as ours */
    int32_t id;                /* srl_schema_id_derive(fingerprint) */
} reg_entry_t;

/* An external registry's id for a known schema. */
typedef struct reg_alias {
    int32_t id;
    uint64_t fingerprint;
} reg_alias_t;

struct srl_registry {
    srl__avro_schema_t *ours[SRL_KIND_COUNT];
    reg_entry_t *entries;
    size_t count, cap;
    reg_alias_t *aliases;
    size_t nalias, alias_cap;
    srl__wr_t scratch; /* transcoded bodies; reused (thread-compatible) */
};

/* ------------------------------------------------------------------ */
/* registry                                                             */

static bool kind_of_schema(const srl__avro_schema_t *s, srl_kind_t *kind)
{
    if (s->root->type != SRL__AVRO_RECORD)
        return false;
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (strcmp(s->root->fullname, kind_record_names[k]) == 0) {
            *kind = (srl_kind_t)k;
            return true;
        }
    return false;
}

static reg_entry_t *find_entry(const srl_registry_t *reg, uint64_t fp)
{
    for (size_t i = 0; i < reg->count; i++)
        if (reg->entries[i].fingerprint == fp)
            return &reg->entries[i];
    return NULL;
}

static reg_entry_t *find_entry_by_id(const srl_registry_t *reg, int32_t id)
{
    for (size_t i = 0; i < reg->count; i++)
        if (reg->entries[i].id == id)
            return &reg->entries[i];
    for (size_t i = 0; i < reg->nalias; i++)
        if (reg->aliases[i].id == id)
            return find_entry(reg, reg->aliases[i].fingerprint);
    return NULL;
}

int32_t srl_schema_id_derive(uint64_t fingerprint)
{
    /* 31-bit pieces xor-ed together (bits 0-30, 31-61, 62-63): every bit
     * of the fingerprint counts; 0 is not a valid id for most clients. */
    uint32_t v = (uint32_t)(fingerprint & 0x7fffffffu) ^
                 (uint32_t)((fingerprint >> 31) & 0x7fffffffu) ^ (uint32_t)(fingerprint >> 62);
    return v ? (int32_t)v : 1;
}

static reg_entry_t *append_entry(srl_registry_t *reg)
{
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        reg_entry_t *e = realloc(reg->entries, cap * sizeof(*e));
        if (!e)
            return NULL;
        reg->entries = e;
        reg->cap = cap;
    }
    reg_entry_t *e = &reg->entries[reg->count++];
    memset(e, 0, sizeof(*e));
    return e;
}

void srl_registry_free(srl_registry_t *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->count; i++) {
        reg_entry_t *e = &reg->entries[i];
        srl__resolver_free(e->resolver);
        free(e->unreadable);
        if (!e->ours)
            srl__avro_schema_free(e->schema);
    }
    free(reg->entries);
    free(reg->aliases);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        srl__avro_schema_free(reg->ours[k]);
    free(reg->scratch.data);
    free(reg);
}

srl_registry_t *srl_registry_new(char *errstr, size_t errstr_size)
{
    srl_registry_t *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char err[256];
        srl_kind_t kind;
        reg->ours[k] = srl__avro_schema_parse(srl__builtin_schema_json[k], err, sizeof(err));
        if (!reg->ours[k] || !kind_of_schema(reg->ours[k], &kind) || kind != (srl_kind_t)k) {
            snprintf(errstr, errstr_size, "compiled-in schema of %s is broken: %s",
                     srl_kind_name((srl_kind_t)k), reg->ours[k] ? "wrong record name" : err);
            srl_registry_free(reg);
            return NULL;
        }
        reg_entry_t *e = append_entry(reg);
        if (!e) {
            snprintf(errstr, errstr_size, "out of memory");
            srl_registry_free(reg);
            return NULL;
        }
        e->fingerprint = reg->ours[k]->fingerprint;
        e->id = srl_schema_id_derive(e->fingerprint);
        e->kind = (srl_kind_t)k;
        e->ours = true;
        e->schema = reg->ours[k];
    }
    return reg;
}

bool srl_registry_add(srl_registry_t *reg, const char *schema_json, uint64_t *fingerprint_out,
                      char *errstr, size_t errstr_size)
{
    char err[512];
    srl__avro_schema_t *s = srl__avro_schema_parse(schema_json, err, sizeof(err));
    srl_kind_t kind;
    if (!s) {
        snprintf(errstr, errstr_size, "invalid schema: %s", err);
        return false;
    }
    if (fingerprint_out)
        *fingerprint_out = s->fingerprint;
    if (find_entry(reg, s->fingerprint)) {
        srl__avro_schema_free(s);
        return true;
    }
    if (!kind_of_schema(s, &kind)) {
        snprintf(errstr, errstr_size, "schema %016" PRIx64 " is a %s, not one of %s, %s, %s",
                 s->fingerprint, srl__avro_type_name(s->root), kind_record_names[0],
                 kind_record_names[1], kind_record_names[2]);
        srl__avro_schema_free(s);
        return false;
    }
    int32_t id = srl_schema_id_derive(s->fingerprint);
    const reg_entry_t *clash = find_entry_by_id(reg, id);
    if (clash) {
        snprintf(errstr, errstr_size,
                 "schema %016" PRIx64 " has the schema id %" PRId32
                 " of the known schema %016" PRIx64 " (derived ids collide); refused",
                 s->fingerprint, id, clash->fingerprint);
        srl__avro_schema_free(s);
        return false;
    }
    reg_entry_t *e = append_entry(reg);
    if (!e) {
        snprintf(errstr, errstr_size, "out of memory");
        srl__avro_schema_free(s);
        return false;
    }
    e->fingerprint = s->fingerprint;
    e->id = id;
    e->kind = kind;
    e->schema = s;
    /* A writer schema we cannot resolve is still registered: its records
     * then fail to decode with this reason instead of "unknown schema". */
    e->resolver = srl__resolver_new(s, reg->ours[kind], SRL__RESOLVE_DATA, err, sizeof(err));
    if (!e->resolver && !(e->unreadable = strdup(err))) {
        reg->count--;
        srl__avro_schema_free(s);
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    return true;
}

bool srl_registry_has(const srl_registry_t *reg, uint64_t fingerprint)
{
    return find_entry(reg, fingerprint) != NULL;
}

bool srl_registry_has_id(const srl_registry_t *reg, int32_t id)
{
    return find_entry_by_id(reg, id) != NULL;
}

bool srl_registry_id_fingerprint(const srl_registry_t *reg, int32_t id, uint64_t *fingerprint)
{
    const reg_entry_t *e = find_entry_by_id(reg, id);
    if (e && fingerprint)
        *fingerprint = e->fingerprint;
    return e != NULL;
}

bool srl_registry_alias_id(srl_registry_t *reg, int32_t id, uint64_t fingerprint, char *errstr,
                           size_t errstr_size)
{
    const reg_entry_t *named = find_entry_by_id(reg, id);
    if (named) {
        if (named->fingerprint == fingerprint)
            return true;
        snprintf(errstr, errstr_size,
                 "schema id %" PRId32 " names schema %016" PRIx64 ", not %016" PRIx64, id,
                 named->fingerprint, fingerprint);
        return false;
    }
    if (!find_entry(reg, fingerprint)) {
        snprintf(errstr, errstr_size, "unknown schema fingerprint %016" PRIx64, fingerprint);
        return false;
    }
    if (reg->nalias == reg->alias_cap) {
        size_t cap = reg->alias_cap ? reg->alias_cap * 2 : 8;
        reg_alias_t *a = realloc(reg->aliases, cap * sizeof(*a));
        if (!a) {
            snprintf(errstr, errstr_size, "out of memory");
            return false;
        }
        reg->aliases = a;
        reg->alias_cap = cap;
    }
    reg->aliases[reg->nalias++] = (reg_alias_t){id, fingerprint};
    return true;
}

bool srl_registry_entry(const srl_registry_t *reg, size_t index, srl_kind_t *kind,
                        uint64_t *fingerprint, int32_t *id, const char **json)
{
    if (index >= reg->count)
        return false;
    const reg_entry_t *e = &reg->entries[index];
    if (kind)
        *kind = e->kind;
    if (fingerprint)
        *fingerprint = e->fingerprint;
    if (id)
        *id = e->id;
    if (json)
        *json = e->schema->json;
    return true;
}

bool srl_registry_kind(const srl_registry_t *reg, uint64_t fingerprint, srl_kind_t *kind)
{
    const reg_entry_t *e = find_entry(reg, fingerprint);
    if (e && kind)
        *kind = e->kind;
    return e != NULL;
}

const char *srl_registry_schema_json(const srl_registry_t *reg, uint64_t fingerprint)
{
    const reg_entry_t *e = find_entry(reg, fingerprint);
    return e ? e->schema->json : NULL;
}

uint64_t srl_registry_writer_fingerprint(const srl_registry_t *reg, srl_kind_t kind)
{
    return (unsigned)kind < SRL_KIND_COUNT ? reg->ours[kind]->fingerprint : 0;
}

const char *srl_registry_writer_json(const srl_registry_t *reg, srl_kind_t kind)
{
    return (unsigned)kind < SRL_KIND_COUNT ? reg->ours[kind]->json : NULL;
}

const char *srl_registry_writer_canonical(const srl_registry_t *reg, srl_kind_t kind)
{
    return (unsigned)kind < SRL_KIND_COUNT ? reg->ours[kind]->canonical : NULL;
}

const srl__avro_schema_t *srl__registry_schema(const srl_registry_t *reg, uint64_t fingerprint)
{
    const reg_entry_t *e = find_entry(reg, fingerprint);
    return e ? e->schema : NULL;
}

const char *srl_registry_unreadable_reason(const srl_registry_t *reg, uint64_t fingerprint)
{
    const reg_entry_t *e = find_entry(reg, fingerprint);
    return e ? e->unreadable : NULL;
}

/* ------------------------------------------------------------------ */
/* encoding                                                             */

typedef struct enc {
    srl__wr_t w;
    const char *bad; /* first field that could not be encoded */
} enc_t;

static void put_str(enc_t *c, const char *field, const char *s)
{
    if (!s && !c->bad)
        c->bad = field;
    srl__wr_string(&c->w, s);
}

static void put_opt_str(enc_t *c, const char *s)
{
    if (!s) {
        srl__wr_byte(&c->w, 0);
        return;
    }
    srl__wr_byte(&c->w, 2); /* zig-zag 1: the "string" branch */
    srl__wr_string(&c->w, s);
}

static void put_enum(enc_t *c, const char *field, int v, int nsymbols)
{
    if ((v < 0 || v >= nsymbols) && !c->bad)
        c->bad = field;
    srl__wr_byte(&c->w, (uint8_t)(((unsigned)v & 0x3f) << 1)); /* < 64 symbols: one byte */
}

static void put_opt_long(enc_t *c, bool has, int64_t v)
{
    srl__wr_byte(&c->w, has ? 2 : 0);
    if (has)
        srl__wr_long(&c->w, v);
}

static void put_meta(enc_t *c, const srl_meta_t *m)
{
    srl__wr_string(&c->w, m->origin ? m->origin : ""); /* NULL origin travels as "" */
    srl__wr_long(&c->w, m->version);
    srl__wr_long(&c->w, m->changed_at);
}

static void encode_type(enc_t *c, const srl_assessment_type_t *t)
{
    put_str(c, "name", t->name);
    put_opt_str(c, t->description);
    put_opt_str(c, t->color);
    put_enum(c, "severity_class", t->severity_class, SRL_SEVERITY_CLASS_COUNT);
    if (t->emitted_severity == SRL_SEVERITY_UNSET) {
        srl__wr_byte(&c->w, 0);
    } else {
        srl__wr_byte(&c->w, 2);
        put_enum(c, "emitted_severity", t->emitted_severity, SRL_SEVERITY_COUNT);
    }
    put_enum(c, "auto_rule.kind", t->auto_rule.kind, SRL_AUTO_RULE_PVRS + 1);
    srl__wr_double(&c->w, t->auto_rule.cvss_min);
    srl__wr_double(&c->w, t->auto_rule.cvss_max);
    if (t->auto_rule.pvrs_count > 0) {
        if (!t->auto_rule.pvrs_categories && !c->bad)
            c->bad = "auto_rule.pvrs_categories";
        srl__wr_long(&c->w, (int64_t)t->auto_rule.pvrs_count);
        for (size_t i = 0; i < t->auto_rule.pvrs_count && t->auto_rule.pvrs_categories; i++)
            srl__wr_long(&c->w, t->auto_rule.pvrs_categories[i]);
    }
    srl__wr_byte(&c->w, 0);
    put_opt_long(c, t->has_default_expiry_days, t->default_expiry_days);
    srl__wr_byte(&c->w, t->inactive);
    srl__wr_byte(&c->w, t->built_in);
    put_meta(c, &t->meta);
}

static void encode_assessment(enc_t *c, const srl_assessment_t *a)
{
    put_str(c, "vulnerability_id", a->vulnerability_id);
    put_enum(c, "scope.kind", a->scope_kind, SRL_SCOPE_COUNT);
    put_opt_str(c, a->scope_name);
    put_str(c, "assessment_type", a->assessment_type);
    put_opt_str(c, a->comment);
    if (a->has_package_filter) {
        srl__wr_byte(&c->w, 2);
        put_str(c, "package_filter.name", a->package_name);
        put_opt_str(c, a->package_version_range);
    } else {
        srl__wr_byte(&c->w, 0);
    }
    put_opt_long(c, a->has_expires_at, a->expires_at);
    srl__wr_byte(&c->w, a->automatic);
    put_opt_str(c, a->assessed_by);
    srl__wr_long(&c->w, a->assessed_at);
    put_meta(c, &a->meta);
}

static void encode_outcomes(enc_t *c, const char *field, const srl_outcome_entry_t *e, size_t n)
{
    if (n > 0) {
        if (!e) {
            c->bad = c->bad ? c->bad : field;
            n = 0;
        }
        srl__wr_long(&c->w, (int64_t)n);
        for (size_t i = 0; i < n; i++) {
            put_str(c, field, e[i].name);
            put_enum(c, field, e[i].outcome, SRL_OUTCOME_COUNT);
        }
    }
    srl__wr_byte(&c->w, 0);
}

static void encode_policy(enc_t *c, const srl_policy_t *p)
{
    put_str(c, "name", p->name);
    put_opt_str(c, p->description);
    if (p->feed_count > 0) {
        if (!p->feeds && !c->bad)
            c->bad = "feeds";
        srl__wr_long(&c->w, (int64_t)p->feed_count);
        for (size_t i = 0; i < p->feed_count && p->feeds; i++)
            put_str(c, "feeds", p->feeds[i]);
    }
    srl__wr_byte(&c->w, 0);
    put_enum(c, "unassessed", p->unassessed, SRL_OUTCOME_COUNT);
    encode_outcomes(c, "by_assessment_type", p->by_assessment_type, p->by_assessment_type_count);
    put_enum(c, "license_undetected", p->license_undetected, SRL_OUTCOME_COUNT);
    put_enum(c, "license_other", p->license_other, SRL_OUTCOME_COUNT);
    encode_outcomes(c, "by_license", p->by_license, p->by_license_count);
    put_enum(c, "deprecated", p->deprecated, SRL_OUTCOME_COUNT);
    put_enum(c, "unlisted", p->unlisted, SRL_OUTCOME_COUNT);
    if (p->exception_count > 0) {
        if (!p->exceptions && !c->bad)
            c->bad = "exceptions";
        srl__wr_long(&c->w, (int64_t)p->exception_count);
        for (size_t i = 0; i < p->exception_count && p->exceptions; i++) {
            const srl_policy_exception_t *x = &p->exceptions[i];
            put_str(c, "exceptions.package", x->package);
            put_opt_str(c, x->version_range);
            if (x->rule_groups & ~((1u << RULE_GROUP_KNOWN) - 1) && !c->bad)
                c->bad = "exceptions.rule_groups";
            int groups = __builtin_popcount(x->rule_groups & ((1u << RULE_GROUP_KNOWN) - 1));
            if (groups > 0) {
                srl__wr_long(&c->w, groups);
                for (int g = 0; g < RULE_GROUP_KNOWN; g++)
                    if (x->rule_groups & (1u << g))
                        srl__wr_long(&c->w, g);
            }
            srl__wr_byte(&c->w, 0);
            put_opt_long(c, x->has_expires_at, x->expires_at);
        }
    }
    srl__wr_byte(&c->w, 0);
    if (p->has_risk_profile) {
        const srl_risk_profile_t *r = &p->risk_profile;
        srl__wr_byte(&c->w, 2);
        put_enum(c, "risk_profile.network_exposure", r->network_exposure, SRL_RISK_COUNT);
        put_enum(c, "risk_profile.access_interface", r->access_interface, SRL_RISK_COUNT);
        put_enum(c, "risk_profile.service_outage", r->service_outage, SRL_RISK_COUNT);
        put_enum(c, "risk_profile.data_breach", r->data_breach, SRL_RISK_COUNT);
        put_enum(c, "risk_profile.data_tampering", r->data_tampering, SRL_RISK_COUNT);
    } else {
        srl__wr_byte(&c->w, 0);
    }
    put_meta(c, &p->meta);
}

/* The body alone (no single-object header) into w; used by the codec and
 * by tests that compare against generic encoders. */
bool srl__codec_encode_body(const srl_entity_t *e, srl__wr_t *w, char *errstr, size_t errstr_size)
{
    enc_t c = {.w = *w};
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        encode_type(&c, &e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        encode_assessment(&c, &e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        encode_policy(&c, &e->u.policy);
        break;
    default:
        snprintf(errstr, errstr_size, "unknown kind %d", (int)e->kind);
        return false;
    }
    *w = c.w;
    if (c.bad) {
        snprintf(errstr, errstr_size, "%s: field %s: missing or out of range",
                 srl_kind_name(e->kind), c.bad);
        return false;
    }
    if (c.w.failed) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    return true;
}

bool srl_codec_encode(srl_registry_t *reg, const srl_entity_t *e, uint8_t **out, size_t *out_len,
                      char *errstr, size_t errstr_size)
{
    srl__wr_t w = {0};
    *out = NULL;
    *out_len = 0;
    if (!e || (unsigned)e->kind >= SRL_KIND_COUNT) {
        snprintf(errstr, errstr_size, "unknown kind %d", e ? (int)e->kind : -1);
        return false;
    }
    uint64_t fp = reg->ours[e->kind]->fingerprint;
    if (!srl__wr_reserve(&w, 256)) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    w.data[0] = SRL_CODEC_MAGIC0;
    w.data[1] = SRL_CODEC_MAGIC1;
    for (int i = 0; i < 8; i++)
        w.data[2 + i] = (uint8_t)(fp >> (8 * i));
    w.len = SRL_CODEC_HEADER_SIZE;
    if (!srl__codec_encode_body(e, &w, errstr, errstr_size)) {
        free(w.data);
        return false;
    }
    *out = w.data;
    *out_len = w.len;
    return true;
}

/* ------------------------------------------------------------------ */
/* decoding                                                             */

static char *get_str(srl__rd_t *r)
{
    const uint8_t *b;
    size_t len;
    if (!srl__rd_bytes(r, &b, &len))
        return NULL;
    if (memchr(b, 0, len)) {
        srl__rd_fail(r, "string contains a NUL byte");
        return NULL;
    }
    if (!srl__utf8_valid(b, len)) {
        srl__rd_fail(r, "string is not valid UTF-8");
        return NULL;
    }
    char *s = malloc(len + 1);
    if (!s) {
        srl__rd_fail(r, "out of memory");
        return NULL;
    }
    memcpy(s, b, len);
    s[len] = '\0';
    return s;
}

/* Index of a ["null", T] union: false for null, true for T. */
static bool get_present(srl__rd_t *r)
{
    int64_t v = srl__rd_long(r);
    if (v == 0 || r->failed)
        return false;
    if (v != 1)
        return srl__rd_fail(r, "union index %lld out of range (2 branches)", (long long)v);
    return true;
}

static char *get_opt_str(srl__rd_t *r)
{
    return get_present(r) ? get_str(r) : NULL;
}

static int get_enum(srl__rd_t *r, int nsymbols)
{
    int64_t v = srl__rd_long(r);
    if (r->failed)
        return 0;
    if (v < 0 || v >= nsymbols) {
        srl__rd_fail(r, "enum index %lld out of range (%d symbols)", (long long)v, nsymbols);
        return 0;
    }
    return (int)v;
}

/* Items in the next array/map block (0 at the end); each item takes at
 * least min_item bytes, which bounds the count by the bytes left. */
static size_t get_block(srl__rd_t *r, size_t min_item)
{
    int64_t n = srl__rd_long(r);
    if (r->failed || n == 0)
        return 0;
    if (n < 0) {
        if (n == INT64_MIN) {
            srl__rd_fail(r, "block count out of range");
            return 0;
        }
        n = -n;
        int64_t bytes = srl__rd_long(r);
        if (!r->failed && (bytes < 0 || (uint64_t)bytes > srl__rd_left(r))) {
            srl__rd_fail(r, "block size %lld invalid", (long long)bytes);
            return 0;
        }
    }
    if ((uint64_t)n > srl__rd_left(r) / min_item) {
        srl__rd_fail(r, "block of %lld items exceeds the %zu bytes left", (long long)n,
                     srl__rd_left(r));
        return 0;
    }
    return (size_t)n;
}

/* Grows *items (elem_size each) to hold need; zeroes the new part. */
static bool grow(srl__rd_t *r, void **items, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return true;
    void *p = realloc(*items, need * elem_size);
    if (!p)
        return srl__rd_fail(r, "out of memory");
    memset((char *)p + *cap * elem_size, 0, (need - *cap) * elem_size);
    *items = p;
    *cap = need;
    return true;
}

static void get_meta(srl__rd_t *r, srl_meta_t *m)
{
    r->field = "origin";
    m->origin = get_str(r);
    r->field = "version";
    m->version = srl__rd_long(r);
    r->field = "changed_at";
    m->changed_at = srl__rd_long(r);
}

static void decode_type(srl__rd_t *r, srl_assessment_type_t *t)
{
    t->emitted_severity = SRL_SEVERITY_UNSET;
    r->field = "name";
    t->name = get_str(r);
    r->field = "description";
    t->description = get_opt_str(r);
    r->field = "color";
    t->color = get_opt_str(r);
    r->field = "severity_class";
    t->severity_class = get_enum(r, SRL_SEVERITY_CLASS_COUNT);
    r->field = "emitted_severity";
    if (get_present(r))
        t->emitted_severity = get_enum(r, SRL_SEVERITY_COUNT);
    r->field = "auto_rule.kind";
    t->auto_rule.kind = get_enum(r, SRL_AUTO_RULE_PVRS + 1);
    r->field = "auto_rule.cvss_min";
    t->auto_rule.cvss_min = srl__rd_double(r);
    r->field = "auto_rule.cvss_max";
    t->auto_rule.cvss_max = srl__rd_double(r);
    r->field = "auto_rule.pvrs_categories";
    size_t cap = 0, n;
    while ((n = get_block(r, 1)) > 0) {
        if (!grow(r, (void **)&t->auto_rule.pvrs_categories, &cap, t->auto_rule.pvrs_count + n,
                  sizeof(int32_t)))
            return;
        for (size_t i = 0; i < n && !r->failed; i++)
            t->auto_rule.pvrs_categories[t->auto_rule.pvrs_count++] = srl__rd_int(r);
    }
    r->field = "default_expiry_days";
    if ((t->has_default_expiry_days = get_present(r)))
        t->default_expiry_days = srl__rd_int(r);
    r->field = "inactive";
    t->inactive = srl__rd_bool(r);
    r->field = "built_in";
    t->built_in = srl__rd_bool(r);
    get_meta(r, &t->meta);
}

static void decode_assessment(srl__rd_t *r, srl_assessment_t *a)
{
    r->field = "vulnerability_id";
    a->vulnerability_id = get_str(r);
    r->field = "scope.kind";
    a->scope_kind = get_enum(r, SRL_SCOPE_COUNT);
    r->field = "scope.name";
    a->scope_name = get_opt_str(r);
    r->field = "assessment_type";
    a->assessment_type = get_str(r);
    r->field = "comment";
    a->comment = get_opt_str(r);
    r->field = "package_filter";
    if ((a->has_package_filter = get_present(r))) {
        r->field = "package_filter.name";
        a->package_name = get_str(r);
        r->field = "package_filter.version_range";
        a->package_version_range = get_opt_str(r);
    }
    r->field = "expires_at";
    if ((a->has_expires_at = get_present(r)))
        a->expires_at = srl__rd_long(r);
    r->field = "automatic";
    a->automatic = srl__rd_bool(r);
    r->field = "assessed_by";
    a->assessed_by = get_opt_str(r);
    r->field = "assessed_at";
    a->assessed_at = srl__rd_long(r);
    get_meta(r, &a->meta);
}

static int cmp_entry_names(const void *x, const void *y)
{
    const srl_outcome_entry_t *const *a = x, *const *b = y;
    return strcmp((*a)->name, (*b)->name);
}

/* Map keys are unique (model.h); a writer repeating one is refused. */
static bool check_unique(srl__rd_t *r, const srl_outcome_entry_t *e, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(e[i].name, e[j].name) == 0)
                    return srl__rd_fail(r, "key \"%s\" appears twice", e[i].name);
        return true;
    }
    const srl_outcome_entry_t **sorted = malloc(n * sizeof(*sorted));
    if (!sorted)
        return srl__rd_fail(r, "out of memory");
    for (size_t i = 0; i < n; i++)
        sorted[i] = &e[i];
    qsort(sorted, n, sizeof(*sorted), cmp_entry_names);
    bool ok = true;
    for (size_t i = 1; i < n && ok; i++)
        if (strcmp(sorted[i]->name, sorted[i - 1]->name) == 0)
            ok = srl__rd_fail(r, "key \"%s\" appears twice", sorted[i]->name);
    free(sorted);
    return ok;
}

static void decode_outcomes(srl__rd_t *r, const char *field, srl_outcome_entry_t **items,
                            size_t *count)
{
    size_t cap = 0, n;
    r->field = field;
    while ((n = get_block(r, 2)) > 0) {
        if (!grow(r, (void **)items, &cap, *count + n, sizeof(**items)))
            return;
        for (size_t i = 0; i < n && !r->failed; i++) {
            srl_outcome_entry_t *e = &(*items)[*count];
            e->name = get_str(r);
            if (!e->name)
                return;
            (*count)++;
            e->outcome = get_enum(r, SRL_OUTCOME_COUNT);
        }
    }
    if (!r->failed)
        check_unique(r, *items, *count);
}

static void decode_policy(srl__rd_t *r, srl_policy_t *p)
{
    size_t cap = 0, n;
    r->field = "name";
    p->name = get_str(r);
    r->field = "description";
    p->description = get_opt_str(r);
    r->field = "feeds";
    while ((n = get_block(r, 1)) > 0) {
        if (!grow(r, (void **)&p->feeds, &cap, p->feed_count + n, sizeof(char *)))
            return;
        for (size_t i = 0; i < n && !r->failed; i++)
            if ((p->feeds[p->feed_count] = get_str(r)))
                p->feed_count++;
    }
    r->field = "unassessed";
    p->unassessed = get_enum(r, SRL_OUTCOME_COUNT);
    decode_outcomes(r, "by_assessment_type", &p->by_assessment_type, &p->by_assessment_type_count);
    r->field = "license_undetected";
    p->license_undetected = get_enum(r, SRL_OUTCOME_COUNT);
    r->field = "license_other";
    p->license_other = get_enum(r, SRL_OUTCOME_COUNT);
    decode_outcomes(r, "by_license", &p->by_license, &p->by_license_count);
    r->field = "deprecated";
    p->deprecated = get_enum(r, SRL_OUTCOME_COUNT);
    r->field = "unlisted";
    p->unlisted = get_enum(r, SRL_OUTCOME_COUNT);
    cap = 0;
    r->field = "exceptions";
    while ((n = get_block(r, 4)) > 0) {
        if (!grow(r, (void **)&p->exceptions, &cap, p->exception_count + n, sizeof(*p->exceptions)))
            return;
        for (size_t i = 0; i < n && !r->failed; i++) {
            srl_policy_exception_t *x = &p->exceptions[p->exception_count++];
            r->field = "exceptions.package";
            x->package = get_str(r);
            r->field = "exceptions.version_range";
            x->version_range = get_opt_str(r);
            r->field = "exceptions.rule_groups";
            size_t g;
            while ((g = get_block(r, 1)) > 0)
                for (size_t k = 0; k < g && !r->failed; k++) {
                    int sym = get_enum(r, RULE_GROUP_SYMBOLS);
                    if (sym < RULE_GROUP_KNOWN) /* "unknown" exempts from nothing */
                        x->rule_groups |= 1u << sym;
                }
            r->field = "exceptions.expires_at";
            if ((x->has_expires_at = get_present(r)))
                x->expires_at = srl__rd_long(r);
        }
        r->field = "exceptions";
    }
    r->field = "risk_profile";
    if ((p->has_risk_profile = get_present(r))) {
        srl_risk_profile_t *rp = &p->risk_profile;
        r->field = "risk_profile.network_exposure";
        rp->network_exposure = get_enum(r, SRL_RISK_COUNT);
        r->field = "risk_profile.access_interface";
        rp->access_interface = get_enum(r, SRL_RISK_COUNT);
        r->field = "risk_profile.service_outage";
        rp->service_outage = get_enum(r, SRL_RISK_COUNT);
        r->field = "risk_profile.data_breach";
        rp->data_breach = get_enum(r, SRL_RISK_COUNT);
        r->field = "risk_profile.data_tampering";
        rp->data_tampering = get_enum(r, SRL_RISK_COUNT);
    }
    get_meta(r, &p->meta);
}

/* Decode a body in our schema's encoding of kind. */
bool srl__codec_decode_body(srl_kind_t kind, srl__rd_t *r, srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        decode_type(r, &e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        decode_assessment(r, &e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        decode_policy(r, &e->u.policy);
        break;
    default:
        srl__rd_fail(r, "unknown kind %d", (int)kind);
        break;
    }
    r->field = NULL;
    if (!r->failed && srl__rd_left(r) > 0)
        srl__rd_fail(r, "%zu trailing bytes after the record", srl__rd_left(r));
    if (r->failed) {
        srl_entity_clear(e);
        e->kind = kind;
        return false;
    }
    return true;
}

bool srl_codec_peek_fingerprint(const void *buf, size_t len, uint64_t *fp, char *errstr,
                                size_t errstr_size)
{
    const uint8_t *p = buf;
    if (!buf || len < SRL_CODEC_HEADER_SIZE) {
        snprintf(errstr, errstr_size,
                 "value of %zu bytes is shorter than the %d-byte single-object header", len,
                 SRL_CODEC_HEADER_SIZE);
        return false;
    }
    if (p[0] != SRL_CODEC_MAGIC0 || p[1] != SRL_CODEC_MAGIC1) {
        snprintf(errstr, errstr_size,
                 "not Avro single-object encoding: marker %02x %02x, expected c3 01", p[0], p[1]);
        return false;
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[2 + i];
    *fp = v;
    return true;
}

bool srl_codec_peek(const void *buf, size_t len, srl_value_ref_t *ref, char *errstr,
                    size_t errstr_size)
{
    const uint8_t *p = buf;
    memset(ref, 0, sizeof(*ref));
    if (buf && len > 0 && p[0] == SRL_CODEC_CONFLUENT_MAGIC) {
        if (len < SRL_CODEC_CONFLUENT_HEADER_SIZE) {
            snprintf(errstr, errstr_size,
                     "value of %zu bytes is shorter than the %d-byte Confluent header", len,
                     SRL_CODEC_CONFLUENT_HEADER_SIZE);
            return false;
        }
        uint32_t id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        if (id > INT32_MAX) {
            snprintf(errstr, errstr_size, "Confluent schema id %" PRIu32 " out of range", id);
            return false;
        }
        ref->format = SRL_VALUE_FORMAT_CONFLUENT;
        ref->id = (int32_t)id;
        return true;
    }
    ref->format = SRL_VALUE_FORMAT_SINGLE_OBJECT;
    if (buf && len > 0 && p[0] != SRL_CODEC_MAGIC0) {
        snprintf(errstr, errstr_size,
                 "neither Avro single-object encoding (c3 01) nor the Confluent framing (00): "
                 "first byte %02x",
                 p[0]);
        return false;
    }
    return srl_codec_peek_fingerprint(buf, len, &ref->fingerprint, errstr, errstr_size);
}

bool srl_codec_to_confluent(const void *value, size_t len, int32_t id, uint8_t *out,
                            size_t *out_len, char *errstr, size_t errstr_size)
{
    srl_value_ref_t ref;
    if (!srl_codec_peek(value, len, &ref, errstr, errstr_size))
        return false;
    size_t header = ref.format == SRL_VALUE_FORMAT_CONFLUENT ? SRL_CODEC_CONFLUENT_HEADER_SIZE
                                                             : SRL_CODEC_HEADER_SIZE;
    if (ref.format == SRL_VALUE_FORMAT_CONFLUENT)
        id = ref.id; /* already framed: keep its id */
    out[0] = SRL_CODEC_CONFLUENT_MAGIC;
    out[1] = (uint8_t)((uint32_t)id >> 24);
    out[2] = (uint8_t)((uint32_t)id >> 16);
    out[3] = (uint8_t)((uint32_t)id >> 8);
    out[4] = (uint8_t)id;
    memmove(out + SRL_CODEC_CONFLUENT_HEADER_SIZE, (const uint8_t *)value + header, len - header);
    *out_len = SRL_CODEC_CONFLUENT_HEADER_SIZE + len - header;
    return true;
}

bool srl_codec_decode(srl_registry_t *reg, const void *buf, size_t len, srl_entity_t *e,
                      char *errstr, size_t errstr_size)
{
    uint64_t fp;
    srl_value_ref_t ref;
    memset(e, 0, sizeof(*e));
    if (!srl_codec_peek(buf, len, &ref, errstr, errstr_size))
        return false;
    const reg_entry_t *entry;
    size_t header;
    if (ref.format == SRL_VALUE_FORMAT_CONFLUENT) {
        entry = find_entry_by_id(reg, ref.id);
        if (!entry) {
            snprintf(errstr, errstr_size, "unknown schema id %" PRId32, ref.id);
            return false;
        }
        header = SRL_CODEC_CONFLUENT_HEADER_SIZE;
    } else {
        entry = find_entry(reg, ref.fingerprint);
        if (!entry) {
            snprintf(errstr, errstr_size, "unknown schema fingerprint %016" PRIx64,
                     ref.fingerprint);
            return false;
        }
        header = SRL_CODEC_HEADER_SIZE;
    }
    fp = entry->fingerprint;
    if (entry->unreadable) {
        snprintf(errstr, errstr_size, "%s: writer schema %016" PRIx64 " cannot be read as ours: %s",
                 srl_kind_name(entry->kind), fp, entry->unreadable);
        e->kind = entry->kind;
        return false;
    }
    srl__rd_t r;
    srl__rd_init(&r, (const uint8_t *)buf + header, len - header);
    if (!entry->ours) {
        reg->scratch.len = 0;
        reg->scratch.failed = false;
        if (!srl__resolver_transcode(entry->resolver, &r, &reg->scratch)) {
            snprintf(errstr, errstr_size, "%s (schema %016" PRIx64 "): %s",
                     srl_kind_name(entry->kind), fp, r.err);
            e->kind = entry->kind;
            return false;
        }
        srl__rd_init(&r, reg->scratch.data, reg->scratch.len);
    }
    if (!srl__codec_decode_body(entry->kind, &r, e)) {
        snprintf(errstr, errstr_size, "%s (schema %016" PRIx64 "): %s", srl_kind_name(entry->kind),
                 fp, r.err);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* evolution                                                            */

bool srl_schema_identify(const char *schema_json, uint64_t *fingerprint, srl_kind_t *kind,
                         char *errstr, size_t errstr_size)
{
    char err[512];
    srl__avro_schema_t *s = srl__avro_schema_parse(schema_json, err, sizeof(err));
    if (!s) {
        snprintf(errstr, errstr_size, "invalid schema: %s", err);
        return false;
    }
    bool ok = kind_of_schema(s, kind);
    if (!ok)
        snprintf(errstr, errstr_size, "a %s is none of our record types (%s, %s, %s)",
                 srl__avro_type_name(s->root), kind_record_names[0], kind_record_names[1],
                 kind_record_names[2]);
    *fingerprint = s->fingerprint;
    srl__avro_schema_free(s);
    return ok;
}

bool srl_schema_check_evolution(srl_registry_t *reg, const char *candidate_json, char *errstr,
                                size_t errstr_size)
{
    char err[512];
    bool ok = false;
    srl_kind_t kind;
    srl__avro_schema_t *cand = srl__avro_schema_parse(candidate_json, err, sizeof(err));
    srl__resolver_t *res = NULL;
    if (!cand) {
        snprintf(errstr, errstr_size, "invalid schema: %s", err);
        return false;
    }
    if (!kind_of_schema(cand, &kind)) {
        snprintf(errstr, errstr_size, "a %s is none of our record types (%s, %s, %s)",
                 srl__avro_type_name(cand->root), kind_record_names[0], kind_record_names[1],
                 kind_record_names[2]);
        goto cleanup;
    }
    const srl__avro_schema_t *ours = reg->ours[kind];
    /* backward: a reader with the candidate reads data written with ours */
    res = srl__resolver_new(ours, cand, SRL__RESOLVE_STRICT_OLD_WRITER, err, sizeof(err));
    if (!res) {
        snprintf(errstr, errstr_size,
                 "%s: not backward compatible (a reader with it cannot read current data): %s",
                 srl_kind_name(kind), err);
        goto cleanup;
    }
    srl__resolver_free(res);
    /* forward: a reader with ours reads data written with the candidate */
    res = srl__resolver_new(cand, ours, SRL__RESOLVE_STRICT_NEW_WRITER, err, sizeof(err));
    if (!res) {
        snprintf(errstr, errstr_size,
                 "%s: not forward compatible (current readers cannot read its data): %s",
                 srl_kind_name(kind), err);
        goto cleanup;
    }
    ok = true;
cleanup:
    srl__resolver_free(res);
    srl__avro_schema_free(cand);
    return ok;
}
