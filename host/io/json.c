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
