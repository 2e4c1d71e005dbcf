#include "host/io/audio.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"

#define BLOCK_FRAMES 16384 /* file frames decoded per read */

static int fail(char *err, size_t errlen, const char *fmt, ...) MUSAE_PRINTF(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- resampler ------------------------------------------------------------------------------------------ */

struct musae_resampler {
    soxr_t s;
    double ratio; /* out / in */
};

musae_resampler *musae_resampler_new(double in_rate, double out_rate, char *err, size_t errlen) {
    if (!(in_rate > 0) || !(out_rate > 0)) {
        fail(err, errlen, "resampler: rates must be positive (%g -> %g)", in_rate, out_rate);
        return NULL;
    }
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0); /* python-soxr's resample(quality="HQ") */
    soxr_t s = soxr_create(in_rate, out_rate, 1, &e, &io, &q, NULL);
    if (e || !s) {
        fail(err, errlen, "resampler %g -> %g Hz: %s", in_rate, out_rate, e ? e : "soxr_create failed");
        return NULL;
    }
    musae_resampler *rs = musae_xcalloc(1, sizeof *rs);
    rs->s = s;
    rs->ratio = out_rate / in_rate;
    return rs;
}

int64_t musae_resampler_process(musae_resampler *rs, const float *in, int64_t n_in, float *out, int64_t out_cap) {
    size_t odone = 0;
    soxr_error_t e = soxr_process(rs->s, in, in ? (size_t)n_in : 0, NULL, out, (size_t)out_cap, &odone);
    MUSAE_ASSERT(!e, "soxr_process: %s", e);
    return (int64_t)odone;
}

void musae_resampler_free(musae_resampler *rs) {
    if (!rs) return;
    soxr_delete(rs->s);
    free(rs);
}

int64_t musae_resampled_length(int64_t n_in, double in_rate, double out_rate) {
    if (in_rate == out_rate) return n_in;
    return (int64_t)floor((double)n_in * out_rate / in_rate + 0.5);
}

/* ---- reader --------------------------------------------------------------------------------------------- */

struct musae_audio_reader {
    char *path;
    SNDFILE *sf;
    musae_audio_info info;
    int rate;
    int64_t done;        /* file frames of the span decoded so far */
    float *block, *mono; /* [BLOCK_FRAMES · channels], [BLOCK_FRAMES] */
    musae_resampler *rs; /* NULL: the file is at the requested rate */
    float *pend;         /* samples at the requested rate not yet returned */
    int64_t pend_n, pend_off, pend_cap;
    int64_t returned;
    int ended;
};

static void describe_format(SNDFILE *sf, int format, char *buf, size_t n) {
    SF_FORMAT_INFO major = {.format = format & SF_FORMAT_TYPEMASK}, sub = {.format = format & SF_FORMAT_SUBMASK};
    const char *mj = sf_command(sf, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0 ? major.name : "?";
    const char *sb = sf_command(sf, SFC_GET_FORMAT_INFO, &sub, sizeof sub) == 0 ? sub.name : "?";
    snprintf(buf, n, "%s, %s", mj, sb);
}

/* libsndfile reads a WAV/AIFF whose data chunk runs past the end of the file without complaint: it shortens
 * the stream to what is there and notes "data : <promised> (should be <present>)" in its log. A cut-off
 * file is an error here, not silently shorter audio. Streaming writers that could not know the length
 * put 0 or 0xFFFFFFFF there; those are not truncations. */
static int data_chunk_short(SNDFILE *sf, long long *promised, long long *present) {
    char log[8192];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    for (const char *p = strstr(log, "\ndata"); p; p = strstr(p + 1, "\ndata")) {
        long long a, b;
        if (sscanf(p, "\ndata : %lld (should be %lld)", &a, &b) == 2 && a > b && a != 0 && a != 0xFFFFFFFFLL) {
            *promised = a;
            *present = b;
            return 1;
        }
    }
    return 0;
}

musae_audio_reader *musae_audio_open(const char *path, int rate, double start_s, double duration_s, char *err,
                                     size_t errlen) {
    MUSAE_ASSERT(rate > 0, "musae_audio_open: rate %d", rate);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        fail(err, errlen, "%s: is a directory, expected an audio file", path);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        fail(err, errlen, "%s: not a regular file", path);
        return NULL;
    }
    if (sb.st_size == 0) {
        fail(err, errlen, "%s: the file is empty (0 bytes)", path);
        return NULL;
    }
    if (access(path, R_OK) != 0) {
        fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (!(start_s >= 0) || !isfinite(start_s) || !(duration_s >= 0) || !isfinite(duration_s)) {
        fail(err, errlen, "%s: start %g s / duration %g s must be finite and >= 0", path, start_s, duration_s);
        return NULL;
    }
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    if (!sf) {
        fail(err, errlen, "%s: cannot read as audio: %s", path, sf_strerror(NULL));
        return NULL;
    }
    if (si.samplerate <= 0 || si.channels <= 0) {
        fail(err, errlen, "%s: invalid header (sample rate %d, %d channels)", path, si.samplerate, si.channels);
        sf_close(sf);
        return NULL;
    }
    long long promised, present;
    if (data_chunk_short(sf, &promised, &present)) {
        fail(err, errlen, "%s: truncated: the header promises %lld bytes of audio data, the file holds %lld", path,
             promised, present);
        sf_close(sf);
        return NULL;
    }
    if (si.frames <= 0) {
        fail(err, errlen, "%s: contains no audio samples", path);
        sf_close(sf);
        return NULL;
    }
    musae_audio_reader *r = musae_xcalloc(1, sizeof *r);
    r->path = musae_xstrdup(path);
    r->sf = sf;
    r->rate = rate;
    musae_audio_info *in = &r->info;
    in->sample_rate = si.samplerate;
    in->channels = si.channels;
    in->frames = si.frames;
    describe_format(sf, si.format, in->format, sizeof in->format);
    in->start_frame = (int64_t)llround(start_s * si.samplerate);
    if (in->start_frame >= si.frames) {
        fail(err, errlen, "%s: start %.3f s is at or past the end of the audio (%.3f s)", path, start_s,
             (double)si.frames / si.samplerate);
        musae_audio_close(r);
        return NULL;
    }
    in->span_frames = si.frames - in->start_frame;
    if (duration_s > 0) {
        int64_t want = (int64_t)llround(duration_s * si.samplerate);
        if (want < 1) want = 1;
        if (want < in->span_frames) in->span_frames = want;
    }
    in->out_samples = musae_resampled_length(in->span_frames, si.samplerate, rate);
    if (in->start_frame > 0) {
        if (sf_seek(sf, in->start_frame, SEEK_SET) != in->start_frame) {
            fail(err, errlen, "%s: cannot seek to %.3f s: %s", path, start_s, sf_strerror(sf));
            musae_audio_close(r);
            return NULL;
        }
    }
    if (si.samplerate != rate) {
        r->rs = musae_resampler_new(si.samplerate, rate, err, errlen);
        if (!r->rs) {
            musae_audio_close(r);
            return NULL;
        }
    }
    r->block = musae_xmalloc((size_t)BLOCK_FRAMES * (size_t)si.channels * sizeof(float));
    r->mono = musae_xmalloc((size_t)BLOCK_FRAMES * sizeof(float));
    r->pend_cap = (int64_t)ceil(BLOCK_FRAMES * (double)rate / si.samplerate) + 4096;
    r->pend = musae_xmalloc((size_t)r->pend_cap * sizeof(float));
    return r;
}

const musae_audio_info *musae_audio_reader_info(const musae_audio_reader *r) { return &r->info; }

/* Decodes the next block of the span into r->pend, or, once the span is decoded, drains the resampler's
 * tail. -1 on error. */
static int refill(musae_audio_reader *r, char *err, size_t errlen) {
    const int C = r->info.channels;
    r->pend_n = r->pend_off = 0;
    if (r->done == r->info.span_frames) {
        if (r->rs) r->pend_n = musae_resampler_process(r->rs, NULL, 0, r->pend, r->pend_cap);
        if (r->pend_n < r->pend_cap) r->ended = 1; /* a full buffer may hide more tail: ask again */
        return 0;
    }
    int64_t want = r->info.span_frames - r->done;
    if (want > BLOCK_FRAMES) want = BLOCK_FRAMES;
    sf_count_t got = sf_readf_float(r->sf, r->block, want);
    if (got < want) {
        int64_t at = r->info.start_frame + r->done + (got > 0 ? got : 0);
        const char *why = sf_error(r->sf) ? sf_strerror(r->sf) : "unexpected end of data";
        return fail(err, errlen, "%s: truncated or unreadable at %.3f s (frame %lld of %lld): %s", r->path,
                    (double)at / r->info.sample_rate, (long long)at, (long long)r->info.frames, why);
    }
    for (int64_t i = 0; i < got; i++) {
        float s = 0;
        for (int c = 0; c < C; c++) {
            float v = r->block[i * C + c];
            if (!isfinite(v)) {
                int64_t f = r->info.start_frame + r->done + i;
                return fail(err, errlen, "%s: sample at %.6f s (frame %lld, channel %d) is %s", r->path,
                            (double)f / r->info.sample_rate, (long long)f, c, isnan(v) ? "NaN" : "infinite");
            }
            s += v;
        }
        r->mono[i] = C == 1 ? s : s / (float)C;
    }
    r->done += got;
    if (r->rs) r->pend_n = musae_resampler_process(r->rs, r->mono, got, r->pend, r->pend_cap);
    else {
        memcpy(r->pend, r->mono, (size_t)got * sizeof(float));
        r->pend_n = got;
    }
    return 0;
}

int64_t musae_audio_read(musae_audio_reader *r, float *out, int64_t n, char *err, size_t errlen) {
    int64_t got = 0;
    while (got < n) {
        int64_t limit = r->info.out_samples - r->returned; /* the exact count, even if soxr's tail differs */
        if (limit <= 0) break;
        if (r->pend_off < r->pend_n) {
            int64_t k = r->pend_n - r->pend_off;
            if (k > n - got) k = n - got;
            if (k > limit) k = limit;
            memcpy(out + got, r->pend + r->pend_off, (size_t)k * sizeof(float));
            r->pend_off += k;
            got += k;
            r->returned += k;
            continue;
        }
        if (r->ended) {
            /* soxr flushed fewer samples than the exact count: never observed, but keep the length contract */
            int64_t k = n - got < limit ? n - got : limit;
            memset(out + got, 0, (size_t)k * sizeof(float));
            got += k;
            r->returned += k;
            continue;
        }
        if (refill(r, err, errlen)) return -1;
    }
    return got;
}

void musae_audio_close(musae_audio_reader *r) {
    if (!r) return;
    if (r->sf) sf_close(r->sf);
    musae_resampler_free(r->rs);
    free(r->block);
    free(r->mono);
    free(r->pend);
    free(r->path);
    free(r);
}

float *musae_audio_load(const char *path, int rate, double start_s, double duration_s, int64_t *n, char *err,
                        size_t errlen) {
    musae_audio_reader *r = musae_audio_open(path, rate, start_s, duration_s, err, errlen);
    if (!r) return NULL;
    int64_t total = r->info.out_samples;
    float *x = musae_xmalloc((size_t)(total > 0 ? total : 1) * sizeof(float));
    int64_t got = musae_audio_read(r, x, total, err, errlen);
    musae_audio_close(r);
    if (got < 0) {
        free(x);
        return NULL;
    }
    *n = got;
    return x;
}

/* ---- writer --------------------------------------------------------------------------------------------- */

struct musae_audio_writer {
    char *path, *tmp;
    SNDFILE *sf;
    int channels;
    int integer; /* clip to full scale */
    musae_audio_write_stats st;
    float *buf;  /* clipped copy of one block */
};

musae_audio_writer *musae_audio_writer_open(const char *path, int rate, int channels, musae_audio_format fmt,
                                            char *err, size_t errlen) {
    MUSAE_ASSERT(rate > 0 && channels > 0, "musae_audio_writer_open: rate %d channels %d", rate, channels);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fail(err, errlen, "%s: is a directory, expected an output file name", path);
        return NULL;
    }
    SF_INFO si = {.samplerate = rate, .channels = channels};
    switch (fmt) {
    case MUSAE_AUDIO_PCM16: si.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16; break;
    case MUSAE_AUDIO_FLOAT: si.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT; break;
    case MUSAE_AUDIO_FLAC: si.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16; break;
    case MUSAE_AUDIO_VORBIS: si.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS; break;
    default: MUSAE_ASSERT(0, "unknown audio format %d", (int)fmt);
    }
    if (!sf_format_check(&si)) {
        fail(err, errlen, "%s: this libsndfile cannot write that format (OGG Vorbis needs libsndfile built with "
                          "libvorbis)", path);
        return NULL;
    }
    musae_audio_writer *w = musae_xcalloc(1, sizeof *w);
    w->path = musae_xstrdup(path);
    size_t n = strlen(path) + 32;
    w->tmp = musae_xmalloc(n);
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    w->sf = sf_open(w->tmp, SFM_WRITE, &si);
    if (!w->sf) {
        fail(err, errlen, "%s: cannot create: %s", path, sf_strerror(NULL));
        free(w->tmp);
        free(w->path);
        free(w);
        return NULL;
    }
    w->channels = channels;
    w->integer = fmt != MUSAE_AUDIO_FLOAT;
    /* we clip ourselves, this only guards against libsndfile's wrap-around on an exact +1.0 */
    sf_command(w->sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
    w->buf = musae_xmalloc((size_t)BLOCK_FRAMES * (size_t)channels * sizeof(float));
    return w;
}

int musae_audio_write(musae_audio_writer *w, const float *x, int64_t frames, char *err, size_t errlen) {
    const int64_t C = w->channels;
    for (int64_t f0 = 0; f0 < frames; f0 += BLOCK_FRAMES) {
        int64_t nf = frames - f0 < BLOCK_FRAMES ? frames - f0 : BLOCK_FRAMES;
        for (int64_t i = 0; i < nf * C; i++) {
            float v = x[f0 * C + i];
            if (!isfinite(v))
                return fail(err, errlen, "%s: sample %lld is %s; refusing to write it", w->path,
                            (long long)((w->st.frames + f0) * C + i), isnan(v) ? "NaN" : "infinite");
            float a = fabsf(v);
            if (a > w->st.peak) w->st.peak = a;
            if (w->integer && a > 1.0f) {
                w->st.clipped++;
                v = v > 0 ? 1.0f : -1.0f;
            }
            w->buf[i] = v;
        }
        if (sf_writef_float(w->sf, w->buf, nf) != nf)
            return fail(err, errlen, "%s: write failed: %s", w->path, sf_strerror(w->sf));
    }
    w->st.frames += frames;
    return 0;
}

static void writer_free(musae_audio_writer *w) {
    free(w->buf);
    free(w->tmp);
    free(w->path);
    free(w);
}

void musae_audio_writer_abort(musae_audio_writer *w) {
    if (!w) return;
    if (w->sf) sf_close(w->sf);
    unlink(w->tmp);
    writer_free(w);
}

int musae_audio_writer_close(musae_audio_writer *w, musae_audio_write_stats *stats, char *err, size_t errlen) {
    int rc = 0;
    if (sf_close(w->sf) != 0) rc = fail(err, errlen, "%s: closing failed: %s", w->path, sf_strerror(NULL));
    w->sf = NULL;
    if (!rc && rename(w->tmp, w->path) != 0)
        rc = fail(err, errlen, "%s: cannot move the finished file into place: %s", w->path, strerror(errno));
    if (rc) unlink(w->tmp);
    if (stats) *stats = w->st;
    writer_free(w);
    return rc;
}

void musae_audio_clip_message(const musae_audio_write_stats *s, char *buf, size_t n) {
    if (!s->clipped) {
        snprintf(buf, n, "%s", "");
        return;
    }
    int64_t total = s->frames > 0 ? s->frames : 1;
    snprintf(buf, n,
             "%lld of %lld samples (%.3g%%) were beyond full scale (peak %.3f = %+.1f dBFS) and were clipped; "
             "write float WAV to keep them",
             (long long)s->clipped, (long long)s->frames, 100.0 * (double)s->clipped / (double)total, s->peak,
             20.0 * log10(s->peak));
}
