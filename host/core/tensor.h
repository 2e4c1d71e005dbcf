/* Tensors are plain descriptors over memory someone else owns (an arena, an mmapped file, a malloc):
 * row-major, contiguous, rank <= 4. Shapes are int64 because B*T*D products overflow int (llm.c's note).
 * Arenas are sized up front and carved with 64-byte alignment; they never grow, so a model's memory is
 * known before the first op runs (ggml gallocr_reserve, llm.c malloc_and_point). */
#ifndef MUSAE_TENSOR_H
#define MUSAE_TENSOR_H

#include <stdint.h>

#include "host/core/check.h"
#include "host/core/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MUSAE_MAX_RANK 4

typedef enum { MUSAE_DEVICE_CPU = 0, MUSAE_DEVICE_CUDA = 1 } musae_device;

typedef struct {
    void *data;
    musae_dtype dtype;
    int rank;
    int64_t shape[MUSAE_MAX_RANK]; /* shape[rank..3] are 1 */
    musae_device device;
} musae_tensor;

/* Builds a descriptor; pass rank dims. */
musae_tensor musae_tensor_make(void *data, musae_dtype dtype, int rank, const int64_t *shape, musae_device dev);
int64_t musae_tensor_numel(const musae_tensor *t);
size_t musae_tensor_nbytes(const musae_tensor *t);
/* "[2, 4, 12]" into buf (at least 80 bytes is always enough). */
const char *musae_shape_str(int rank, const int64_t *shape, char *buf, size_t n);

/* Always-on checks with both shapes in the message. */
#define MUSAE_ASSERT_DTYPE(t, dt)                                                                          \
    MUSAE_ASSERT((t)->dtype == (dt), "tensor dtype is %s, expected %s", musae_dtype_name((t)->dtype),      \
                 musae_dtype_name(dt))
void musae_assert_shape(const musae_tensor *t, int rank, const int64_t *shape, const char *what);

typedef struct {
    uint8_t *base;
    size_t cap;
    size_t used;
    musae_device device;
    const char *name; /* for the overflow message */
} musae_arena;

/* CPU arena of cap bytes (zeroed). CUDA arenas are made by the CUDA backend with the same struct. */
void musae_arena_init(musae_arena *a, const char *name, size_t cap);
void *musae_arena_alloc(musae_arena *a, size_t nbytes);
musae_tensor musae_arena_tensor(musae_arena *a, musae_dtype dtype, int rank, const int64_t *shape);
void musae_arena_reset(musae_arena *a);
void musae_arena_free(musae_arena *a);
/* Bytes an allocation of nbytes takes in an arena (with alignment), for sizing arenas up front. */
size_t musae_arena_footprint(size_t nbytes);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_TENSOR_H */
