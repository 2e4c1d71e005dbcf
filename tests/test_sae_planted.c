/* Acceptance: planted concepts. d = 256, G = 1024 true directions, k_true = 8 per row (power-law frequencies,
 * noise); an SAE with M = 2048, k = 16 trained on 3M tokens must recover >= 95% of the directions (best decoder
 * row cosine > 0.9) and reach a held-out FVU < 0.1. Labelled slow (about a minute in Release on 2 cores).
 * Under a sanitizer the same pipeline runs on 1/15 of the tokens without the quality bars: the sanitizer
 * checks memory, convergence is checked by the Release build. */
#include "cli.h"

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    scratch_open("test_sae_planted");
    const long tokens = TEST_SANITIZED ? 200000 : 3000000;
    CHECK(run("synth_acts -o p.h5 --d 256 --concepts 1024 --k-true 8 --rows %ld --seed 1", TEST_SANITIZED ? 30000L : 300000L) == 0,
          "synth_acts");
    CHECK(run("train --acts p.h5 --layer 0 --k 16 --expansion 8 --tokens %ld --batch 2048 --warmup 100 "
              "--dead-tokens 200000 --seed 1 -o sae",
              tokens) == 0,
          "train");
    CHECK(run("evaluate --sae sae --acts p.h5 --layer 0") == 0, "evaluate");
    char *out = slurp("out.txt");
    const double rec = json_number(out, "recovered"), fvu = json_number(out, "fvu"), l0 = json_number(out, "l0");
    printf("planted concepts: recovered %.1f%%, held-out FVU %.4f, L0 %.1f (%ld tokens%s)\n", 100 * rec, fvu, l0, tokens,
           TEST_SANITIZED ? ", sanitizer build: no quality bars" : "");
    CHECK(rec >= 0 && fvu >= 0 && l0 > 0 && l0 <= 16, "evaluate output: %s", out);
    if (!TEST_SANITIZED) {
        CHECK(rec >= 0.95, "recovered %.3f of the planted directions, need >= 0.95", rec);
        CHECK(fvu < 0.1, "held-out FVU %.4f, need < 0.1", fvu);
    }
    free(out);
    scratch_close();
    TEST_END();
}
