#include "host/io/json.h"

#include <stdlib.h>

#include "host/core/check.h"

void musae_json_print_line(FILE *f, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    MUSAE_ASSERT(s, "cJSON_PrintUnformatted: out of memory");
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(j);
}
