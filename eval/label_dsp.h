/* The dsp labeler (`musae label --labeler dsp`, docs/LABELS.md): every kept feature of FEATURES.h5 gets a label
 * from the music descriptors of DESCRIPTORS.h5 that differ between the clips it fires on and the random clips
 * where it never fires. Per feature and continuous descriptor: its top clips against its random non-firing clips
 * (Mann–Whitney U: AUROC, Cliff's delta, p) and every clip it fires on weighted by its time-mean activation
 * against the same random clips (weighted AUROC, normal p with the effective size); per categorical descriptor
 * (key with mode, mode, chords) and value present among the top clips: Fisher's exact test of its share in the
 * top clips against the random ones. Benjamini–Hochberg over every test of every feature; the label is the
 * strongest tests with q <= --q, one descriptor each, in words. Statistics in eval/stats.h. */
#ifndef MUSAE_LABEL_DSP_H
#define MUSAE_LABEL_DSP_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *features, *descriptors, *out;
    double q;      /* false discovery rate of Benjamini–Hochberg (0.05) */
    int max_terms; /* descriptors named in a label (3) */
} label_dsp_opts;

void label_dsp_opts_defaults(label_dsp_opts *o);
/* Reads both files, labels, and writes o->out atomically, keeping the other labelers' lines of an existing
 * file and replacing its dsp lines. Bad input (unreadable files, clips of FEATURES.h5 missing from
 * DESCRIPTORS.h5, a malformed existing file) ends with musae_fail: one line naming the file, exit 1.
 * Returns 0. */
int label_dsp_run(const label_dsp_opts *o);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LABEL_DSP_H */
