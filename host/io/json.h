/* JSON output: every JSON line or file musae prints goes through cJSON, so strings (paths) are escaped and a
 * NaN or Inf number prints as null (cJSON's rule), never as a bare nan that no parser takes. */
#ifndef MUSAE_JSON_H
#define MUSAE_JSON_H

#include <cjson/cJSON.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Prints j on one line (no spaces) followed by '\n', then deletes j. */
void musae_json_print_line(FILE *f, cJSON *j);

/* Adds key: v rounded to `decimals` digits after the point (for figures people read, as printf's %.Nf did); NaN
 * and Inf stay themselves and print as null. Returns the item. */
cJSON *musae_json_add_rounded(cJSON *o, const char *key, double v, int decimals);

/* Reads and parses the JSON file at path: -1 with "<path>: cannot read: <reason>" in err when it cannot be read;
 * else 0 with *root = the parsed document, or NULL when the text is not JSON (the caller names what it expected). */
int musae_json_read_file(const char *path, cJSON **root, char *err, size_t errlen);
/* The same for a file that must hold one JSON object: -1 with "<path>: not a JSON object" (and *root NULL) when it
 * holds anything else. A missing file is 0 with *root = NULL when missing_ok. */
int musae_json_read_object(const char *path, int missing_ok, cJSON **root, char *err, size_t errlen);

/* JSON Lines: fn gets every non-blank line of path parsed as a JSON object, with its 1-based line number, and owns
 * it; it returns 0 to go on, or -1 (err filled) to stop. A line that is not an object stops the reading with
 * "<path>: line N: not a JSON object". A missing file is no lines when missing_ok. 0, or -1 with the reason in err. */
typedef int (*musae_jsonl_fn)(void *ctx, cJSON *obj, long line_no, char *err, size_t errlen);
int musae_jsonl_each(const char *path, int missing_ok, musae_jsonl_fn fn, void *ctx, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_JSON_H */
