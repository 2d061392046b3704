/*
 * schemas_cmd.c - "sysrepl schemas": lists the compiled-in writer schemas
 * (kind, fingerprint as 16 lower-case hex digits, schema id, registry
 * subject, parsing canonical form),
 * and checks a candidate .avsc against our evolution rules
 * (schemas/README.md) before anyone ships it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/codec.h"
#include "sysrepl/schema_registry.h"
#include "sysrepl/schemas_cmd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sysrepl schemas                    show each kind's schema: fingerprint, "
               "schema id, subject, canonical form\n"
               "       sysrepl schemas --check FILE.avsc  may FILE replace our schema of its "
               "kind?\n"
               "exit: 0 ok, 1 usage or unreadable/invalid file, 2 incompatible\n");
}

static char *read_file(const char *path, char *errbuf, size_t errsize)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) {
        snprintf(errbuf, errsize, "%s: cannot open: %m", path);
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            if (cap > (64u << 20)) {
                snprintf(errbuf, errsize, "%s: larger than 64 MiB", path);
                goto fail;
            }
            char *p = realloc(buf, cap + 65536);
            if (!p) {
                snprintf(errbuf, errsize, "%s: out of memory", path);
                goto fail;
            }
            buf = p;
            cap += 65536;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(errbuf, errsize, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

int srl_schemas_command(int argc, char **argv, FILE *out, FILE *err)
{
    char errstr[1024];
    int rc = SRL_SCHEMAS_EXIT_OK;
    char *text = NULL;
    srl_registry_t *reg = NULL;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(out);
        return SRL_SCHEMAS_EXIT_OK;
    }
    const char *prefix = "sysrepl";
    if (argc >= 3 && strcmp(argv[1], "--prefix") == 0) {
        prefix = argv[2];
        argv[2] = argv[0];
        argc -= 2;
        argv += 2;
    }
    if (!(argc == 1 || (argc == 3 && strcmp(argv[1], "--check") == 0))) {
        usage(err);
        return SRL_SCHEMAS_EXIT_USAGE;
    }
    reg = srl_registry_new(errstr, sizeof(errstr));
    if (!reg) {
        fprintf(err, "schemas: %s\n", errstr);
        return SRL_SCHEMAS_EXIT_USAGE;
    }
    if (argc == 1) {
        for (int k = 0; k < SRL_KIND_COUNT; k++) {
            char subject[300];
            uint64_t fp = srl_registry_writer_fingerprint(reg, (srl_kind_t)k);
            if (!srl_sr_subject(prefix, (srl_kind_t)k, subject, sizeof(subject))) {
                fprintf(err, "schemas: topic prefix \"%s\" is too long\n", prefix);
                rc = SRL_SCHEMAS_EXIT_USAGE;
                goto cleanup;
            }
            fprintf(out, "%s %016" PRIx64 " %" PRId32 " %s %s\n", srl_kind_name((srl_kind_t)k), fp,
                    srl_schema_id_derive(fp), subject,
                    srl_registry_writer_canonical(reg, (srl_kind_t)k));
        }
        goto cleanup;
    }

    const char *path = argv[2];
    text = read_file(path, errstr, sizeof(errstr));
    if (!text) {
        fprintf(err, "schemas: %s\n", errstr);
        rc = SRL_SCHEMAS_EXIT_USAGE;
        goto cleanup;
    }
    char *canonical = srl_schema_canonical(text, errstr, sizeof(errstr));
    if (!canonical) {
        fprintf(err, "schemas: %s: %s\n", path, errstr);
        rc = SRL_SCHEMAS_EXIT_USAGE;
        goto cleanup;
    }
    uint64_t fp = srl_fingerprint64(canonical, strlen(canonical));
    free(canonical);
    if (srl_schema_check_evolution(reg, text, errstr, sizeof(errstr))) {
        fprintf(out, "%s: compatible (fingerprint %016" PRIx64 "): it may replace ours\n", path,
                fp);
    } else if (strncmp(errstr, "invalid schema", 14) == 0) {
        fprintf(err, "schemas: %s: %s\n", path, errstr);
        rc = SRL_SCHEMAS_EXIT_USAGE;
    } else {
        fprintf(out, "%s: incompatible (fingerprint %016" PRIx64 "): %s\n", path, fp, errstr);
        rc = SRL_SCHEMAS_EXIT_INCOMPATIBLE;
    }
cleanup:
    free(text);
    srl_registry_free(reg);
    return rc;
}
