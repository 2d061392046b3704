/*
 * auth.h - This file is private to sysrepl-bridge: API keys (the
 * bridge.keys_file table) and the authorisation of a request by key,
 * permission and kind. Knows nothing of HTTP (auth.c).
 */
#ifndef SRL_BRIDGE_AUTH_H
#define SRL_BRIDGE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define SRL_PERM_PULL 0x1u
#define SRL_PERM_PUSH 0x2u
#define SRL_PERM_METRICS 0x4u /* GET /metrics, nothing else (monitoring) */

typedef struct srl_bridge_keys srl_bridge_keys_t;

typedef struct srl_bridge_key {
    char name[64];
    uint8_t hash[32]; /* SHA-256 of the key */
    unsigned perms;   /* SRL_PERM_* */
    unsigned kinds;   /* bit (1 << kind) per allowed kind */
} srl_bridge_key_t;

typedef enum {
    SRL_AUTH_OK = 0,
    SRL_AUTH_UNAUTHENTICATED, /* 401: no key, or a key we do not know */
    SRL_AUTH_FORBIDDEN        /* 403: known key without the permission or kind */
} srl_auth_result_t;

/* Parse one line of the keys file ("name sha256-hex perms [kinds]", '#'
 * starts a comment) into *k; line is modified. 1: a key; 0: a blank or
 * comment line; -1: refused, errstr says why (without file and line). */
int srl_bridge_key_parse_line(char *line, srl_bridge_key_t *k, char *errstr, size_t errstr_size);
/* Load the keys file. NULL with errstr naming the file and line. */
srl_bridge_keys_t *srl_bridge_keys_load(const char *path, char *errstr, size_t errstr_size);
void srl_bridge_keys_free(srl_bridge_keys_t *keys); /* NULL accepted */
/* Chain keys onto *list (retired tables, freed together by
 * srl_bridge_keys_free_list). */
void srl_bridge_keys_retire(srl_bridge_keys_t **list, srl_bridge_keys_t *keys);
void srl_bridge_keys_free_list(srl_bridge_keys_t *list);
size_t srl_bridge_keys_count(const srl_bridge_keys_t *keys);

/* Authorise a request: x_apikey / authorization are the X-ApiKey and
 * Authorization header values (either may be NULL). perm: SRL_PERM_* bits,
 * any one of which is enough (0: any known key will do); kind: the kind asked for, or -1 for none.
 * On OK and FORBIDDEN *key_out is the matched key (never log the key
 * itself, log key_out->name); errstr says why a request was refused. */
srl_auth_result_t srl_bridge_authorize(const srl_bridge_keys_t *keys, const char *x_apikey,
                                       const char *authorization, unsigned perm, int kind,
                                       const srl_bridge_key_t **key_out, char *errstr,
                                       size_t errstr_size);

/* SHA-256 of buf as 64 lowercase hex digits plus NUL into hex[65]. */
void srl_bridge_sha256_hex(const void *buf, size_t len, char hex[65]);

#endif
