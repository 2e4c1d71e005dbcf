/* The exact-resume state of `musae train` (sae/train_state.h): what a state holds, writing it (collective,
 * rank 0 writes), removing it, and a resume that refuses other settings, another store or another grid before
 * it loads anything. Split from sae/train.c, which runs the grid and calls these at its save points, at its
 * start and at its end. */
#include "sae/train_state.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/path.h"
#include "host/io/safetensors.h"
#include "sae/sae_dist.h"

/* The fingerprint of the store being trained on (musae_store_fingerprint), as 16 hex digits. */
static char g_store_id[24];

void sae_train_state_bind_store(musae_store *store) {
    snprintf(g_store_id, sizeof g_store_id, "%016" PRIx64, musae_store_fingerprint(store));
}

void sae_train_mkdirs(const char *dir) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", tmp, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) musae_fail("%s: exists and is not a folder", dir);
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) musae_fail("resume state: field %s missing", key);
    return v->valuedouble;
}

static cJSON *pos_json(musae_stream_pos p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", (double)p.epoch);
    cJSON_AddNumberToObject(o, "window", (double)p.window);
    cJSON_AddNumberToObject(o, "offset", (double)p.offset);
    cJSON_AddNumberToObject(o, "delivered", (double)p.delivered);
    cJSON_AddNumberToObject(o, "skipped", (double)p.skipped);
    return o;
}

static musae_stream_pos pos_from_json(const cJSON *o) {
    musae_stream_pos p = {(int64_t)jnum(o, "epoch"), (int64_t)jnum(o, "window"), (int64_t)jnum(o, "offset"),
                          (int64_t)jnum(o, "delivered"), (int64_t)jnum(o, "skipped")};
    return p;
}

static void state_path(char *buf, size_t n, const grid_sae *g, int64_t step) {
    snprintf(buf, n, "%s/state/step%" PRId64 ".safetensors", g->dir, step);
}
/* Everything a resumed run must agree on to continue bit-identically, under the names of the flags that set
 * them (the first keys keep the names of the states written before the recipe was checked). */
static cJSON *run_identity(const sae_train_opts *o, const musae_store_info *in) {
    cJSON *j = cJSON_CreateObject();
    char s[32];
    cJSON_AddStringToObject(j, "acts", o->acts);
    cJSON_AddNumberToObject(j, "store_rows", (double)in->n_rows);
    cJSON_AddNumberToObject(j, "tokens", (double)o->tokens);
    cJSON_AddNumberToObject(j, "batch", (double)o->batch);
    cJSON_AddNumberToObject(j, "shuffle_rows", (double)o->shuffle_rows);
    cJSON_AddNumberToObject(j, "val_fraction", o->val_fraction);
    cJSON_AddNumberToObject(j, "data_seed", (double)o->data_seed);
    cJSON_AddNumberToObject(j, "split_seed", (double)o->split_seed);
    cJSON_AddNumberToObject(j, "skip_nonfinite", o->skip_nonfinite);
    cJSON_AddStringToObject(j, "store", g_store_id);
    const sae_config *r = &o->recipe;
    cJSON_AddNumberToObject(j, "lr", r->lr);
    cJSON_AddNumberToObject(j, "warmup", (double)r->warmup_steps);
    cJSON_AddNumberToObject(j, "decay", r->decay_frac);
    cJSON_AddNumberToObject(j, "k-aux", r->k_aux);
    cJSON_AddNumberToObject(j, "auxk-alpha", r->auxk_alpha);
    cJSON_AddNumberToObject(j, "dead-tokens", (double)r->dead_tokens);
    cJSON_AddNumberToObject(j, "b-dec", r->bdec_init);
    cJSON_AddNumberToObject(j, "init-rows", (double)o->init_rows);
    snprintf(s, sizeof s, "%" PRIu64, r->seed);
    cJSON_AddStringToObject(j, "seed", s);
    cJSON_AddNumberToObject(j, "log-every", (double)o->log_every);
    return j;
}

/* The flag of an identity field, for messages. */
static const char *identity_flag(const char *key) {
    static const char *map[][2] = {{"acts", "--acts"}, {"store_rows", "--acts (rows of the store)"},
                                   {"shuffle_rows", "--shuffle-rows"}, {"val_fraction", "--val-fraction"},
                                   {"data_seed", "--data-seed (which defaults to --seed)"}, {"split_seed", "--split-seed"},
                                   {"skip_nonfinite", "--skip-nonfinite"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], key)) return map[i][1];
    static char buf[64];
    snprintf(buf, sizeof buf, "--%s", key);
    return buf;
}

static void identity_value(const cJSON *v, char *out, size_t cap) {
    if (cJSON_IsString(v)) snprintf(out, cap, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(out, cap, "%.9g", v->valuedouble);
    else snprintf(out, cap, "?");
}

/* Refuses a resume whose settings differ from the run's, naming the first field that does. A field the state
 * lacks (written by an older musae) cannot be checked and is said so. */
static void check_identity(const char *out, const cJSON *want, const cJSON *have) {
    if (!have) musae_fail("%s/state/run.json: no identity (not a musae training state?)", out);
    const cJSON *w;
    int unchecked = 0;
    cJSON_ArrayForEach(w, want) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, w->string);
        if (!h) {
            unchecked++;
            continue;
        }
        if (cJSON_Compare(w, h, 1)) continue;
        if (!strcmp(w->string, "store") || !strcmp(w->string, "store_rows"))
            musae_fail("%s: the run being resumed was trained on another store (%s: fingerprint of its clips and rows "
                       "%s, now %s): resume it on the store it began with, or train into another -o", out,
                       cJSON_GetObjectItemCaseSensitive(want, "acts")->valuestring,
                       cJSON_IsString(h) ? h->valuestring : "?", cJSON_IsString(w) ? w->valuestring : "?");
        char a[600], b[600];
        identity_value(h, a, sizeof a);
        identity_value(w, b, sizeof b);
        musae_fail("%s: the run being resumed had %s = %s, this run has %s: a resumed run continues bit-identically "
                   "only with the same settings (give the same value, or train into another -o)", out,
                   identity_flag(w->string), a, b);
    }
    if (unchecked)
        LOG_WARN("%s: the state predates %d of the resume checks (store fingerprint, recipe): those settings are "
                 "taken as given", out, unchecked);
}

void sae_train_state_save(grid_sae *g, int n, const char *out, musae_stream_pos pos, const sae_train_opts *o,
                          const musae_store_info *in, int64_t prev_step) {
    const int64_t step = g[0].t.step;
    char path[4400];
    for (int i = 0; i < n; i++) {
        sae_trainer tmp;
        const sae_trainer *full = sae_dist_full(&g[i].t, &tmp);
        if (full) {
            snprintf(path, sizeof path, "%s/state", g[i].dir);
            sae_train_mkdirs(path);
            state_path(path, sizeof path, &g[i], step);
            /* the running metric sums too, so the resumed run logs the same lines */
            cJSON *aj = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(aj, "acc");
            const double sums[5] = {g[i].acc.loss, g[i].acc.fvu, g[i].acc.auxk, g[i].acc.l0, g[i].acc.dead_frac};
            for (int q = 0; q < 5; q++) { /* hex floats: the exact sums */
                char hex[64];
                snprintf(hex, sizeof hex, "%a", sums[q]);
                cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
            }
            cJSON_AddNumberToObject(aj, "acc_n", (double)g[i].acc_n);
            char *acc = cJSON_PrintUnformatted(aj);
            cJSON_Delete(aj);
            sae_state_save(path, full, acc);
            free(acc);
        }
        sae_dist_full_free(&tmp);
    }
    if (musae_rank() != 0) return;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)step);
    cJSON_AddItemToObject(j, "stream", pos_json(pos));
    cJSON_AddItemToObject(j, "identity", run_identity(o, in));
    cJSON *names = cJSON_AddArrayToObject(j, "saes");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(names, cJSON_CreateString(g[i].name));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/state", out);
    sae_train_mkdirs(path);
    snprintf(path, sizeof path, "%s/state/run.json", out);
    if (musae_write_file_atomic(path, s, strlen(s))) musae_fail("%s: cannot write: %s", path, strerror(errno));
    free(s);
    if (prev_step >= 0 && prev_step != step)
        for (int i = 0; i < n; i++) {
            state_path(path, sizeof path, &g[i], prev_step);
            unlink(path);
        }
}

void sae_train_state_remove(grid_sae *g, int n, const char *out, int64_t step) {
    char path[4400];
    for (int i = 0; i < n; i++) {
        state_path(path, sizeof path, &g[i], step);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/state/run.json", out);
    unlink(path);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/state", g[i].dir);
        rmdir(path);
    }
    snprintf(path, sizeof path, "%s/state", out);
    rmdir(path);
}

/* Keeps the metric lines of steps <= step (a killed run may have logged past its last state). */
static void truncate_metrics(const char *path, int64_t step) {
    char *s = musae_read_file(path, NULL, NULL, 0);
    if (!s) return;
    size_t cap = strlen(s) + 1, at = 0;
    char *out = musae_xmalloc(cap);
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
        if (cJSON_IsNumber(st) && st->valuedouble <= (double)step) at += (size_t)sprintf(out + at, "%s\n", line);
        cJSON_Delete(j);
    }
    if (musae_write_file_atomic(path, out, at)) musae_fail("%s: cannot write: %s", path, strerror(errno));
    free(out);
    free(s);
}

musae_stream_pos sae_train_state_resume(grid_sae *g, int n, const sae_train_opts *o, const musae_store_info *in,
                                        int root) {
    musae_stream_pos start = {0};
    char path[4400];
    snprintf(path, sizeof path, "%s/state/run.json", o->out);
    char *manifest = musae_read_file(path, NULL, NULL, 0);
    if (manifest && !o->resume)
        musae_fail("%s holds an unfinished run (state/run.json); pass --resume to continue it, or use another -o",
                   o->out);
    if (o->resume) {
        if (!manifest) musae_fail("%s: nothing to resume (no state/run.json)", o->out);
        cJSON *j = cJSON_Parse(manifest);
        if (!j) musae_fail("%s: not valid JSON", path);
        cJSON *want = run_identity(o, in);
        check_identity(o->out, want, cJSON_GetObjectItemCaseSensitive(j, "identity"));
        cJSON_Delete(want);
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "saes");
        if (cJSON_GetArraySize(names) != n) musae_fail("%s: the run being resumed trained %d SAEs, this one %d", o->out,
                                                       cJSON_GetArraySize(names), n);
        for (int i = 0; i < n; i++) {
            const cJSON *nm = cJSON_GetArrayItem(names, i);
            if (!cJSON_IsString(nm) || strcmp(nm->valuestring, g[i].name))
                musae_fail("%s: the run being resumed has another grid (SAE %d was %s, now %s)", o->out, i,
                           cJSON_IsString(nm) ? nm->valuestring : "?", g[i].name);
        }
        const int64_t step = (int64_t)jnum(j, "step");
        start = pos_from_json(cJSON_GetObjectItemCaseSensitive(j, "stream"));
        cJSON_Delete(j);
        for (int i = 0; i < n; i++) {
            state_path(path, sizeof path, &g[i], step);
            char *run = sae_state_load(path, &g[i].t);
            cJSON *rj = cJSON_Parse(run);
            const cJSON *acc = cJSON_GetObjectItemCaseSensitive(rj, "acc");
            double *dst[5] = {&g[i].acc.loss, &g[i].acc.fvu, &g[i].acc.auxk, &g[i].acc.l0, &g[i].acc.dead_frac};
            for (int q = 0; q < 5; q++) {
                const cJSON *v = cJSON_GetArrayItem(acc, q);
                *dst[q] = cJSON_IsString(v) ? strtod(v->valuestring, NULL) : 0.0;
            }
            const cJSON *an = cJSON_GetObjectItemCaseSensitive(rj, "acc_n");
            g[i].acc_n = cJSON_IsNumber(an) ? (int64_t)an->valuedouble : 0;
            cJSON_Delete(rj);
            free(run);
            MUSAE_ASSERT(g[i].t.step == step, "state %s is at step %lld, the manifest says %lld", path,
                         (long long)g[i].t.step, (long long)step);
        }
        snprintf(path, sizeof path, "%s/metrics.jsonl", o->out);
        if (root) truncate_metrics(path, step);
        LOG_INFO("resuming %d SAE(s) at step %" PRId64 " (%" PRId64 " tokens)", n, step, g[0].t.tokens);
    }
    free(manifest);
    return start;
}
