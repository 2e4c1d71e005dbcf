/* Internal to eval/dashboard*.c: the static files every site carries (dashboard_assets.c). */
#ifndef MUSAE_DASHBOARD_INT_H
#define MUSAE_DASHBOARD_INT_H

#include "eval/dashboard.h"

extern const char dash_css[];
extern const char dash_index_js[];
extern const char dash_player_js[];

#include "eval/excerpt.h"
#include "eval/features_io.h"

/* One run's state, shared by the page writers. */
typedef struct {
    const dashboard_opts *o;
    excerpt_ctx x;            /* x.f is the FEATURES file; x.s / x.m only when have_audio */
    int have_audio;
    char no_audio_why[800];   /* why no excerpt can be cut (shown in every clip's gap) */
    dash_labels L;
    dash_steers S;
    char *steer_copy;         /* [S.n] 1 where the steering audio was copied into the site */
    int64_t n_excerpts, n_reused, n_gaps;
} dash_ctx;

/* "kept", "dead", "too rare" or "too common". */
const char *dash_status(const musae_features *f, int64_t i);
/* Writes features/f<i>.html (cutting the excerpts it shows). 0, or -1 with the reason in err. */
int dash_feature_page(dash_ctx *c, int64_t i, char *err, size_t errlen);
#endif /* MUSAE_DASHBOARD_INT_H */
