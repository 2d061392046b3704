/*
 * routes.h - This file is private to sysrepl-bridge: the route layer. One
 * table in routes.c lists every route (method, path, permission,
 * handler); srl_routes_on_headers matches a request against it, checks its
 * key and path parameters, and names the handler. The handlers live in the
 * routes_*.c files, which call down (http, auth, tail, readers) and never
 * into each other.
 */
#ifndef SRL_BRIDGE_ROUTES_H
#define SRL_BRIDGE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "bridge.h"
#include "http.h"

/* What the server calls with every request's headers (srl_http_headers_fn):
 * refuses it (404, 405, 401, 403, 400, and the server's own 503 and 413 in
 * their place), or sets req->route, allow and handler. */
enum MHD_Result srl_routes_on_headers(srl_req_t *req, const char *url, const char *method);

/* routes_pull.c */
enum MHD_Result srl__route_pull(srl_req_t *req);

/* routes_push.c */
enum MHD_Result srl__route_push(srl_req_t *req);
/* Producer delivery report, set on the producer's conf (main.c). */
void srl__push_delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* Publish our writer schemas to <prefix>.schemas, once (blocking; main.c
 * retries it; pushes get 503 until it succeeded). */
bool srl__bridge_publish_schemas(srl_bridge_t *b, char *errstr, size_t errstr_size);

/* routes_registry.c: the Confluent Schema Registry API */
enum MHD_Result srl__route_registry_schema(srl_req_t *req);
enum MHD_Result srl__route_registry_schema_text(srl_req_t *req);
enum MHD_Result srl__route_registry_subjects(srl_req_t *req);
enum MHD_Result srl__route_registry_versions(srl_req_t *req);
enum MHD_Result srl__route_registry_version(srl_req_t *req);
enum MHD_Result srl__route_registry_lookup(srl_req_t *req);
enum MHD_Result srl__route_registry_register(srl_req_t *req);
enum MHD_Result srl__route_registry_config(srl_req_t *req);

/* routes_state.c */
enum MHD_Result srl__route_state(srl_req_t *req);
enum MHD_Result srl__route_schemas(srl_req_t *req);
enum MHD_Result srl__route_health(srl_req_t *req);
enum MHD_Result srl__route_metrics(srl_req_t *req);

#endif
