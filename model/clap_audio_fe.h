/* CLAP's audio front end exactly as HF ClapFeatureExtractor computes it on the non-fusion path
 * (truncation "rand_trunc": laion/clap-htsat-unfused, larger_clap_general, larger_clap_music[_and_speech]),
 * read from feature_extraction_clap.py and audio_utils.spectrogram (transformers 5.24):
 *
 *   x       mono float at sampling_rate; longer than max_samples = max_length_s·sampling_rate: the FIRST
 *           max_samples are kept (HF crops at a random offset, which cannot be reproduced; the start is
 *           what a reader can stop early for). Shorter: "repeatpad" tiles it ⌊max/len⌋ times then pads
 *           with zeros, "repeat" tiles it ⌊max/len⌋+1 times and cuts, anything else zero-pads.
 *   frames  reflect-pad n_fft/2 each side, frames every hop (max/hop + 1 of them), periodic Hann window,
 *           real FFT in double (FFTW), each bin rounded to complex64 as HF stores it, power |X|², then
 *   mel     Slaney-scale, Slaney-normalised triangles (librosa's bank) between frequency_min and
 *           frequency_max over n_fft/2+1 bins spaced (sr//2)/(n_fft/2), in double;
 *   out     10·log10(max(mel, 1e-10)) as float32, [frames, n_mels] (HF input_features[b, 0]).
 * preprocessor_config.json's top_db is ignored, as HF's rand_trunc path ignores it. */
#ifndef MUSAE_CLAP_AUDIO_FE_H
#define MUSAE_CLAP_AUDIO_FE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CLAP_PAD_REPEATPAD = 0, CLAP_PAD_REPEAT = 1, CLAP_PAD_ZEROS = 2 } musae_clap_padding;

typedef struct {
    int sampling_rate;     /* preprocessor_config.json sampling_rate (48000) */
    int n_fft;             /* fft_window_size (1024) = window length */
    int hop;               /* hop_length (480) */
    int n_mels;            /* feature_size (64) */
    double fmin, fmax;     /* frequency_min, frequency_max (50, 14000) */
    int64_t max_samples;   /* max_length_s · sampling_rate (480000) */
    int64_t frames;        /* max_samples / hop + 1 (1001) */
    musae_clap_padding padding;
    double *window;        /* [n_fft] periodic Hann */
    double *mel;           /* [n_mels, n_fft/2 + 1] the Slaney bank, transposed for row dot products */
    void *plan;            /* fftw_plan, r2c of n_fft (executed with new arrays: thread-safe) */
} musae_clap_fe;

/* Reads DIR/preprocessor_config.json. A fusion config (clap-htsat-fused), a missing or nonsensical field is
 * refused: -1 with a one-line reason in err naming the file and the field. */
int musae_clap_fe_open(musae_clap_fe *fe, const char *dir, char *err, size_t errlen);
void musae_clap_fe_close(musae_clap_fe *fe);
/* n >= 1 samples → out [frames, n_mels]. */
void musae_clap_fe_features(const musae_clap_fe *fe, const float *x, int64_t n, float *out);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_AUDIO_FE_H */
