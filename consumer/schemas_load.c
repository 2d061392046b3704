/*
 * schemas_load.c - read <prefix>.schemas and add the writer schemas the
 * registry does not know yet (see schemas_load.h).
 *
 * A schema whose key does not match the fingerprint of its canonical form
 * is skipped with a warning: trusting the key would let one bad record
 * make every later record of that fingerprint decode with the wrong schema.
 */
#include "schemas_load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"
#include "sysrepl/schema_registry.h"

#define LOAD_TIMEOUT_MS 10000

struct srl_schemas_loader {
    srl_source_t *src;
    char *topic;
    int64_t *loaded_high; /* per partition, at the last read; NULL: never read */
    int partitions;
    srl_sr_client_t *sr; /* schema.registry.url; NULL: none */
};

srl_schemas_loader_t *srl_schemas_loader_new(srl_source_t *src, const char *topic)
{
    srl_schemas_loader_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->topic = strdup(topic))) {
        free(l);
        return NULL;
    }
    l->src = src;
    return l;
}

void srl_schemas_loader_free(srl_schemas_loader_t *l)
{
    if (!l)
        return;
    free(l->topic);
    free(l->loaded_high);
    srl_sr_client_free(l->sr);
    free(l);
}

static void add_schema(srl_registry_t *reg, const char *topic, const srl_record_t *r, int *added)
{
    char key[17] = "", reason[256] = "";
    char *json = malloc(r->value_len + 1);
    uint64_t fp = 0;
    if (!json)
        return;
    memcpy(json, r->value, r->value_len);
    json[r->value_len] = '\0';
    if (r->key && r->key_len < sizeof(key)) {
        memcpy(key, r->key, r->key_len);
        key[r->key_len] = '\0';
    }
    char *end;
    uint64_t key_fp = strtoull(key, &end, 16);
    bool key_ok = r->key_len == 16 && *end == '\0';
    bool known = key_ok && srl_registry_has(reg, key_fp);
    if (!known) {
        if (!srl_registry_add(reg, json, &fp, reason, sizeof(reason))) {
            srl_log(SRL_LOG_WARN, "consumer", "schema skipped",
                    "topic=%s offset=%" PRId64 " key=%s reason=%s", srl_log_q(topic), r->offset,
                    srl_log_q(key), srl_log_q(reason));
        } else if (!key_ok || fp != key_fp) {
            /* Added under its real fingerprint; the key was wrong. */
            srl_log(SRL_LOG_WARN, "consumer", "schema key is not its fingerprint",
                    "topic=%s offset=%" PRId64 " key=%s fingerprint=%016" PRIx64, srl_log_q(topic),
                    r->offset, srl_log_q(key), fp);
        } else {
            (*added)++;
            srl_log(SRL_LOG_INFO, "consumer", "writer schema loaded",
                    "topic=%s fingerprint=%016" PRIx64, srl_log_q(topic), fp);
        }
    }
    free(json);
}

bool srl_schemas_load(srl_schemas_loader_t *l, srl_registry_t *reg, int *added_out, char *errstr,
                      size_t errstr_size)
{
    srl_source_t *src = l->src;
    srl_source_pos_t *pos = NULL;
    int64_t *high = NULL;
    srl_source_batch_t batch = {0};
    bool ok = false, grown = false;
    int added = 0, parts = 0;

    if (src->ops->partitions(src, l->topic, &parts, LOAD_TIMEOUT_MS, errstr, errstr_size) !=
        SRL_SOURCE_OK)
        goto cleanup;
    pos = calloc((size_t)parts, sizeof(*pos));
    high = calloc((size_t)parts, sizeof(*high));
    if (!pos || !high) {
        snprintf(errstr, errstr_size, "out of memory");
        goto cleanup;
    }
    for (int p = 0; p < parts; p++) {
        int64_t low;
        if (src->ops->watermarks(src, l->topic, p, &low, &high[p], LOAD_TIMEOUT_MS, errstr,
                                 errstr_size) != SRL_SOURCE_OK)
            goto cleanup;
        if (!l->loaded_high || parts != l->partitions || l->loaded_high[p] != high[p])
            grown = true;
    }
    if (!grown) {
        ok = true;
        goto cleanup;
    }

    /* Read every partition from 0 to the high watermark taken above. */
    size_t npos = 0;
    for (int p = 0; p < parts; p++)
        if (high[p] > 0)
            pos[npos++] = (srl_source_pos_t){l->topic, SRL_KIND_COUNT, p, 0};
    while (npos > 0) {
        if (src->ops->fetch(src, pos, npos, 1000, 500, &batch, errstr, errstr_size) !=
            SRL_SOURCE_OK)
            goto cleanup;
        for (size_t i = 0; i < batch.count; i++) {
            const srl_record_t *r = &batch.records[i];
            for (size_t k = 0; k < npos; k++)
                if (pos[k].partition == r->partition && r->offset >= pos[k].offset)
                    pos[k].offset = r->offset + 1;
            if (r->value)
                add_schema(reg, l->topic, r, &added);
        }
        /* Drop the partitions that reached the watermark of the start. */
        size_t keep = 0;
        for (size_t k = 0; k < npos; k++) {
            bool done = pos[k].offset >= high[pos[k].partition] || batch.eof[k];
            if (!done)
                pos[keep++] = pos[k];
        }
        npos = keep;
        src->ops->release(src, &batch);
    }
    free(l->loaded_high);
    l->loaded_high = high;
    l->partitions = parts;
    high = NULL;
    ok = true;
cleanup:
    src->ops->release(src, &batch);
    srl_source_batch_free(&batch);
    free(pos);
    free(high);
    if (added_out)
        *added_out = added;
    return ok;
}

bool srl_schemas_loader_use_registry(srl_schemas_loader_t *l, const srl_config_t *cfg, char *errstr,
                                     size_t errstr_size)
{
    srl_sr_client_free(l->sr);
    l->sr = NULL;
    return srl_sr_client_new(cfg, &l->sr, errstr, errstr_size);
}

bool srl_schemas_resolve_id(srl_schemas_loader_t *l, srl_registry_t *reg, int32_t id, char *errstr,
                            size_t errstr_size)
{
    char why[512];
    char *json = NULL;
    uint64_t fp = 0;
    if (srl_registry_has_id(reg, id))
        return true;
    if (!srl_schemas_load(l, reg, NULL, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "unknown schema id %" PRId32 "; loading schemas failed: %s",
                 id, why);
        return false;
    }
    if (srl_registry_has_id(reg, id))
        return true;
    if (!l->sr) {
        snprintf(errstr, errstr_size,
                 "unknown schema id %" PRId32 " (not on the schema topic; no schema.registry.url)",
                 id);
        return false;
    }
    srl_sr_rc_t rc = srl_sr_schema_by_id(l->sr, id, &json, why, sizeof(why));
    bool ok = rc == SRL_SR_OK && srl_registry_add(reg, json, &fp, why, sizeof(why)) &&
              srl_registry_alias_id(reg, id, fp, why, sizeof(why));
    if (ok)
        srl_log(SRL_LOG_INFO, "consumer", "writer schema resolved",
                "registry=%s id=%" PRId32 " fingerprint=%016" PRIx64,
                srl_log_q(srl_sr_client_url(l->sr)), id, fp);
    else
        snprintf(errstr, errstr_size,
                 "unknown schema id %" PRId32 " (not on the schema topic; registry: %s)", id, why);
    free(json);
    return ok;
}
