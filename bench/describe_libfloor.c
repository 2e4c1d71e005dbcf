/* The floor under `musae describe` set by the libraries issue [describe] requires (bench/describe_bench.py runs
 * it on its clips): the CPU time per clip of their calls alone, with musae's parameters and nothing else of the
 * describe pass (no reading cost, no STFT, chroma, HPSS, windows, file):
 *   aubio yinfast pitch (buffer 1024, hop 512, as eval/dsp_pitch.c),
 *   libebur128 modes I + LRA (integrated loudness and loudness range, as eval/dsp_loudness.c),
 *   aubio's tempo and onset objects as shipped (buffer 1024, hops 256 and 512; eval/dsp_tempo.c rebuilds their
 *   loops from aubio's parts on one magnitude spectrum, so musae pays less than these two).
 * Prints one JSON line: clips and milliseconds per clip of each.
 *   describe_libfloor FILE...   (read as musae describe reads audio: mono, at its rate) */
#include <aubio/aubio.h>
#include <ebur128.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/describe.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/audio.h"

/* The clip as musae describe reads it (host/io/audio.h: mono, at DESCRIBE_RATE), padded with a hop of zeros. */
static float *read_mono(const char *path, int64_t *n) {
    char err[512];
    float *m = musae_audio_load(path, DESCRIBE_RATE, 0, 0, n, err, sizeof err);
    if (!m) musae_fail("%s: %s", path, err);
    m = musae_xrealloc(m, sizeof(float) * (size_t)(*n + 1024));
    memset(m + *n, 0, sizeof(float) * 1024);
    return m;
}

/* Feeds m [n] (zero padded) to an aubio object hop by hop. */
#define FEED(hop, call)                                                                                         \
    do {                                                                                                        \
        fvec_t *in_ = new_fvec(hop), *out_ = new_fvec(1);                                                       \
        for (int64_t h = 0; h < n; h += (hop)) {                                                                \
            for (int i = 0; i < (hop); i++) in_->data[i] = m[h + i];                                            \
            call(obj, in_, out_);                                                                               \
        }                                                                                                       \
        del_fvec(in_);                                                                                          \
        del_fvec(out_);                                                                                         \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: describe_libfloor FILE.wav...\n");
        return 2;
    }
    double t_pitch = 0, t_loud = 0, t_tempo = 0, t_onset = 0;
    int clips = 0;
    for (int a = 1; a < argc; a++) {
        int64_t n;
        const int rate = DESCRIBE_RATE;
        float *m = read_mono(argv[a], &n);
        double t0 = musae_process_cpu();
        {
            aubio_pitch_t *obj = new_aubio_pitch("yinfast", 1024, 512, (uint_t)rate);
            aubio_pitch_set_unit(obj, "Hz");
            aubio_pitch_set_silence(obj, -60);
            FEED(512, aubio_pitch_do);
            del_aubio_pitch(obj);
        }
        double t1 = musae_process_cpu();
        ebur128_state *st = ebur128_init(1, (unsigned long)rate, EBUR128_MODE_I | EBUR128_MODE_LRA);
        double lufs, lra;
        if (!st || ebur128_add_frames_float(st, m, (size_t)n) || ebur128_loudness_global(st, &lufs) ||
            ebur128_loudness_range(st, &lra))
            musae_fail("%s: libebur128 failed", argv[a]);
        ebur128_destroy(&st);
        double t2 = musae_process_cpu();
        {
            aubio_tempo_t *obj = new_aubio_tempo("default", 1024, 256, (uint_t)rate);
            FEED(256, aubio_tempo_do);
            del_aubio_tempo(obj);
        }
        double t3 = musae_process_cpu();
        {
            aubio_onset_t *obj = new_aubio_onset("default", 1024, 512, (uint_t)rate);
            FEED(512, aubio_onset_do);
            del_aubio_onset(obj);
        }
        double t4 = musae_process_cpu();
        t_pitch += t1 - t0, t_loud += t2 - t1, t_tempo += t3 - t2, t_onset += t4 - t3;
        clips++;
        free(m);
    }
    printf("{\"clips\": %d, \"ms_per_clip\": {\"aubio_yinfast_pitch\": %.3f, \"libebur128_I_LRA\": %.3f, "
           "\"aubio_tempo_object\": %.3f, \"aubio_onset_object\": %.3f}}\n",
           clips, 1e3 * t_pitch / clips, 1e3 * t_loud / clips, 1e3 * t_tempo / clips, 1e3 * t_onset / clips);
    return 0;
}
