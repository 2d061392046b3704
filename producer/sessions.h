/*
 * sessions.h - the producer's two store sessions (sessions.c).
 * This file is private to sysrepl-producer.
 */
#ifndef SRL_PRODUCER_SESSIONS_H
#define SRL_PRODUCER_SESSIONS_H

#include <stdbool.h>

#include "producer.h"

/* Connect both sessions, check the store (schema version, role hub,
 * instance.id), take the producer lock (waiting while another producer
 * holds it), LISTEN. Retries an unreachable store forever. true: p->st and
 * p->lock are usable and p->store_ok is set. false with *exit_code set on
 * a store that cannot be used (EXIT_STORE, EXIT_CONFIG; first: a FATAL
 * error too), or with *exit_code EXIT_OK when a stop was requested. */
bool srl__sessions_connect(producer_t *p, bool first, int *exit_code);

/* Close both sessions (the lock goes with its session); what ran on them
 * (a read, a DELETE) is forgotten and done again after a reconnect. */
void srl__sessions_drop(producer_t *p);

/* At most once a LOCK_CHECK_MS: is the lock session alive (and the lock
 * still ours)? Clears p->store_ok when not. */
void srl__sessions_check_lock(producer_t *p);

/* The work session's socket was readable: take notifications (sets
 * p->notified); a broken connection clears p->store_ok. */
void srl__sessions_serve(producer_t *p);

#endif
