/*
 * codec_interop.c - helper of tests/unit/test_codec_interop.sh: lets a
 * second Avro implementation (python fastavro) check our encodings and
 * give us its own.
 *
 *   srl-codec-interop schemas            kind, fingerprint hex, canonical form per line
 *   srl-codec-interop write DIR          DIR/<sample>.avro (our single-object
 *                                        encoding) and DIR/<sample>.json (JSON form)
 *   srl-codec-interop read FILE... [--schema AVSC]...
 *                                        decode each FILE; print "FILE<TAB>JSON form"
 *                                        or "FILE<TAB>ERROR reason"
 * Exit 0 unless a usage, file or encode error occurs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/codec.h"
#include "sysrepl/json.h"
#include "sysrepl/schemas_cmd.h"
#include "unit/entity_fixtures.h"

static char *slurp(const char *path, size_t *len)
{
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
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

struct write_ctx {
    srl_registry_t *reg;
    const char *dir;
    int failures;
};

static void write_sample(const char *label, const srl_entity_t *e, void *arg)
{
    struct write_ctx *c = arg;
    char err[512], path[1024];
    uint8_t *buf;
    size_t len;
    if (!srl_codec_encode(c->reg, e, &buf, &len, err, sizeof(err))) {
        fprintf(stderr, "%s: encode: %s\n", label, err);
        c->failures++;
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.avro", c->dir, label);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "%s: cannot write\n", path);
        c->failures++;
    }
    if (f)
        fclose(f);
    free(buf);
    json_t *j = srl_json_from_entity(e, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/%s.json", c->dir, label);
    if (!j || json_dump_file(j, path, JSON_COMPACT) != 0) {
        fprintf(stderr, "%s: cannot write JSON form\n", path);
        c->failures++;
    }
    json_decref(j);
}

int main(int argc, char **argv)
{
    char err[1024];
    int rc = 0;
    if (argc >= 2 && strcmp(argv[1], "schemas") == 0)
        return srl_schemas_command(argc - 1, argv + 1, stdout, stderr);
    srl_registry_t *reg = srl_registry_new(err, sizeof(err));
    if (!reg) {
        fprintf(stderr, "registry: %s\n", err);
        return 1;
    }
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        struct write_ctx c = {reg, argv[2], 0};
        fx_each_sample(write_sample, &c);
        rc = c.failures ? 1 : 0;
    } else if (argc >= 3 && strcmp(argv[1], "read") == 0) {
        for (int i = 2; i < argc; i++) { /* schemas first: they may come after files */
            if (strcmp(argv[i], "--schema") != 0 || i + 1 >= argc)
                continue;
            size_t len;
            char *text = slurp(argv[++i], &len);
            if (!text || !srl_registry_add(reg, text, NULL, err, sizeof(err))) {
                fprintf(stderr, "%s: %s\n", argv[i], text ? err : "cannot read");
                rc = 1;
            }
            free(text);
        }
        for (int i = 2; i < argc && rc == 0; i++) {
            if (strcmp(argv[i], "--schema") == 0) {
                i++;
                continue;
            }
            size_t len;
            char *buf = slurp(argv[i], &len);
            srl_entity_t e;
            if (!buf) {
                fprintf(stderr, "%s: cannot read\n", argv[i]);
                rc = 1;
                break;
            }
            if (srl_codec_decode(reg, buf, len, &e, err, sizeof(err))) {
                json_t *j = srl_json_from_entity(&e, err, sizeof(err));
                char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
                printf("%s\t%s\n", argv[i], text ? text : "ERROR cannot show");
                free(text);
                json_decref(j);
                srl_entity_clear(&e);
            } else {
                printf("%s\tERROR %s\n", argv[i], err);
            }
            free(buf);
        }
    } else {
        fprintf(stderr, "usage: %s schemas | write DIR | read FILE... [--schema AVSC]...\n",
                argv[0]);
        rc = 1;
    }
    srl_registry_free(reg);
    return rc;
}
