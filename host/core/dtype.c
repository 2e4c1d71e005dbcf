#include "host/core/dtype.h"

#include "host/core/check.h"

size_t musae_dtype_size(musae_dtype t) {
    switch (t) {
    case MUSAE_F32: return 4;
    case MUSAE_F16: return 2;
    case MUSAE_BF16: return 2;
    case MUSAE_I32: return 4;
    case MUSAE_I64: return 8;
    default: break;
    }
    MUSAE_ASSERT(0, "unknown dtype %d", (int)t);
    return 0;
}

const char *musae_dtype_name(musae_dtype t) {
    static const char *names[] = {"f32", "f16", "bf16", "i32", "i64"};
    MUSAE_ASSERT(t >= 0 && t < MUSAE_DTYPE_COUNT, "unknown dtype %d", (int)t);
    return names[t];
}

static double load_as_double(const void *src, musae_dtype t, size_t i) {
    switch (t) {
    case MUSAE_F32: return ((const float *)src)[i];
    case MUSAE_F16: return musae_f16_to_f32(((const uint16_t *)src)[i]);
    case MUSAE_BF16: return musae_bf16_to_f32(((const uint16_t *)src)[i]);
    case MUSAE_I32: return ((const int32_t *)src)[i];
    default: MUSAE_ASSERT(0, "load_as_double on %s", musae_dtype_name(t));
    }
    return 0;
}

void musae_convert(void *dst, musae_dtype dt, const void *src, musae_dtype st, size_t n) {
    if (dt == st) {
        memcpy(dst, src, n * musae_dtype_size(dt));
        return;
    }
    /* integer <-> integer exactly (i64 values outside the i32 range are an error, not a silent wrap) */
    if (st == MUSAE_I64 && dt == MUSAE_I32) {
        for (size_t i = 0; i < n; i++) {
            int64_t v = ((const int64_t *)src)[i];
            MUSAE_ASSERT(v >= INT32_MIN && v <= INT32_MAX, "i64 value %lld at %zu does not fit i32", (long long)v, i);
            ((int32_t *)dst)[i] = (int32_t)v;
        }
        return;
    }
    if (st == MUSAE_I64) {
        for (size_t i = 0; i < n; i++) {
            double v = (double)((const int64_t *)src)[i];
            switch (dt) {
            case MUSAE_F32: ((float *)dst)[i] = (float)v; break;
            case MUSAE_F16: ((uint16_t *)dst)[i] = musae_f32_to_f16((float)v); break;
            case MUSAE_BF16: ((uint16_t *)dst)[i] = musae_f32_to_bf16((float)v); break;
            default: MUSAE_ASSERT(0, "unreachable");
            }
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double v = load_as_double(src, st, i);
        switch (dt) {
        case MUSAE_F32: ((float *)dst)[i] = (float)v; break;
        case MUSAE_F16: ((uint16_t *)dst)[i] = musae_f32_to_f16((float)v); break;
        case MUSAE_BF16: ((uint16_t *)dst)[i] = musae_f32_to_bf16((float)v); break;
        case MUSAE_I32: ((int32_t *)dst)[i] = (int32_t)v; break;
        case MUSAE_I64: ((int64_t *)dst)[i] = (int64_t)v; break;
        default: MUSAE_ASSERT(0, "unknown dtype %d", (int)dt);
        }
    }
}
