/* The LM's file contracts (ARCHITECTURE.md, "File formats"), read defensively: every rejection is a
 * musae_fail naming the file, the tensor and what is wrong.
 *   codes        safetensors, tensor "codes" int64 [B, K, F], values 0 .. V-1 (no delay pattern)
 *   text states  safetensors, "text_states" f32 [B, S, H] (after enc_to_dec_proj, times the mask) and
 *                "text_mask" int64 [B, S] of 0/1 (1 = real token) */
#ifndef MUSAE_LM_FILES_H
#define MUSAE_LM_FILES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one reader of the codes format, used by every verb (decode, forward, evaluate): reads `codes` into a
 * malloc'd int64 [B, K, F] after checking dtype (I64 only: the format is int64, and musae writes nothing else),
 * rank, K, non-emptiness and the value range. 0, or -1 with the reason (file, tensor, first bad index) in err. */
int mg_codes_read(const char *path, int64_t K, int64_t V, int64_t **codes, int64_t *B, int64_t *F, char *err,
                  size_t errlen);
/* mg_codes_read, with a failure a musae_fail. */
int64_t *mg_read_codes(const char *path, int64_t K, int64_t V, int64_t *B, int64_t *F);
/* Writes codes [B, K, F] atomically; meta holds n_meta key/value string pairs for __metadata__. */
void mg_write_codes(const char *path, const int64_t *codes, int64_t B, int64_t K, int64_t F, const char *const *meta,
                    int n_meta);

typedef struct {
    int64_t B, S, H;
    float *states; /* [B, S, H] */
    float *mask;   /* [B, S] as 0/1 floats, the form the attention op takes */
} mg_text_states;

/* Reads and checks a text-states file for a decoder of hidden size H. */
void mg_read_text_states(const char *path, int64_t H, mg_text_states *out);
void mg_text_states_free(mg_text_states *t);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LM_FILES_H */
