/*
 * pull_encode.h - This file is private to sysrepl-bridge: records as the
 * body of a pull answer (pull_encode.c), for the tail and the readers.
 */
#ifndef SRL_BRIDGE_PULL_ENCODE_H
#define SRL_BRIDGE_PULL_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "sysrepl/record.h"

/* Encode records as a pull response body into req->ready_* (binary
 * framing or JSON per req->want_json), with the X-Sysrepl-* header values
 * next_offset, high and the count. Locks the registry for JSON. false:
 * out of memory, and ready_* holds a 503 error instead. */
bool srl__pull_encode(srl_req_t *req, const srl_record_t *records, size_t count,
                      int64_t next_offset, int64_t high);

#endif
