// tools/cuda_emu stand-in for <cub/cub.cuh>: the CUB calls musae's kernels make, with CUB's documented
// semantics, run on the host (device-wide) or by the emulated block's threads (block-wide).
//  - Device calls: a null d_temp_storage only sets temp_storage_bytes; a real call with fewer bytes than that
//    fails with cudaErrorInvalidValue (CUB's AliasTemporaries does the same); the temporary storage is
//    overwritten with garbage, so a caller that keeps data in it, or carved it over live data, sees it break.
//    In-place scans (d_in == d_out) are allowed, as in CUB.
//  - DeviceRadixSort::SortPairs: a stable LSD sort on key bits [begin_bit, end_bit) (signed keys have their
//    sign bit flipped first, as CUB's twiddling does), keys and values written to the output arrays.
//  - BlockScan: the block's values go through TempStorage and every thread sums those before it; as in CUB,
//    TempStorage may be reused only after a __syncthreads.
#pragma once
#include <algorithm>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "emu.h"

namespace cub {

namespace emu_detail {
// Temporary bytes a call asks for: enough to look like CUB's (a few KB plus a copy of the data), a function
// of the problem size only.
inline size_t temp_bytes(size_t data_bytes) { return 4096 + data_bytes; }
inline void scribble(void *temp, size_t bytes) { memset(temp, 0xA7, bytes); }

template <class K> inline uint64_t radix_bits(K k) {
    static_assert(std::is_integral<K>::value && sizeof(K) <= 8, "the emulated radix sort takes integer keys");
    uint64_t u = 0;
    memcpy(&u, &k, sizeof(K));
    if (std::is_signed<K>::value) u ^= (uint64_t)1 << (8 * sizeof(K) - 1); /* CUB's twiddle: negatives first */
    return u;
}
}  // namespace emu_detail

struct DeviceRadixSort {
    template <class K, class V>
    static cudaError_t SortPairs(void *d_temp_storage, size_t &temp_storage_bytes, const K *d_keys_in, K *d_keys_out,
                                 const V *d_values_in, V *d_values_out, int num_items, int begin_bit = 0,
                                 int end_bit = (int)sizeof(K) * 8, cudaStream_t = 0, bool = false) {
        const size_t need = emu_detail::temp_bytes((size_t)(num_items > 0 ? num_items : 0) * (sizeof(K) + sizeof(V)));
        if (!d_temp_storage) {
            temp_storage_bytes = need;
            return cudaSuccess;
        }
        if (temp_storage_bytes < need || num_items < 0 || begin_bit < 0 || end_bit > (int)sizeof(K) * 8 ||
            begin_bit > end_bit)
            return cudaErrorInvalidValue;
        emu_enqueue([=]() {
            std::vector<int> order((size_t)num_items);
            std::iota(order.begin(), order.end(), 0);
            const int width = end_bit - begin_bit;
            const uint64_t mask = width >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << width) - 1);
            std::vector<uint64_t> digit((size_t)num_items);
            for (int i = 0; i < num_items; i++)
                digit[(size_t)i] = width == 0 ? 0 : (emu_detail::radix_bits(d_keys_in[i]) >> begin_bit) & mask;
            std::stable_sort(order.begin(), order.end(),
                             [&](int a, int b) { return digit[(size_t)a] < digit[(size_t)b]; });
            std::vector<K> k((size_t)num_items);
            std::vector<V> v((size_t)num_items);
            for (int i = 0; i < num_items; i++) {
                k[(size_t)i] = d_keys_in[order[(size_t)i]];
                v[(size_t)i] = d_values_in[order[(size_t)i]];
            }
            emu_detail::scribble(d_temp_storage, need);
            if (num_items > 0) {
                memcpy(d_keys_out, k.data(), sizeof(K) * (size_t)num_items);
                memcpy(d_values_out, v.data(), sizeof(V) * (size_t)num_items);
            }
        });
        return cudaSuccess;
    }
};

struct DeviceScan {
  private:
    template <class I, class O>
    static cudaError_t scan(void *d_temp_storage, size_t &temp_storage_bytes, I d_in, O d_out, int num_items,
                            bool inclusive) {
        typedef typename std::remove_cv<typename std::remove_reference<decltype(*d_in)>::type>::type In;
        typedef typename std::remove_reference<decltype(*d_out)>::type Out;
        const size_t need = emu_detail::temp_bytes((size_t)(num_items > 0 ? num_items : 0) * sizeof(Out));
        if (!d_temp_storage) {
            temp_storage_bytes = need;
            return cudaSuccess;
        }
        if (temp_storage_bytes < need || num_items < 0) return cudaErrorInvalidValue;
        emu_enqueue([=]() {
            std::vector<Out> r((size_t)num_items);
            In acc = In();
            for (int i = 0; i < num_items; i++) {
                const In x = d_in[i];
                if (inclusive) acc = acc + x;
                r[(size_t)i] = (Out)acc;
                if (!inclusive) acc = acc + x;
            }
            emu_detail::scribble(d_temp_storage, need);
            for (int i = 0; i < num_items; i++) d_out[i] = r[(size_t)i];
        });
        return cudaSuccess;
    }

  public:
    template <class I, class O>
    static cudaError_t ExclusiveSum(void *t, size_t &b, I in, O out, int n, cudaStream_t = 0, bool = false) {
        return scan(t, b, in, out, n, false);
    }
    template <class I, class O>
    static cudaError_t InclusiveSum(void *t, size_t &b, I in, O out, int n, cudaStream_t = 0, bool = false) {
        return scan(t, b, in, out, n, true);
    }
};

template <class T, int BLOCK_DIM_X, int = 0, int BLOCK_DIM_Y = 1, int BLOCK_DIM_Z = 1>
class BlockScan {
    static constexpr int THREADS = BLOCK_DIM_X * BLOCK_DIM_Y * BLOCK_DIM_Z;

  public:
    struct TempStorage {
        T v[THREADS];
    };
    explicit BlockScan(TempStorage &ts) : ts_(ts) {
        if (blockDim.x * blockDim.y * blockDim.z != (unsigned)THREADS) emu_fail("cub::BlockScan: block size differs");
    }
    void ExclusiveSum(T in, T &out, T &aggregate) { sum(in, out, aggregate, false); }
    void ExclusiveSum(T in, T &out) {
        T a;
        sum(in, out, a, false);
    }
    void InclusiveSum(T in, T &out, T &aggregate) { sum(in, out, aggregate, true); }
    void InclusiveSum(T in, T &out) {
        T a;
        sum(in, out, a, true);
    }

  private:
    TempStorage &ts_;
    void sum(T in, T &out, T &aggregate, bool inclusive) {
        const unsigned me = emu_linear_tid();
        ts_.v[me] = in;
        __syncthreads();
        T acc = T(), all = T();
        for (unsigned t = 0; t < (unsigned)THREADS; t++) {
            if (t < me || (inclusive && t == me)) acc = acc + ts_.v[t];
            all = all + ts_.v[t];
        }
        out = acc;
        aggregate = all;
    }
};

}  // namespace cub
