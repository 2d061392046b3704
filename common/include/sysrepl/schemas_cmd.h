/*
 * schemas_cmd.h - the "sysrepl schemas" command: show the compiled-in Avro
 * schemas, or check whether a candidate schema may replace ours.
 */
#ifndef SRL_SCHEMAS_CMD_H
#define SRL_SCHEMAS_CMD_H

#include <stdio.h>

#define SRL_SCHEMAS_EXIT_OK 0
#define SRL_SCHEMAS_EXIT_USAGE 1
#define SRL_SCHEMAS_EXIT_INCOMPATIBLE 2

/* argv[0] is "schemas". Forms:
 *   schemas [--prefix P]         each kind: fingerprint hex, schema id (derived
 *                                from the fingerprint), subject <topic>-value
 *                                (topics of prefix P, default "sysrepl"),
 *                                canonical form
 *   schemas [--prefix P] --check FILE.avsc    can FILE replace ours? (and why not)
 *   schemas --help
 * Returns 0 ok, 1 usage or unreadable file/invalid schema, 2 incompatible. */
int srl_schemas_command(int argc, char **argv, FILE *out, FILE *err);

#endif
