#include "host/io/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"

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
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *txt = musae_xmalloc((size_t)(size > 0 ? size : 0) + 1);
    const size_t got = fread(txt, 1, (size_t)(size > 0 ? size : 0), f);
    fclose(f);
    txt[got] = 0;
    *root = cJSON_Parse(txt);
    free(txt);
    return 0;
}
