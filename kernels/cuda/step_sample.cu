/* step_ops->sample on the GPU: one block per (item, codebook) row fuses CFG, the warpers, the Philox draw and
 * the delay pattern, and produces exactly the tokens of kernels/cpu/step_sample.c (and so of
 * model/sampling.c): every value that decides a token is computed by the same MUSAE_HD code
 * (kernels/sample_rule.h) or by order-free steps.
 *   scores     fp32 CFG (explicitly rounded, no fma) and temperature, written out when asked;
 *   greedy     block argmax with torch's first-index rule (a NaN at index 0 wins, other NaNs never do);
 *   candidates keys (score descending, index ascending) bitonic-sorted in shared memory: the sorted sequence
 *              is unique, so it equals the CPU's qsort result;
 *   top-k      a binary search for the end of the scores >= the k-th (sorted, so a prefix);
 *   probs      musae_exp_neg in parallel (a pure function of one key);
 *   sums       total, the top-p walk, the mass and the inverse-CDF walk are sequential double sums over the
 *              sorted candidates on thread 0, in the CPU's order: a parallel reduction would round
 *              differently. At most V adds each; with top-k 250 (MusicGen's default) a few hundred. */
#include "host/core/philox.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/step_ops_cuda.cuh"
#include "kernels/sample_rule.h"

#define SAMPLE_THREADS 256

// ---- CUDA kernels
static __global__ void __launch_bounds__(SAMPLE_THREADS)
    step_sample_kernel(const float *__restrict__ logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                       musae_sample_params p, int n2, const int64_t *__restrict__ pos) {
    extern __shared__ uint64_t keys[];             /* [n2] sort keys, then the candidates in order */
    double *prob = reinterpret_cast<double *>(keys + n2); /* [n2] */
    __shared__ float best_v[SAMPLE_THREADS];
    __shared__ int best_i[SAMPLE_THREADS];
    __shared__ int64_t chosen[1]; /* thread 0's token, published to the writer below */
    __shared__ int m_sh[1];       /* candidates after top-k */
    const int t = threadIdx.x;
    const int64_t b = blockIdx.x / p.K, k = blockIdx.x % p.K, V = p.V;
    const int64_t step = *pos, j_pos = step + 1;
    const float *cond = logits + (b * p.K + k) * V;
    const float *unc = logits + ((p.B + b) * p.K + k) * V;
    float *srow = scores ? scores + (b * p.K + k) * V : nullptr;

    // scores; greedy's per-thread first maximum over non-NaN scores (indices visited in increasing order)
    float bv = 0.0f;
    int bi = -1;
    for (int64_t i = t; i < n2; i += SAMPLE_THREADS) {
        if (i >= V) {
            keys[i] = UINT64_MAX;
            continue;
        }
        const float s = p.cfg ? musae_cfg_score(cond[i], unc[i], p.guidance) : cond[i];
        if (srow) srow[i] = s;
        if (p.greedy) {
            if (s == s && (bi < 0 || s > bv)) bv = s, bi = (int)i;
        } else {
            keys[i] = musae_cand_key(musae_temper(s, p.temperature), (int32_t)i);
        }
    }
    if (p.greedy) {
        best_v[t] = bv;
        best_i[t] = bi;
        __syncthreads();
        for (int h = SAMPLE_THREADS / 2; h > 0; h >>= 1) {
            if (t < h) {
                const float ov = best_v[t + h];
                const int oi = best_i[t + h];
                const bool take = oi >= 0 && (best_i[t] < 0 || ov > best_v[t] || (ov == best_v[t] && oi < best_i[t]));
                if (take) best_v[t] = ov, best_i[t] = oi;
            }
            __syncthreads();
        }
        if (t == 0) {
            const float s0 = p.cfg ? musae_cfg_score(cond[0], unc[0], p.guidance) : cond[0];
            chosen[0] = (s0 != s0 || best_i[0] < 0) ? 0 : best_i[0];
        }
    } else {
        // bitonic sort, ascending
        for (int kk = 2; kk <= n2; kk <<= 1)
            for (int jj = kk >> 1; jj > 0; jj >>= 1) {
                __syncthreads();
                for (int i = t; i < n2; i += SAMPLE_THREADS) {
                    const int ixj = i ^ jj;
                    if (ixj > i) {
                        const uint64_t x = keys[i], y = keys[ixj];
                        if ((x > y) == ((i & kk) == 0)) keys[i] = y, keys[ixj] = x;
                    }
                }
            }
        __syncthreads();
        // candidates [0, m), then top-k's prefix [0, m) of scores >= the k-th: binary searches on sorted keys
        if (t == 0) {
            int lo = 0, hi = (int)V; /* first non-candidate */
            while (lo < hi) {
                const int mid = (lo + hi) / 2;
                if (keys[mid] == UINT64_MAX) hi = mid;
                else lo = mid + 1;
            }
            int m = lo;
            if (m == 0) {
                printf("[musae] step sample: no finite score (item %lld, codebook %lld)\n", (long long)b, (long long)k);
                __trap();
            }
            if (p.top_k > 0 && p.top_k < m) {
                const float thr = musae_cand_score(keys[p.top_k - 1]);
                lo = p.top_k, hi = m; /* first score < thr */
                while (lo < hi) {
                    const int mid = (lo + hi) / 2;
                    if (musae_cand_score(keys[mid]) >= thr) lo = mid + 1;
                    else hi = mid;
                }
                m = lo;
            }
            m_sh[0] = m;
        }
        __syncthreads();
        const int m = m_sh[0];
        const double mx = musae_cand_score(keys[0]);
        for (int j = t; j < m; j += SAMPLE_THREADS) prob[j] = musae_exp_neg((double)musae_cand_score(keys[j]) - mx);
        __syncthreads();
        if (t == 0) {
            double total = 0;
            for (int j = 0; j < m; j++) total += prob[j];
            int mm = m;
            if (p.top_p < 1.0f) {
                double before = prob[0];
                int keep = 1;
                while (keep < mm && before / total < (double)p.top_p) before += prob[keep++];
                mm = keep;
            }
            double mass = 0;
            for (int j = 0; j < mm; j++) mass += prob[j];
            const int64_t per_step = (p.K + 3) / 4;
            const musae_u32x4 w = musae_philox(p.seed, p.same_draws ? 0u : (uint64_t)b, (uint64_t)(step * per_step + k / 4));
            const double target = (double)musae_u32_to_unit(w.v[k % 4]) * mass;
            double acc = 0;
            int pick = mm - 1;
            for (int j = 0; j < mm; j++) {
                acc += prob[j];
                if (acc > target) {
                    pick = j;
                    break;
                }
            }
            chosen[0] = musae_cand_index(keys[pick]);
        }
    }
    if (t == 0) {
        const int64_t tk = chosen[0];
        tok[b * p.K + k] = tk;
        const int64_t val = musae_delay_free(p.delayed, p.K, p.max_length, k, j_pos) ? tk : V;
        seq[(b * p.K + k) * p.max_length + j_pos] = val;
        ids[k * p.rows + b] = val;
        if (p.cfg) ids[k * p.rows + p.B + b] = val;
    }
}

// ---- kernel launchers
void step_sample_cuda(const float *logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                      const musae_sample_params *p, const int64_t *pos, cudaStream_t stream) {
    MUSAE_ASSERT(p->V >= 1 && p->V <= MUSAE_SAMPLE_VMAX && p->B >= 1 && p->K >= 1 && p->B * p->K <= INT32_MAX &&
                 p->rows == (p->cfg ? 2 * p->B : p->B),
                 "step sample: B %lld K %lld V %lld rows %lld", (long long)p->B, (long long)p->K, (long long)p->V,
                 (long long)p->rows);
    MUSAE_ASSERT(p->greedy || (p->temperature > 0 && p->top_k >= 0 && p->top_p > 0 && p->top_p <= 1),
                 "sampler temperature %g top_k %d top_p %g", p->temperature, p->top_k, p->top_p);
    int n2 = 1;
    while (n2 < p->V) n2 <<= 1;
    const size_t smem = (size_t)n2 * (sizeof(uint64_t) + sizeof(double));
    step_sample_kernel<<<(unsigned)(p->B * p->K), SAMPLE_THREADS, smem, stream>>>(logits, scores, tok, seq, ids, *p,
                                                                                   n2, pos);
    CUDA_LAUNCH_CHECK();
}
