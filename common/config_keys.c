/*
 * config_keys.c - the key table: every configuration key of every program,
 * one row per line of sysrepl/config_keys.def (add keys there).
 *
 * Row i of srl_config_keys[] is the row of handle i (srl_key_t, config.h):
 * each row is placed at its handle by a designated initializer, both coming
 * from the same line of config_keys.def, so the typed accessors index the
 * table directly and can never read another key's row.
 */
#include "sysrepl/config.h"

/* The names config_keys.def writes its rows with. */
#define P SRL_PROG_PRODUCER
#define C SRL_PROG_CONSUMER
#define B SRL_PROG_BRIDGE
#define L SRL_PROG_CLI
#define ALL SRL_PROG_ALL
#define RELOAD true
#define RESTART false

#define SECOND 1000LL
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

const srl_config_key_t srl_config_keys[SRL_KEY__COUNT] = {
#define SRL_CONFIG_KEY(handle, ...) [handle] = {__VA_ARGS__}
#include "sysrepl/config_keys.def"
#undef SRL_CONFIG_KEY
};

const size_t srl_config_key_count = sizeof srl_config_keys / sizeof srl_config_keys[0];
