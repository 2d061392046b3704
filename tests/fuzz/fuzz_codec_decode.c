/*
 * fuzz_codec_decode.c - libFuzzer target for srl_codec_decode.
 *
 * Input: a whole single-object value (first byte 0xC3), or a selector byte
 * followed by a body: the selector picks one of the registry's writer
 * schemas (ours, and the v2 test schemas, whose records go through
 * resolution) and its header is put in front of the body.
 *
 * Properties: decoding never crashes, leaks or reads out of bounds; a failed
 * decode leaves the entity cleared with a reason; a decoded entity
 * re-encodes, and that encoding decodes again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/codec.h"

static srl_registry_t *reg;
static uint64_t writers[16];
static size_t nwriters;

static void add_schema_file(const char *rel)
{
    char path[1024], err[512];
    const char *root = getenv("SRL_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/%s", root ? root : SRL_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        abort();
    }
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (!srl_registry_add(reg, text, &writers[nwriters++], err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", path, err);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    reg = srl_registry_new(err, sizeof(err));
    if (!reg) {
        fprintf(stderr, "registry: %s\n", err);
        abort();
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        writers[nwriters++] = srl_registry_writer_fingerprint(reg, (srl_kind_t)k);
    add_schema_file("tests/data/schemas/assessment_type_v2.avsc");
    add_schema_file("tests/data/schemas/vulnerability_assessment_v2.avsc");
    add_schema_file("tests/data/schemas/policy_v2.avsc");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    srl_entity_t e;
    uint8_t *buf = NULL;
    const uint8_t *in = data;
    size_t len = size;

    if (size > 0 && data[0] != SRL_CODEC_MAGIC0) {
        uint64_t fp = writers[data[0] % nwriters];
        len = SRL_CODEC_HEADER_SIZE + size - 1;
        buf = malloc(len);
        buf[0] = SRL_CODEC_MAGIC0;
        buf[1] = SRL_CODEC_MAGIC1;
        for (int i = 0; i < 8; i++)
            buf[2 + i] = (uint8_t)(fp >> (8 * i));
        memcpy(buf + SRL_CODEC_HEADER_SIZE, data + 1, size - 1);
        in = buf;
    }
    if (srl_codec_decode(reg, in, len, &e, err, sizeof(err))) {
        uint8_t *again;
        size_t again_len;
        if (!srl_codec_encode(reg, &e, &again, &again_len, err, sizeof(err))) {
            fprintf(stderr, "decoded entity does not re-encode: %s\n", err);
            abort();
        }
        srl_entity_t e2;
        if (!srl_codec_decode(reg, again, again_len, &e2, err, sizeof(err))) {
            fprintf(stderr, "re-encoded entity does not decode: %s\n", err);
            abort();
        }
        srl_entity_clear(&e2);
        free(again);
        srl_entity_clear(&e);
    } else if (err[0] == '\0') {
        fprintf(stderr, "decode failed without a reason\n");
        abort();
    }
    free(buf);
    return 0;
}
