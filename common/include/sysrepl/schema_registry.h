/*
 * schema_registry.h - a client of the Confluent Schema Registry REST API
 * (libcurl): register a writer schema under a subject, fetch a schema by
 * id. Used by the producer (value.format = confluent with
 * schema.registry.url) and by the consumer (ids not on <prefix>.schemas).
 * A sysrepl-bridge serves the same API (bridge/routes_registry.c).
 *
 * Config keys read: schema.registry.url, schema.registry.basic_auth (sent
 * as HTTP basic auth, never logged), schema.registry.ca_file.
 * Thread-compatible: one client per thread.
 */
#ifndef SRL_SCHEMA_REGISTRY_H
#define SRL_SCHEMA_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/config.h"
#include "sysrepl/model.h"

typedef struct srl_sr_client srl_sr_client_t;

/* How a registry call ended. */
typedef enum {
    SRL_SR_OK = 0,
    SRL_SR_RETRY,     /* no answer, 408, 429, 5xx: try again later */
    SRL_SR_REFUSED,   /* 409 (incompatible) or 422 (invalid schema): final */
    SRL_SR_NOT_FOUND, /* 404: unknown id or subject */
    SRL_SR_FATAL      /* 401/403, other 4xx, a certificate that does not verify */
} srl_sr_rc_t;

/* A client for schema.registry.url. *client is NULL (and true returned)
 * when the key is empty; false with errstr naming the key when it is not
 * an http(s):// URL. */
bool srl_sr_client_new(const srl_config_t *cfg, srl_sr_client_t **client, char *errstr,
                       size_t errstr_size);
void srl_sr_client_free(srl_sr_client_t *c); /* NULL accepted */
/* The registry's URL (for log lines). */
const char *srl_sr_client_url(const srl_sr_client_t *c);

/* The subject of a kind's values (TopicNameStrategy): "<topic>-value". */
bool srl_sr_subject(const char *prefix, srl_kind_t kind, char *buf, size_t size);

/* POST /subjects/{subject}/versions: register schema_json (or find it
 * registered) and get its id. errstr carries the registry's own message
 * on REFUSED. */
srl_sr_rc_t srl_sr_register(srl_sr_client_t *c, const char *subject, const char *schema_json,
                            int32_t *id, char *errstr, size_t errstr_size);

/* GET /schemas/ids/{id}: the schema's JSON text (malloc'd, the caller
 * frees) in *schema_json. */
srl_sr_rc_t srl_sr_schema_by_id(srl_sr_client_t *c, int32_t id, char **schema_json, char *errstr,
                                size_t errstr_size);

#endif
