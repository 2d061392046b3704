/*
 * decode.c - records to upserts, tombstones or dead letters (see decode.h).
 */
#include "decode.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sysrepl/json.h"
#include "sysrepl/keys.h"
#include "sysrepl/rules.h"

srl_decoded_t srl_decode_record(srl_registry_t *reg, srl_schemas_loader_t *loader,
                                const srl_record_t *r, srl_entity_t *e, char *key, size_t key_size,
                                char *reason, size_t reason_size)
{
    char why[512];
    uint64_t fp;

    memset(e, 0, sizeof(*e));
    e->kind = r->kind;
    if (!r->key || r->key_len == 0) {
        snprintf(reason, reason_size, "record has no key");
        return SRL_DECODED_DEAD;
    }
    if (r->key_len >= key_size || memchr(r->key, '\0', r->key_len)) {
        /* The key buffer holds SRL_KEY_MAX bytes, a rule the hub's store
         * keeps too (rules.h): only a foreign writer gets here. */
        snprintf(reason, reason_size, "record key: at most %d bytes, no NUL byte, got %zu bytes",
                 SRL_KEY_MAX, r->key_len);
        return SRL_DECODED_DEAD;
    }
    if (!r->value) {
        memcpy(key, r->key, r->key_len);
        key[r->key_len] = '\0';
        if (r->version < 0) {
            snprintf(reason, reason_size,
                     "tombstone without a valid "
                     "sysrepl.version"
                     " header");
            return SRL_DECODED_DEAD;
        }
        return SRL_DECODED_TOMBSTONE;
    }
    srl_value_ref_t ref;
    if (!srl_codec_peek(r->value, r->value_len, &ref, why, sizeof(why))) {
        snprintf(reason, reason_size, "not a sysrepl record: %s", why);
        return SRL_DECODED_DEAD;
    }
    fp = ref.fingerprint;
    if (ref.format == SRL_VALUE_FORMAT_CONFLUENT) {
        if (!srl_registry_has_id(reg, ref.id)) {
            if (!loader) {
                snprintf(reason, reason_size, "unknown schema id %" PRId32, ref.id);
                return SRL_DECODED_DEAD;
            }
            if (!srl_schemas_resolve_id(loader, reg, ref.id, reason, reason_size))
                return SRL_DECODED_DEAD;
        }
    } else if (!srl_registry_has(reg, fp)) {
        int added = 0;
        if (!loader) {
            snprintf(reason, reason_size, "unknown schema fingerprint %016" PRIx64, fp);
            return SRL_DECODED_DEAD;
        }
        if (!srl_schemas_load(loader, reg, &added, why, sizeof(why))) {
            snprintf(reason, reason_size,
                     "unknown schema fingerprint %016" PRIx64 "; loading schemas failed: %s", fp,
                     why);
            return SRL_DECODED_DEAD;
        }
        if (!srl_registry_has(reg, fp)) {
            snprintf(reason, reason_size,
                     "unknown schema fingerprint %016" PRIx64 " (not on the schema topic)", fp);
            return SRL_DECODED_DEAD;
        }
    }
    if (!srl_codec_decode(reg, r->value, r->value_len, e, why, sizeof(why))) {
        snprintf(reason, reason_size, "undecodable value: %s", why);
        return SRL_DECODED_DEAD;
    }
    if (e->kind != r->kind) {
        snprintf(reason, reason_size, "record of kind %s on the topic of %s",
                 srl_kind_name(e->kind), srl_kind_name(r->kind));
        goto dead;
    }
    if (!srl_entity_validate(e, why, sizeof(why))) {
        snprintf(reason, reason_size, "impossible value: %s", why);
        goto dead;
    }
    int n = srl_key_build(e, key, key_size);
    if (n < 0) {
        snprintf(reason, reason_size, "record content has no key");
        goto dead;
    }
    if ((size_t)n != r->key_len || memcmp(key, r->key, r->key_len) != 0) {
        snprintf(reason, reason_size, "record key \"%.*s\" is not the key of its content \"%s\"",
                 (int)(r->key_len > 200 ? 200 : r->key_len), r->key, key);
        goto dead;
    }
    return SRL_DECODED_UPSERT;
dead:
    srl_entity_clear(e);
    return SRL_DECODED_DEAD;
}
