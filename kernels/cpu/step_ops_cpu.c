/* The CPU step table (kernels/step_ops.h): the ops of kernels/cpu/step_*.c, the step counter, and host memory
 * standing in for the device's. Everything runs when called, so downloads are plain copies, events are
 * already complete, and there are no graphs. */
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/step_cpu.h"

static void cpu_advance(int64_t *pos) { (*pos)++; }
static void *cpu_host_alloc(size_t bytes) { return musae_xmalloc(bytes ? bytes : 1); }
static void cpu_host_free(void *p) { free(p); }
static void cpu_download_async(void *host_dst, const void *src, size_t bytes) {
    if (bytes) memcpy(host_dst, src, bytes);
}
/* an event is complete the moment it is recorded; a non-NULL token keeps callers' checks simple */
static char g_event;
static void *cpu_event_new(void) { return &g_event; }
static void cpu_event_nop(void *e) {}

static const musae_step_ops k_step_cpu = {
    .name = "cpu",
    .embed = cpu_step_embed,
    .kv_append = cpu_step_kv_append,
    .attention = cpu_step_attention,
    .add_rows_at = cpu_step_add_rows_at,
    .capture = cpu_step_capture,
    .sample = cpu_step_sample,
    .advance = cpu_advance,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_host_free,
    .download_async = cpu_download_async,
    .event_new = cpu_event_new,
    .event_record = cpu_event_nop,
    .event_sync = cpu_event_nop,
    .event_free = cpu_event_nop,
};

const musae_step_ops *musae_step_ops_cpu(void) { return &k_step_cpu; }
