/*
 * codec_test_util.h - private to the codec unit tests: read files from the
 * source tree, encode JSON with any schema, build single-object values.
 */
#ifndef SRL_TEST_CODEC_UTIL_H
#define SRL_TEST_CODEC_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/avro_resolve.h"
#include "../../common/avro_schema.h"
#include "../../common/codec_internal.h"
#include "sysrepl/codec.h"

/* Whole file under the source tree, NUL-terminated; NULL if unreadable. */
static inline char *cu_read_source(const char *rel)
{
    char path[1024];
    const char *root = getenv("SRL_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/%s", root && root[0] ? root : SRL_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A single-object value: header for fp, then the body. Caller frees. */
static inline uint8_t *cu_single_object(uint64_t fp, const uint8_t *body, size_t body_len,
                                        size_t *out_len)
{
    uint8_t *out = malloc(SRL_CODEC_HEADER_SIZE + body_len + 1);
    out[0] = SRL_CODEC_MAGIC0;
    out[1] = SRL_CODEC_MAGIC1;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(fp >> (8 * i));
    if (body_len)
        memcpy(out + SRL_CODEC_HEADER_SIZE, body, body_len);
    *out_len = SRL_CODEC_HEADER_SIZE + body_len;
    return out;
}

/* Encode the JSON text doc with the schema (JSON text) as a single-object
 * value; aborts the test on error. Caller frees. */
static inline uint8_t *cu_encode_json(const char *schema_json, const char *doc, size_t *out_len)
{
    char err[512];
    srl__avro_schema_t *s = srl__avro_schema_parse(schema_json, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "schema: %s\n", err);
        abort();
    }
    json_error_t jerr;
    json_t *j = json_loads(doc, 0, &jerr);
    if (!j) {
        fprintf(stderr, "doc: %s\n", jerr.text);
        abort();
    }
    srl__wr_t w = {0};
    if (!srl__avro_encode_json(s->root, j, false, &w, "", err, sizeof(err))) {
        fprintf(stderr, "encode: %s\n", err);
        abort();
    }
    uint8_t *out = cu_single_object(s->fingerprint, w.data, w.len, out_len);
    free(w.data);
    json_decref(j);
    srl__avro_schema_free(s);
    return out;
}

#endif
