/*
 * source_http.h - private to sysrepl-consumer: the http transport's
 * constructor (source_http.c). Chosen in main.c when transport = http:
 *     c.src = transport == SRL_TRANSPORT_HTTP ? srl_source_http_new(cfg, err, sizeof(err))
 *                                             : srl_source_kafka_new(...);
 */
#ifndef SRL_CONSUMER_SOURCE_HTTP_H
#define SRL_CONSUMER_SOURCE_HTTP_H

#include <stddef.h>

#include "source.h"
#include "sysrepl/config.h"

/* A source reading through the sysrepl-bridge at bridge.url with
 * bridge.api_key (bridge.ca_file to verify it). NULL with errstr naming
 * the key when the config cannot work. */
srl_source_t *srl_source_http_new(const srl_config_t *cfg, char *errstr, size_t errstr_size);

#endif
