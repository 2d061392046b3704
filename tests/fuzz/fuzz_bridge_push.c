/*
 * fuzz_bridge_push.c - libFuzzer target for what sysrepl-bridge does with a
 * push request's body: the binary framing decoder and the push decoder and
 * checks (bridge/push_decode.c), both the binary and the JSON form.
 *
 * Input: a selector byte (bit 0: JSON or binary; bits 1-2: the path's kind)
 * followed by the body. Properties: never a crash, leak or out-of-bounds
 * read; a refused body says why with a 400/413/422/503 status; an accepted
 * body's binary values all decode again with the registry.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_decode.h"
#include "sysrepl/framing.h"

static srl_registry_t *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (!reg) {
        reg = srl_registry_new(err, sizeof(err));
        if (!reg)
            abort();
    }
    if (size < 1)
        return 0;
    bool json = data[0] & 1;
    srl_kind_t kind = (srl_kind_t)(((unsigned)data[0] >> 1) % SRL_KIND_COUNT);
    /* an exact-size copy so ASan sees any over-read */
    uint8_t *body = malloc(size - 1 ? size - 1 : 1);
    memcpy(body, data + 1, size - 1);

    srl_framing_batch_t fb;
    if (srl_framing_decode(body, size - 1, kind, 100, &fb, NULL, err, sizeof(err)))
        srl_framing_batch_free(&fb);
    else if (!err[0])
        abort();

    srl_push_ctx_t ctx = {.kind = kind, .reg = reg, .reg_lock = NULL, .max_records = 100};
    srl_push_batch_t out;
    srl_push_error_t e;
    if (srl_push_decode(&ctx, !json, body, size - 1, &out, &e)) {
        for (size_t i = 0; i < out.count; i++) {
            srl_entity_t ent;
            if (out.recs[i].value &&
                !srl_codec_decode(reg, out.recs[i].value, out.recs[i].value_len, &ent, err,
                                  sizeof(err)))
                abort(); /* accepted a value that does not decode */
            if (out.recs[i].value)
                srl_entity_clear(&ent);
        }
        srl_push_batch_free(&out);
    } else if (!e.msg[0] ||
               (e.status != 400 && e.status != 413 && e.status != 422 && e.status != 503)) {
        abort();
    }
    free(body);
    return 0;
}
