#include "host/io/json.h"

#include <math.h>
#include <stdlib.h>

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
