#include "host/io/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/path.h"

void musae_json_print_line(FILE *f, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    MUSAE_ASSERT(s, "cJSON_PrintUnformatted: out of memory");
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(j);
}

cJSON *musae_json_add_rounded(cJSON *o, const char *key, double v, int decimals) {
    if (isfinite(v)) {
        char b[64];
        snprintf(b, sizeof b, "%.*f", decimals, v);
        v = strtod(b, NULL);
    }
    return cJSON_AddNumberToObject(o, key, v);
}

int musae_json_read_file(const char *path, cJSON **root, char *err, size_t errlen) {
    *root = NULL;
    char *txt = musae_read_file(path, NULL, err, errlen);
    if (!txt) return -1;
    *root = cJSON_Parse(txt);
    free(txt);
    return 0;
}

int musae_json_read_object(const char *path, int missing_ok, cJSON **root, char *err, size_t errlen) {
    cJSON *j;
    *root = NULL;
    if (musae_json_read_file(path, &j, err, errlen)) return missing_ok && errno == ENOENT ? 0 : -1;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(err, errlen, "%s: not a JSON object", path);
        return -1;
    }
    *root = j;
    return 0;
}

int musae_jsonl_each(const char *path, int missing_ok, musae_jsonl_fn fn, void *ctx, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT && missing_ok) return 0;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long no = 0;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        no++;
        if (strspn(line, " \t\r\n") == (size_t)n) continue; /* a blank line */
        cJSON *j = cJSON_Parse(line);
        if (!cJSON_IsObject(j)) {
            snprintf(err, errlen, "%s: line %ld: not a JSON object", path, no);
            cJSON_Delete(j);
            rc = -1;
        } else {
            rc = fn(ctx, j, no, err, errlen);
        }
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}
