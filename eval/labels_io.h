/* LABELS.jsonl (docs/LABELS.md, a contract): the one reader and writer of the file every labeler and scorer
 * shares. A file is held as a cJSON array of its line objects, in file order. */
#ifndef MUSAE_LABELS_IO_H
#define MUSAE_LABELS_IO_H

#include <cjson/cJSON.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The lines of path as an array; a missing file is an empty array when missing_ok. NULL with a one-line reason
 * (the file and the line number) in err: unreadable, a line that is not a JSON object, an object without an
 * integer `feature` or a string `labeler`. */
cJSON *labels_read(const char *path, int missing_ok, char *err, size_t errlen);
/* The same reading line by line, for a reader with checks of its own (the dashboard's feature range): fn gets each
 * line object that passed labels_read's checks, with its 1-based line number, and owns it; it returns 0 to go on
 * or -1 (err filled) to stop. A missing file is no lines when missing_ok. 0, or -1 with the reason in err. */
typedef int (*labels_line_fn)(void *ctx, cJSON *line, long line_no, char *err, size_t errlen);
int labels_each(const char *path, int missing_ok, labels_line_fn fn, void *ctx, char *err, size_t errlen);
/* Writes the lines, one unformatted object per line, atomically (path.partial, fsync, rename). 0 or -1 (err). */
int labels_write(const char *path, const cJSON *lines, char *err, size_t errlen);
/* Drops labeler's lines from lines and appends `mine` (an array, consumed) sorted by feature. */
void labels_replace(cJSON *lines, const char *labeler, cJSON *mine);
/* Sets o[key] to v, or to null where v is not finite (numbers in the file are finite); an existing key is
 * replaced. How every labeler and scorer writes a figure. */
void labels_put_num(cJSON *o, const char *key, double v);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LABELS_IO_H */
