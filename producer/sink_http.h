/*
 * sink_http.h - private to sysrepl-producer: the http transport's
 * constructor (sink_http.c). Chosen in startup.c's srl__startup_sink() when
 * transport = http:
 *     p->sink = srl_sink_http_new(p->cfg, err, sizeof(err));
 */
#ifndef SRL_PRODUCER_SINK_HTTP_H
#define SRL_PRODUCER_SINK_HTTP_H

#include <stddef.h>

#include "sink.h"
#include "sysrepl/config.h"

/* A sink posting to the sysrepl-bridge at bridge.url with bridge.api_key
 * (bridge.ca_file to verify it). NULL with errstr naming the key when the
 * config cannot work. Connects lazily: a bridge that is down is retried. */
srl_sink_t *srl_sink_http_new(const srl_config_t *cfg, char *errstr, size_t errstr_size);

#endif
