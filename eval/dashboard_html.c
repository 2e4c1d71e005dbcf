/* The dashboard's page buffer and escaping: everything that reaches HTML, a URL or a script goes through here
 * (labels are LLM output and clip names are file names: both hostile). dashboard.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dashboard.h"
#include "host/core/check.h"

static void db_reserve(dash_buf *b, size_t more) {
    if (b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1) cap *= 2;
    b->p = musae_xrealloc(b->p, cap);
    b->cap = cap;
}

void db_free(dash_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void db_putn(dash_buf *b, const char *s, size_t n) {
    db_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void db_put(dash_buf *b, const char *s) { db_putn(b, s, strlen(s)); }

void db_printf(dash_buf *b, const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    db_reserve(b, (size_t)n);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, aq);
    va_end(aq);
    b->n += (size_t)n;
}

void db_html(dash_buf *b, const char *s) {
    if (!s) return;
    for (; *s; s++) {
        switch (*s) {
        case '&': db_put(b, "&amp;"); break;
        case '<': db_put(b, "&lt;"); break;
        case '>': db_put(b, "&gt;"); break;
        case '"': db_put(b, "&quot;"); break;
        case '\'': db_put(b, "&#39;"); break;
        default: db_putn(b, s, 1);
        }
    }
}

void db_url(dash_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if ((*u >= 'A' && *u <= 'Z') || (*u >= 'a' && *u <= 'z') || (*u >= '0' && *u <= '9') || strchr("-._~/", *u)) {
            db_putn(b, (const char *)u, 1);
        } else {
            char e[3] = {'%', hex[*u >> 4], hex[*u & 15]};
            db_putn(b, e, 3);
        }
    }
}

void db_js_string(dash_buf *b, const char *s) {
    db_put(b, "\"");
    for (const unsigned char *u = (const unsigned char *)(s ? s : ""); *u; u++) {
        if (*u == '"' || *u == '\\') {
            char e[2] = {'\\', (char)*u};
            db_putn(b, e, 2);
        } else if (*u < 0x20 || *u == '<' || *u == '>' || *u == '&') {
            db_printf(b, "\\u%04x", *u);
        } else if (u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)) {
            db_printf(b, "\\u%04x", 0x2000 + (u[2] & 0xFF) - 0x80); /* U+2028/9 end a line in older JS */
            u += 2;
        } else {
            db_putn(b, (const char *)u, 1);
        }
    }
    db_put(b, "\"");
}

void db_js_number(dash_buf *b, double v) {
    if (isfinite(v)) db_printf(b, "%.6g", v);
    else db_put(b, "null");
}

int db_save(const dash_buf *b, const char *path, char *err, size_t errlen) {
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    const int ok = fwrite(b->p ? b->p : "", 1, b->n, f) == b->n;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}
