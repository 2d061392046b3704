/*
 * gen-rules.c - writes the store migration that makes the content tables'
 * CHECK constraints the rules of common/rules.c (rules.h).
 *
 *   sysrepl-gen-rules [FILE]     (default: standard output)
 *
 * `ninja gen-rules` writes schemas/sql/006_validation_rules.sql;
 * tests/unit/test_rules.c fails when that file and the table disagree. A
 * released migration is never edited: a change of the rules after a release
 * goes into a new migration (and this tool then writes that one).
 */
#include <stdio.h>
#include <string.h>

#include "sysrepl/rules.h"

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "--help") == 0 || argv[1][0] == '-'))) {
        fprintf(stderr, "usage: sysrepl-gen-rules [FILE]\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 1;
    }
    FILE *out = argc == 2 ? fopen(argv[1], "w") : stdout;
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    bool ok = srl_rules_write_sql(out);
    if (out != stdout)
        ok = fclose(out) == 0 && ok;
    else
        ok = fflush(out) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "sysrepl-gen-rules: write failed\n");
        return 1;
    }
    return 0;
}
