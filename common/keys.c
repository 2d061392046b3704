/*
 * keys.c - the Kafka record key of an entity (see keys.h for the format).
 *
 * The key is a pure function of the entity's identifying fields, so the
 * same entity always gets the same bytes and compaction keeps one record
 * per entity. A vulnerability id never contains '|' (json.c enforces its
 * form), so the first '|' of an assessment key always splits id and scope.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/keys.h"

static bool present(const char *s)
{
    return s && s[0] != '\0';
}

int srl_key_build(const srl_entity_t *e, char *buf, size_t buf_size)
{
    int n;

    if (!e || !buf || buf_size == 0)
        return -1;
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        if (!present(e->u.type.name))
            return -1;
        n = snprintf(buf, buf_size, "%s", e->u.type.name);
        break;
    case SRL_KIND_POLICY:
        if (!present(e->u.policy.name))
            return -1;
        n = snprintf(buf, buf_size, "%s", e->u.policy.name);
        break;
    case SRL_KIND_ASSESSMENT: {
        const srl_assessment_t *a = &e->u.assessment;
        if (!present(a->vulnerability_id))
            return -1;
        if (a->scope_kind == SRL_SCOPE_GLOBAL) {
            n = snprintf(buf, buf_size, "%s|global", a->vulnerability_id);
        } else {
            const char *kind = srl_scope_kind_name(a->scope_kind);
            if (!kind || !present(a->scope_name))
                return -1;
            n = snprintf(buf, buf_size, "%s|%s:%s", a->vulnerability_id, kind, a->scope_name);
        }
        break;
    }
    default:
        return -1;
    }
    if (n < 0 || (size_t)n >= buf_size)
        return -1;
    return n;
}

char *srl_key_dup(const srl_entity_t *e)
{
    char small[256];
    int n = srl_key_build(e, small, sizeof(small));
    if (n >= 0)
        return strdup(small);

    /* Too long for the stack buffer, or a key field is missing: size it. */
    size_t size = 64;
    if (e && e->kind == SRL_KIND_ASSESSMENT_TYPE && e->u.type.name)
        size += strlen(e->u.type.name);
    else if (e && e->kind == SRL_KIND_POLICY && e->u.policy.name)
        size += strlen(e->u.policy.name);
    else if (e && e->kind == SRL_KIND_ASSESSMENT) {
        const srl_assessment_t *a = &e->u.assessment;
        size += a->vulnerability_id ? strlen(a->vulnerability_id) : 0;
        size += a->scope_name ? strlen(a->scope_name) : 0;
    }
    char *buf = malloc(size);
    if (!buf)
        return NULL;
    if (srl_key_build(e, buf, size) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
