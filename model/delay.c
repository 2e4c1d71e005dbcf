#include "model/delay.h"

#include "host/core/check.h"

void mg_delay_codes(const int64_t *codes, int64_t B, int64_t K, int64_t F, int64_t bos, int64_t *delayed) {
    const int64_t T = F + K;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++) {
            int64_t *row = delayed + (b * K + k) * T;
            for (int64_t j = 0; j < T; j++) row[j] = bos;
            for (int64_t t = 0; t < F; t++) row[t + 1 + k] = codes[(b * K + k) * F + t];
        }
}

void mg_undelay_codes(const int64_t *delayed, int64_t B, int64_t K, int64_t F, int64_t *codes) {
    const int64_t T = F + K;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t t = 0; t < F; t++) codes[(b * K + k) * F + t] = delayed[(b * K + k) * T + t + 1 + k];
}

mg_delay_plan mg_delay_plan_steps(int64_t K, int64_t steps) {
    MUSAE_ASSERT(K >= 1 && steps >= 1, "delay plan K %lld steps %lld", (long long)K, (long long)steps);
    mg_delay_plan p;
    p.K = K;
    p.steps = steps;
    p.max_length = steps + 1;
    p.delayed = p.max_length >= 2 * K - 1;
    p.frames = p.delayed ? steps - (K - 1) : steps;
    return p;
}

mg_delay_plan mg_delay_plan_frames(int64_t K, int64_t frames) {
    MUSAE_ASSERT(K >= 1 && frames >= 1, "delay plan K %lld frames %lld", (long long)K, (long long)frames);
    mg_delay_plan p = mg_delay_plan_steps(K, frames + K - 1);
    if (!p.delayed) p = mg_delay_plan_steps(K, frames);
    MUSAE_ASSERT(p.frames == frames, "no step count yields %lld frames", (long long)frames);
    return p;
}

int mg_delay_free(const mg_delay_plan *p, int64_t k, int64_t j) {
    if (!p->delayed) return j >= 1;
    return j > k && j < p->max_length - p->K + 1 + k;
}

int64_t mg_delay_pos(const mg_delay_plan *p, int64_t k, int64_t t) { return p->delayed ? t + 1 + k : t + 1; }
