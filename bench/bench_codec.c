/*
 * bench_codec.c - records/s of our Avro codec on one core, side by side with
 * avro-c's raw generic encode/decode of the same record in the same run.
 *
 *   bench_codec [--seconds S]     (default 1 s per measurement)
 *
 * The record is a typical vulnerability assessment (feed scope, package
 * filter, comment, expiry: every optional field present). What each column
 * measures:
 *   sysrepl encode   srl_codec_encode: entity -> malloc'd single-object value
 *                    (header included), buffer freed each time
 *   sysrepl decode   srl_codec_decode: value -> entity (every string malloc'd,
 *                    UTF-8 checked), then srl_entity_clear
 *   sysrepl decode, v2 writer
 *                    the same record written with tests/data/schemas/
 *                    vulnerability_assessment_v2.avsc: resolution (skip the
 *                    unknown field, fill the dropped one) then decode
 *   avro-c encode    avro_value_write of a filled generic value into a
 *                    reused avro_writer_memory (no header, no allocation)
 *   avro-c decode    avro_value_read into a reused generic value from an
 *                    avro_reader_memory (strings reuse their buffers)
 * avro-c's numbers are its best case (everything reused); ours include the
 * allocations the API implies.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "../common/avro_resolve.h"
#include "../common/codec_internal.h"
#include "sysrepl/clock.h"
#include "sysrepl/codec.h"

static double seconds_per_run = 1.0;

static double now(void)
{
    return (double)srl_clock_mono_us() / 1e6;
}

#define DIE(...)                      \
    do {                              \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr);          \
        exit(1);                      \
    } while (0)

static void typical_assessment(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT;
    srl_assessment_t *a = &e->u.assessment;
    a->vulnerability_id = strdup("CVE-2021-44228");
    a->assessment_type = strdup("Blocked");
    a->comment = strdup("Log4Shell: remote code execution through JNDI lookups; upgrade");
    a->scope_kind = SRL_SCOPE_FEED;
    a->scope_name = strdup("maven-central");
    a->has_package_filter = true;
    a->package_name = strdup("org.apache.logging.log4j:log4j-core");
    a->package_version_range = strdup("[2.0,2.17.1)");
    a->has_expires_at = true;
    a->expires_at = 1795694400000LL;
    a->automatic = false;
    a->assessed_by = strdup("security-team");
    a->assessed_at = 1639094400000LL;
    a->meta.origin = strdup("hub-eu-1");
    a->meta.version = 1234567;
    a->meta.changed_at = 1764158400000LL;
}

/* ---- avro-c reference ---- */

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_string(&f, s))
        DIE("avro-c: %s: %s", name, avro_strerror());
}

static void set_opt_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_branch(&f, s ? 1 : 0, &b) ||
        (s ? avro_value_set_string(&b, s) : avro_value_set_null(&b)))
        DIE("avro-c: %s: %s", name, avro_strerror());
}

static void set_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_long(&f, v))
        DIE("avro-c: %s: %s", name, avro_strerror());
}

static void fill_avro(avro_value_t *rec, const srl_assessment_t *a)
{
    avro_value_t f, b, g;
    set_str(rec, "vulnerability_id", a->vulnerability_id);
    if (avro_value_get_by_name(rec, "scope", &f, NULL) ||
        avro_value_get_by_name(&f, "kind", &g, NULL) || avro_value_set_enum(&g, a->scope_kind))
        DIE("avro-c: scope: %s", avro_strerror());
    set_opt_str(&f, "name", a->scope_name);
    set_str(rec, "assessment_type", a->assessment_type);
    set_opt_str(rec, "comment", a->comment);
    if (avro_value_get_by_name(rec, "package_filter", &f, NULL) || avro_value_set_branch(&f, 1, &b))
        DIE("avro-c: package_filter: %s", avro_strerror());
    set_str(&b, "name", a->package_name);
    set_opt_str(&b, "version_range", a->package_version_range);
    if (avro_value_get_by_name(rec, "expires_at", &f, NULL) || avro_value_set_branch(&f, 1, &b) ||
        avro_value_set_long(&b, a->expires_at))
        DIE("avro-c: expires_at: %s", avro_strerror());
    if (avro_value_get_by_name(rec, "automatic", &f, NULL) ||
        avro_value_set_boolean(&f, a->automatic))
        DIE("avro-c: automatic: %s", avro_strerror());
    set_opt_str(rec, "assessed_by", a->assessed_by);
    set_long(rec, "assessed_at", a->assessed_at);
    set_str(rec, "origin", a->meta.origin);
    set_long(rec, "version", a->meta.version);
    set_long(rec, "changed_at", a->meta.changed_at);
}

/* Runs body in batches until seconds_per_run elapsed; records/s. */
#define MEASURE(rate_out, body)                  \
    do {                                         \
        long n_ = 0;                             \
        double t0_ = now(), t1_;                 \
        do {                                     \
            for (int i_ = 0; i_ < 10000; i_++) { \
                body;                            \
            }                                    \
            n_ += 10000;                         \
            t1_ = now();                         \
        } while (t1_ - t0_ < seconds_per_run);   \
        (rate_out) = (double)n_ / (t1_ - t0_);   \
    } while (0)

int main(int argc, char **argv)
{
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds_per_run = strtod(argv[++i], &end);
            if (*end || seconds_per_run <= 0)
                DIE("--seconds: expected a positive number");
        } else {
            DIE("usage: %s [--seconds S]", argv[0]);
        }
    }

    srl_registry_t *reg = srl_registry_new(err, sizeof(err));
    if (!reg)
        DIE("registry: %s", err);
    srl_entity_t e;
    typical_assessment(&e);

    /* ours: one encoding to decode, and the same record as a v2 writer's */
    uint8_t *value;
    size_t value_len;
    if (!srl_codec_encode(reg, &e, &value, &value_len, err, sizeof(err)))
        DIE("encode: %s", err);

    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/data/schemas/vulnerability_assessment_v2.avsc",
             getenv("SRL_SOURCE_DIR") ? getenv("SRL_SOURCE_DIR") : SRL_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    if (!f)
        DIE("%s: cannot open", path);
    static char v2_text[65536];
    size_t v2_len = fread(v2_text, 1, sizeof(v2_text) - 1, f);
    fclose(f);
    v2_text[v2_len] = '\0';
    uint64_t v2_fp;
    if (!srl_registry_add(reg, v2_text, &v2_fp, err, sizeof(err)))
        DIE("v2: %s", err);
    const srl__avro_schema_t *ours =
        srl__registry_schema(reg, srl_registry_writer_fingerprint(reg, SRL_KIND_ASSESSMENT));
    const srl__avro_schema_t *v2 = srl__registry_schema(reg, v2_fp);
    srl__resolver_t *to_v2 = srl__resolver_new(ours, v2, SRL__RESOLVE_DATA, err, sizeof(err));
    if (!to_v2)
        DIE("resolver: %s", err);
    srl__rd_t r;
    srl__wr_t w = {0};
    uint8_t header[SRL_CODEC_HEADER_SIZE] = {SRL_CODEC_MAGIC0, SRL_CODEC_MAGIC1};
    for (int i = 0; i < 8; i++)
        header[2 + i] = (uint8_t)(v2_fp >> (8 * i));
    srl__wr_raw(&w, header, sizeof(header));
    srl__rd_init(&r, value + SRL_CODEC_HEADER_SIZE, value_len - SRL_CODEC_HEADER_SIZE);
    if (!srl__resolver_transcode(to_v2, &r, &w))
        DIE("to v2: %s", r.err);
    uint8_t *v2_value = w.data;
    size_t v2_value_len = w.len;

    /* avro-c: the same schema text, a generic value filled alike */
    avro_schema_t schema;
    const char *ours_json = srl_registry_writer_json(reg, SRL_KIND_ASSESSMENT);
    if (avro_schema_from_json_length(ours_json, strlen(ours_json), &schema))
        DIE("avro-c schema: %s", avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, rec_in;
    if (!iface || avro_generic_value_new(iface, &rec) || avro_generic_value_new(iface, &rec_in))
        DIE("avro-c value: %s", avro_strerror());
    fill_avro(&rec, &e.u.assessment);
    static char abuf[4096];
    avro_writer_t aw = avro_writer_memory(abuf, sizeof(abuf));
    if (avro_value_write(aw, &rec))
        DIE("avro-c write: %s", avro_strerror());
    int64_t alen = avro_writer_tell(aw);
    if ((size_t)alen != value_len - SRL_CODEC_HEADER_SIZE ||
        memcmp(abuf, value + SRL_CODEC_HEADER_SIZE, (size_t)alen) != 0)
        DIE("avro-c and sysrepl encodings of the record differ (%lld vs %zu bytes)",
            (long long)alen, value_len - SRL_CODEC_HEADER_SIZE);
    avro_reader_t ar = avro_reader_memory(abuf, alen);

    /* the same record in the Confluent framing (value.format = confluent) */
    static uint8_t cf_value[4096], cf_out[4096];
    size_t cf_len = 0;
    int32_t cf_id = srl_schema_id_derive(srl_registry_writer_fingerprint(reg, SRL_KIND_ASSESSMENT));
    if (value_len > sizeof(cf_value) ||
        !srl_codec_to_confluent(value, value_len, cf_id, cf_value, &cf_len, err, sizeof(err)))
        DIE("to confluent: %s", err);

    double ours_enc, ours_dec, ours_dec_v2, avro_enc, avro_dec, ours_enc_cf, ours_dec_cf;
    MEASURE(ours_enc, {
        uint8_t *out;
        size_t len;
        if (!srl_codec_encode(reg, &e, &out, &len, err, sizeof(err)))
            DIE("encode: %s", err);
        free(out);
    });
    MEASURE(ours_dec, {
        srl_entity_t d;
        if (!srl_codec_decode(reg, value, value_len, &d, err, sizeof(err)))
            DIE("decode: %s", err);
        srl_entity_clear(&d);
    });
    MEASURE(ours_dec_v2, {
        srl_entity_t d;
        if (!srl_codec_decode(reg, v2_value, v2_value_len, &d, err, sizeof(err)))
            DIE("decode v2: %s", err);
        srl_entity_clear(&d);
    });
    MEASURE(ours_enc_cf, {
        uint8_t *out;
        size_t len;
        size_t flen;
        if (!srl_codec_encode(reg, &e, &out, &len, err, sizeof(err)) ||
            !srl_codec_to_confluent(out, len, cf_id, cf_out, &flen, err, sizeof(err)))
            DIE("encode confluent: %s", err);
        free(out);
    });
    MEASURE(ours_dec_cf, {
        srl_entity_t d;
        if (!srl_codec_decode(reg, cf_value, cf_len, &d, err, sizeof(err)))
            DIE("decode confluent: %s", err);
        srl_entity_clear(&d);
    });
    MEASURE(avro_enc, {
        avro_writer_reset(aw);
        if (avro_value_write(aw, &rec))
            DIE("avro-c write: %s", avro_strerror());
    });
    MEASURE(avro_dec, {
        avro_reader_memory_set_source(ar, abuf, alen);
        if (avro_value_read(ar, &rec_in))
            DIE("avro-c read: %s", avro_strerror());
    });

    printf("record: typical vulnerability assessment, %zu-byte body (+%d header)\n",
           value_len - SRL_CODEC_HEADER_SIZE, SRL_CODEC_HEADER_SIZE);
    printf("%-32s %14s %14s %7s\n", "operation (one core)", "sysrepl rec/s", "avro-c rec/s",
           "ratio");
    printf("%-32s %14.0f %14.0f %6.2fx\n", "encode", ours_enc, avro_enc, ours_enc / avro_enc);
    printf("%-32s %14.0f %14.0f %6.2fx\n", "decode (writer = our schema)", ours_dec, avro_dec,
           ours_dec / avro_dec);
    printf("%-32s %14.0f %14.0f %6.2fx\n", "decode (v2 writer, resolved)", ours_dec_v2, avro_dec,
           ours_dec_v2 / avro_dec);
    printf("%-32s %14.0f %14.0f %6.2fx\n", "encode + Confluent framing", ours_enc_cf, avro_enc,
           ours_enc_cf / avro_enc);
    printf("%-32s %14.0f %14.0f %6.2fx\n", "decode (Confluent framing)", ours_dec_cf, avro_dec,
           ours_dec_cf / avro_dec);

    avro_reader_free(ar);
    avro_writer_free(aw);
    avro_value_decref(&rec);
    avro_value_decref(&rec_in);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    srl__resolver_free(to_v2);
    free(v2_value);
    free(value);
    srl_entity_clear(&e);
    srl_registry_free(reg);
    return 0;
}
