/* libFuzzer target: arbitrary bytes as a config.json text (NUL-terminated copy) through musae_config_parse.
 * An accepted config must have the invariants the model code relies on. Built only with -DMUSAE_FUZZ=ON. */
#include "fuzz_harness.h"
#include "host/io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *txt = malloc(size + 1);
    memcpy(txt, data, size);
    txt[size] = 0;
    musae_model_config c;
    char err[256];
    int rc = musae_config_parse(&c, "fuzz.json", txt, err, sizeof err);
    free(txt);
    if (rc != 0) {
        fuzz_named_error(err, sizeof err, "fuzz.json");
        return 0;
    }
    const musae_decoder_config *d = &c.decoder;
    REQUIRE(d->hidden_size > 0 && d->num_attention_heads > 0 && d->hidden_size % d->num_attention_heads == 0);
    REQUIRE(d->num_codebooks > 0 && d->vocab_size > 0 && d->num_hidden_layers > 0);
    if (c.has_audio) {
        const musae_encodec_config *a = &c.audio;
        REQUIRE(a->n_ratios >= 1 && a->n_ratios <= MUSAE_MAX_RATIOS && a->hop_length >= 1);
        REQUIRE(a->frame_rate >= 1 && a->num_quantizers == d->num_codebooks && a->codebook_size == d->vocab_size);
    }
    return 0;
}
