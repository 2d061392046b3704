/*
 * auth.c - API keys: who may call the bridge, and for what.
 *
 * bridge.keys_file holds one key per line, stored hashed:
 *     # name  sha256-hex-of-the-key  perms       [kinds]
 *     spoke-eu  9f86d0...  pull        assessment-types,vulnerability-assessments
 *     hub-push  2c26b4...  pull,push
 *     grafana   fcde2b...  metrics
 * `sysrepl-bridge --hash-key KEY` prints such a line (and checks it with
 * srl_bridge_key_parse_line first). perms: pull (GET records), push (POST
 * records), metrics (GET /metrics only); /state and the schemas need pull
 * or push; /metrics takes any key; /health none. A request carries the
 * key in X-ApiKey (ProGet's convention), Authorization: Bearer <key>, or
 * Authorization: Basic with the key as the password (any user name: what
 * Schema Registry clients send, basic.auth.user.info = user:key); the
 * bridge hashes it and compares against every stored hash in constant time.
 * The key itself is never kept, logged or echoed; logs name the key's name.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "auth.h"
#include "sysrepl/model.h"

struct srl_bridge_keys {
    srl_bridge_key_t *items;
    size_t count;
    struct srl_bridge_keys *retired_next; /* srl_bridge_keys_retire */
};

void srl_bridge_sha256_hex(const void *buf, size_t len, char hex[65])
{
    uint8_t d[32];
    static const char digits[] = "0123456789abcdef";
    gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, d);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool parse_hash(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool parse_perms(char *s, unsigned *out)
{
    *out = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "pull") == 0)
            *out |= SRL_PERM_PULL;
        else if (strcmp(tok, "push") == 0)
            *out |= SRL_PERM_PUSH;
        else if (strcmp(tok, "metrics") == 0)
            *out |= SRL_PERM_METRICS;
        else
            return false;
    }
    return *out != 0;
}

static bool parse_kinds(char *s, unsigned *out, const char **bad)
{
    *out = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        srl_kind_t k;
        if (!srl_kind_parse(tok, &k)) {
            *bad = tok;
            return false;
        }
        *out |= 1u << k;
    }
    return *out != 0;
}

int srl_bridge_key_parse_line(char *line, srl_bridge_key_t *k, char *errstr, size_t errstr_size)
{
    memset(k, 0, sizeof(*k));
    char *hash_field = strchr(line, '#');
    if (hash_field)
        *hash_field = '\0';
    char *fields[5];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save); tok;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 4) {
            snprintf(errstr, errstr_size, "too many fields (want: name sha256-hex perms [kinds])");
            return -1;
        }
        fields[n++] = tok;
    }
    if (n == 0)
        return 0;
    if (n < 3) {
        snprintf(errstr, errstr_size, "too few fields (want: name sha256-hex perms [kinds])");
        return -1;
    }
    if (strlen(fields[0]) >= sizeof(k->name)) {
        snprintf(errstr, errstr_size, "key name longer than %zu bytes", sizeof(k->name) - 1);
        return -1;
    }
    memcpy(k->name, fields[0], strlen(fields[0]) + 1);
    if (!parse_hash(fields[1], k->hash)) {
        snprintf(errstr, errstr_size,
                 "key %s: hash is not 64 hex digits (make one with sysrepl-bridge --hash-key)",
                 k->name);
        return -1;
    }
    if (!parse_perms(fields[2], &k->perms)) {
        snprintf(errstr, errstr_size,
                 "key %s: perms must be pull, push or metrics, comma-separated", k->name);
        return -1;
    }
    k->kinds = (1u << SRL_KIND_COUNT) - 1;
    const char *bad = NULL;
    if (n == 4 && !parse_kinds(fields[3], &k->kinds, &bad)) {
        snprintf(errstr, errstr_size,
                 "key %s: unknown kind \"%s\" (kinds: assessment-types, "
                 "vulnerability-assessments, policies)",
                 k->name, bad ? bad : "");
        return -1;
    }
    return 1;
}

srl_bridge_keys_t *srl_bridge_keys_load(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    srl_bridge_keys_t *keys = calloc(1, sizeof(*keys));
    char line[1024];
    int lineno = 0;
    bool ok = false;

    if (!f) {
        snprintf(errstr, errstr_size, "bridge.keys_file %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!keys) {
        snprintf(errstr, errstr_size, "out of memory");
        goto cleanup;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(errstr, errstr_size, "%s:%d: line too long", path, lineno);
            goto cleanup;
        }
        srl_bridge_key_t k;
        char why[256];
        int got = srl_bridge_key_parse_line(line, &k, why, sizeof(why));
        if (got == 0)
            continue;
        if (got < 0) {
            snprintf(errstr, errstr_size, "%s:%d: %s", path, lineno, why);
            goto cleanup;
        }
        for (size_t i = 0; i < keys->count; i++) {
            if (strcmp(keys->items[i].name, k.name) == 0 ||
                memcmp(keys->items[i].hash, k.hash, 32) == 0) {
                snprintf(errstr, errstr_size, "%s:%d: key %s: duplicate name or hash", path, lineno,
                         k.name);
                goto cleanup;
            }
        }
        srl_bridge_key_t *items = realloc(keys->items, (keys->count + 1) * sizeof(*items));
        if (!items) {
            snprintf(errstr, errstr_size, "out of memory");
            goto cleanup;
        }
        keys->items = items;
        keys->items[keys->count++] = k;
    }
    if (keys->count == 0) {
        snprintf(errstr, errstr_size, "bridge.keys_file %s holds no keys", path);
        goto cleanup;
    }
    ok = true;
cleanup:
    if (f)
        fclose(f);
    if (!ok) {
        srl_bridge_keys_free(keys);
        keys = NULL;
    }
    return keys;
}

void srl_bridge_keys_free(srl_bridge_keys_t *keys)
{
    if (!keys)
        return;
    free(keys->items);
    free(keys);
}

void srl_bridge_keys_retire(srl_bridge_keys_t **list, srl_bridge_keys_t *keys)
{
    if (!keys)
        return;
    keys->retired_next = *list;
    *list = keys;
}

void srl_bridge_keys_free_list(srl_bridge_keys_t *list)
{
    while (list) {
        srl_bridge_keys_t *next = list->retired_next;
        srl_bridge_keys_free(list);
        list = next;
    }
}

size_t srl_bridge_keys_count(const srl_bridge_keys_t *keys)
{
    return keys ? keys->count : 0;
}

/* The password of an HTTP Basic credential (base64 of "user:password")
 * into buf; false when it is not one. */
static bool basic_password(const char *b64, char *buf, size_t size)
{
    while (*b64 == ' ')
        b64++;
    gnutls_datum_t in = {(unsigned char *)b64, (unsigned)strlen(b64)}, out = {NULL, 0};
    if (in.size == 0 || in.size > 1024 || gnutls_base64_decode2(&in, &out) != 0)
        return false;
    const char *colon = memchr(out.data, ':', out.size);
    size_t n = colon ? out.size - (size_t)((const unsigned char *)colon + 1 - out.data) : 0;
    bool ok = colon && n < size && !memchr(colon + 1, '\0', n);
    if (ok) {
        memcpy(buf, colon + 1, n);
        buf[n] = '\0';
    }
    gnutls_memset(out.data, 0, out.size);
    gnutls_free(out.data);
    return ok;
}

srl_auth_result_t srl_bridge_authorize(const srl_bridge_keys_t *keys, const char *x_apikey,
                                       const char *authorization, unsigned perm, int kind,
                                       const srl_bridge_key_t **key_out, char *errstr,
                                       size_t errstr_size)
{
    const char *presented = NULL;
    char basic[512];
    *key_out = NULL;
    if (x_apikey && *x_apikey) {
        presented = x_apikey;
    } else if (authorization && *authorization) {
        if (strncasecmp(authorization, "Basic ", 6) == 0) {
            if (!basic_password(authorization + 6, basic, sizeof(basic))) {
                snprintf(errstr, errstr_size,
                         "Authorization: Basic is not base64 of \"user:key\" (the API key is the "
                         "password)");
                return SRL_AUTH_UNAUTHENTICATED;
            }
            presented = basic;
        } else if (strncasecmp(authorization, "Bearer ", 7) != 0) {
            snprintf(errstr, errstr_size,
                     "Authorization header is neither \"Bearer <key>\" nor \"Basic\"; send the "
                     "API key as Authorization: Bearer <key> or X-ApiKey: <key>");
            return SRL_AUTH_UNAUTHENTICATED;
        } else {
            presented = authorization + 7;
            while (*presented == ' ')
                presented++;
        }
    }
    if (!presented || !*presented) {
        snprintf(errstr, errstr_size,
                 "no API key: send it as X-ApiKey: <key> or Authorization: Bearer <key>");
        return SRL_AUTH_UNAUTHENTICATED;
    }
    uint8_t h[32];
    gnutls_hash_fast(GNUTLS_DIG_SHA256, presented, strlen(presented), h);
    /* Compare with every key, without stopping early, so the time taken
     * does not tell which stored hash came close. */
    const srl_bridge_key_t *match = NULL;
    for (size_t i = 0; i < keys->count; i++) {
        uint8_t diff = 0;
        for (int j = 0; j < 32; j++)
            diff |= (uint8_t)(h[j] ^ keys->items[i].hash[j]);
        if (diff == 0)
            match = &keys->items[i];
    }
    if (!match) {
        snprintf(errstr, errstr_size, "unknown API key");
        return SRL_AUTH_UNAUTHENTICATED;
    }
    *key_out = match;
    if (perm && !(match->perms & perm)) {
        snprintf(errstr, errstr_size, "API key %s lacks the %s permission", match->name,
                 perm == SRL_PERM_PUSH   ? "push"
                 : perm == SRL_PERM_PULL ? "pull"
                                         : "pull or push");
        return SRL_AUTH_FORBIDDEN;
    }
    if (kind >= 0 && !(match->kinds & (1u << kind))) {
        snprintf(errstr, errstr_size, "API key %s is not allowed the kind %s", match->name,
                 srl_kind_name((srl_kind_t)kind));
        return SRL_AUTH_FORBIDDEN;
    }
    return SRL_AUTH_OK;
}
