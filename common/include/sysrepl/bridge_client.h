/*
 * bridge_client.h - the HTTP(S) client side of the Replication API
 * (docs/openapi.yaml), shared by the consumer's http source and the
 * producer's http sink (transport = http).
 *
 * Config keys read: bridge.url (base URL, e.g. https://hub:8443), bridge.api_key
 * (sent as X-ApiKey, never logged), bridge.ca_file (CA to verify the
 * bridge; empty: system CAs), bridge.timeout_ms, topic.prefix.
 *
 * One call = one request, with libcurl keeping connections alive between
 * calls of the same client. Results are classified once, here:
 *   OK     2xx
 *   RETRY  transport failures (refused, reset, timeout, TLS handshake with
 *          a bridge that is restarting), 408, 429, 5xx: wait and try again
 *   FATAL  401/403 (wrong key), other 4xx (a request we should never have
 *          made), a certificate that does not verify, a bad URL
 * Thread-compatible: one client per thread.
 */
#ifndef SRL_BRIDGE_CLIENT_H
#define SRL_BRIDGE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "sysrepl/config.h"
#include "sysrepl/model.h"

typedef enum { SRL_HTTP_OK = 0, SRL_HTTP_RETRY, SRL_HTTP_FATAL } srl_http_rc_t;

/* A response. body is malloc'd (NUL-terminated, may hold NULs), owned
 * here; srl_http_resp_clear frees it and resets the struct. */
typedef struct srl_http_resp {
    long status; /* 0 when no HTTP answer came */
    char *body;
    size_t len;
    size_t cap;          /* bytes allocated at body */
    int64_t next_offset; /* X-Sysrepl-Next-Offset, -1 when absent */
    int64_t high;        /* X-Sysrepl-High-Watermark, -1 when absent */
    char error[512];     /* why, when not OK (the bridge's "error" text if any) */
} srl_http_resp_t;

void srl_http_resp_clear(srl_http_resp_t *r);

typedef struct srl_bridge_client srl_bridge_client_t;

/* NULL with errstr naming the key when bridge.url or bridge.api_key is
 * empty or bridge.url is not http(s)://. */
srl_bridge_client_t *srl_bridge_client_new(const srl_config_t *cfg, char *errstr,
                                           size_t errstr_size);
void srl_bridge_client_free(srl_bridge_client_t *c); /* NULL accepted */

/* The path segment of a topic in the API: the kind name, or "schemas" for
 * <prefix>.schemas. false when the topic is not one of ours. */
bool srl_bridge_client_topic_segment(const srl_bridge_client_t *c, const char *topic,
                                     const char **segment);

/* Blocking requests. path starts with "/api/replication/v1/..." or is
 * relative to it (no leading '/'). timeout_ms 0: bridge.timeout_ms. */
srl_http_rc_t srl_bridge_client_get(srl_bridge_client_t *c, const char *path, const char *accept,
                                    int timeout_ms, srl_http_resp_t *resp);
srl_http_rc_t srl_bridge_client_post(srl_bridge_client_t *c, const char *path,
                                     const char *content_type, const void *body, size_t len,
                                     int timeout_ms, srl_http_resp_t *resp);

/* For concurrent requests (curl multi): a new easy handle set up for a
 * GET of path, writing into resp; srl_bridge_client_finish classifies it
 * after the transfer ended with code. The caller cleans the handle up with
 * srl_bridge_client_easy_free. */
CURL *srl_bridge_client_easy(srl_bridge_client_t *c, const char *path, const char *accept,
                             int timeout_ms, srl_http_resp_t *resp);
srl_http_rc_t srl_bridge_client_finish(CURL *easy, CURLcode code, srl_http_resp_t *resp);
void srl_bridge_client_easy_free(CURL *easy);

#endif
