/* LABELS.jsonl reader and writer (eval/labels_io.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/labels_io.h"
#include "host/core/check.h"
#include "host/io/json.h"

typedef struct {
    const char *path;
    labels_line_fn fn;
    void *ctx;
} each_ctx;

/* A line of LABELS.jsonl: an object (musae_jsonl_each checked) with an integer feature and a string labeler. */
static int check_line(void *vctx, cJSON *j, long no, char *err, size_t errlen) {
    const each_ctx *c = vctx;
    const cJSON *feat = cJSON_GetObjectItemCaseSensitive(j, "feature");
    const char *why = !cJSON_IsNumber(feat) || feat->valuedouble != floor(feat->valuedouble) || feat->valuedouble < 0
                          ? "no integer \"feature\""
                      : !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "labeler")) ? "no string \"labeler\""
                                                                                       : NULL;
    if (why) {
        snprintf(err, errlen, "%s: line %ld: %s", c->path, no, why);
        cJSON_Delete(j);
        return -1;
    }
    return c->fn(c->ctx, j, no, err, errlen);
}

int labels_each(const char *path, int missing_ok, labels_line_fn fn, void *ctx, char *err, size_t errlen) {
    each_ctx c = {.path = path, .fn = fn, .ctx = ctx};
    return musae_jsonl_each(path, missing_ok, check_line, &c, err, errlen);
}

static int append_line(void *lines, cJSON *line, long line_no, char *err, size_t errlen) {
    cJSON_AddItemToArray(lines, line);
    return 0;
}

cJSON *labels_read(const char *path, int missing_ok, char *err, size_t errlen) {
    cJSON *lines = cJSON_CreateArray();
    if (labels_each(path, missing_ok, append_line, lines, err, errlen)) {
        cJSON_Delete(lines);
        return NULL;
    }
    return lines;
}

int labels_write(const char *path, const cJSON *lines, char *err, size_t errlen) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, lines) {
        char *s = cJSON_PrintUnformatted(l);
        bad |= !s || fputs(s, f) < 0 || fputc('\n', f) < 0;
        free(s);
    }
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    const int e = errno;
    if (fclose(f) || bad || rename(tmp, path)) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(bad ? e : errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int by_feature(const void *a, const void *b) {
    const double fa = cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)a, "feature")->valuedouble;
    const double fb = cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)b, "feature")->valuedouble;
    return (fa > fb) - (fa < fb);
}

void labels_replace(cJSON *lines, const char *labeler, cJSON *mine) {
    for (int i = cJSON_GetArraySize(lines) - 1; i >= 0; i--) {
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(lines, i), "labeler");
        if (cJSON_IsString(lb) && !strcmp(lb->valuestring, labeler)) cJSON_DeleteItemFromArray(lines, i);
    }
    const int n = cJSON_GetArraySize(mine);
    cJSON **v = musae_xmalloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    for (int i = n - 1; i >= 0; i--) v[i] = cJSON_DetachItemFromArray(mine, i);
    qsort(v, (size_t)n, sizeof *v, by_feature);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(lines, v[i]);
    free(v);
    cJSON_Delete(mine);
}

void labels_put_num(cJSON *o, const char *key, double v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}
