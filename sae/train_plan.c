/* The run length and schedule `musae train` picks when they are not given, and the checks on a finished
 * run (sae/train.h): tokens from a number of passes over the training split, warmup scaled to the steps,
 * warnings for data repeated too often and for latents that died. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "sae/train.h"

int64_t sae_default_warmup(int64_t total_steps) {
    const int64_t w = total_steps * SAE_WARMUP_PERCENT / 100;
    return w < SAE_WARMUP_MAX ? w : SAE_WARMUP_MAX;
}

void sae_warn(sae_warnings *w, const char *fmt, ...) {
    char line[SAE_WARNING_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    LOG_WARN("%s", line);
    if (w->n < SAE_MAX_WARNINGS) snprintf(w->text[w->n++], SAE_WARNING_LEN, "%s", line);
}

void sae_train_plan_resolve(sae_train_opts *o, int64_t train_rows, sae_train_plan *p) {
    memset(p, 0, sizeof *p);
    if (train_rows <= 0)
        musae_fail("%s: the training split is empty (--val-fraction %g holds out every clip?)", o->acts, o->val_fraction);
    p->train_rows = train_rows;
    const int given = o->tokens > 0;
    if (given && o->epochs > 0) musae_fail("--tokens and --epochs both set the run length: give one of them");
    if (!given) {
        const double epochs = o->epochs > 0 ? o->epochs : SAE_DEFAULT_EPOCHS;
        o->tokens = (int64_t)ceil(epochs * (double)train_rows);
        if (o->tokens % o->batch == 1) o->tokens++; /* a last step of one row has no variance to normalize by */
        snprintf(p->tokens_rule, sizeof p->tokens_rule, "%g passes over the %" PRId64 " training rows (%s)", epochs,
                 train_rows, o->epochs > 0 ? "--epochs" : "default");
    } else {
        snprintf(p->tokens_rule, sizeof p->tokens_rule, "--tokens");
    }
    p->epochs = (double)o->tokens / (double)train_rows;
    p->total_steps = (o->tokens + o->batch - 1) / o->batch;
    LOG_INFO("training on %" PRId64 " tokens in %" PRId64 " steps of %" PRId64 ": %.3g passes over the %" PRId64
             " training rows (%s)", o->tokens, p->total_steps, o->batch, p->epochs, train_rows,
             given ? "--tokens" : o->epochs > 0 ? "--epochs" : "default");
    if (p->epochs > SAE_WARN_EPOCHS)
        sae_warn(&p->warnings,
                 "the run passes %.3g times over its %" PRId64 " training rows: an SAE trained on data repeated "
                 "more than %d times fits those rows and generalizes worse (held-out FVU well above the training "
                 "FVU); capture more data, or lower --tokens",
                 p->epochs, train_rows, SAE_WARN_EPOCHS);
    if (!given && p->total_steps < SAE_WARN_FEW_STEPS)
        sae_warn(&p->warnings,
                 "%g passes over this store are only %" PRId64 " steps of %" PRId64 " tokens: too few to train an "
                 "SAE (%d or more); capture more data, or lower --batch",
                 p->epochs, p->total_steps, o->batch, SAE_WARN_FEW_STEPS);
    if (o->recipe.warmup_steps < 0) {
        o->recipe.warmup_steps = sae_default_warmup(p->total_steps);
        snprintf(p->warmup_rule, sizeof p->warmup_rule, "min(%d, %d%% of %" PRId64 " steps)", SAE_WARMUP_MAX,
                 SAE_WARMUP_PERCENT, p->total_steps);
    } else {
        snprintf(p->warmup_rule, sizeof p->warmup_rule, "--warmup");
        if (o->recipe.warmup_steps >= p->total_steps)
            sae_warn(&p->warnings,
                     "--warmup %" PRId64 " is not shorter than the run's %" PRId64 " steps: the lr never reaches "
                     "its peak (leave --warmup out to scale it to the run)",
                     o->recipe.warmup_steps, p->total_steps);
    }
    LOG_INFO("warmup: %" PRId64 " steps (%s)", o->recipe.warmup_steps, p->warmup_rule);
}

void sae_check_dead(sae_warnings *w, const char *name, double dead_frac, const char *measured) {
    if (!(dead_frac > SAE_WARN_DEAD)) return;
    sae_warn(w,
             "%s: %.1f%% of the latents are dead at the end (%s): the SAE is not usable as it is; a too high "
             "--lr is the usual cause (the default is 4e-4/sqrt(M/16384))",
             name, 100 * dead_frac, measured);
}

int64_t sae_dead_window(const sae_trainer *t) {
    const int64_t quarter = t->tokens / 4 > t->batch ? t->tokens / 4 : t->batch;
    return t->cfg.dead_tokens < quarter ? t->cfg.dead_tokens : quarter;
}

double sae_trainer_dead_fraction(const sae_trainer *t) {
    const int64_t window = sae_dead_window(t);
    int64_t dead = 0;
    for (int64_t i = 0; i < t->Ml; i++) dead += t->since_fired[i] >= window;
    return (double)dead / (double)t->Ml;
}
