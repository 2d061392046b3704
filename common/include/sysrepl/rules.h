/*
 * rules.h - the one validation rule of replicated content.
 *
 * Every rule an entity must pass to be stored on a hub, replicated and
 * applied on a spoke is one row of a table (rules.c): the field it is about,
 * its text in words, the C test and the SQL CHECK expression. From that
 * table come
 *   - srl_entity_validate() (json.h): the CLI, the import, the bridge's push
 *     and the consumer's decode ("impossible value: ...") run it;
 *   - the store's CHECK constraints, one per rule, named by the rule, with
 *     the rule's text as the constraint's COMMENT: tools/gen-rules.c writes
 *     them as a migration (schemas/sql/006_validation_rules.sql), and a unit
 *     test holds the file in the tree equal to what the table generates.
 * So the hub refuses exactly what a spoke would refuse, and the message is
 * the same text on both sides: "<field>: <text>[, got <value>]".
 */
#ifndef SRL_RULES_H
#define SRL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sysrepl/model.h"

/* The longest record key, in bytes: a type's or a policy's name, an
 * assessment's "<vulnerability_id>|<scope>". Held by a rule, so no key the
 * hub accepts is too long for a consumer's key buffer (SRL_KEY_MAX + 1). */
#define SRL_KEY_MAX 1023

typedef struct srl_rule {
    srl_kind_t kind;
    const char *constraint; /* SQL constraint name on the kind's table */
    const char *field;      /* path in the message: "vulnerability_id" */
    const char *text;       /* the rule in words (exact); the COMMENT */
    const char *check;      /* SQL boolean over the row; NULL/true passes */
    /* The C test: true when e keeps the rule. On false, at (may stay "")
     * gets a more precise path ("feeds[2]") and got the offending value,
     * already quoted when a string (may stay ""). */
    bool (*holds)(const srl_entity_t *e, char *at, size_t at_size, char *got, size_t got_size);
} srl_rule_t;

/* The table, in the order srl_entity_validate() tries it. */
const srl_rule_t *srl_rules(size_t *count);

/* The rule named constraint, or NULL. */
const srl_rule_t *srl_rule_find(const char *constraint);

/* The first rule e breaks, or NULL; on a break errstr gets
 * "<field>: <text>[, got <value>]". */
const srl_rule_t *srl_rules_check(const srl_entity_t *e, char *errstr, size_t errstr_size);

/* Write the migration that makes the store's CHECK constraints the table's
 * (tools/gen-rules.c; tests/unit/test_rules.c compares it with the file in
 * schemas/sql). false on a write error. */
bool srl_rules_write_sql(FILE *out);

#endif
