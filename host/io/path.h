/* Checks on the paths users name, made before anything is opened, read or written:
 *   musae_path_regular   the path is a regular file (a FIFO, device or socket would block a reader, or be read once)
 *   musae_path_same_file two names of one file (device and inode), so an output never replaces an input
 *   musae_file_kind      what a file that is not the expected format looks like, from its first bytes
 *   musae_read_file      a whole (JSON or text) file as a string */
#ifndef MUSAE_PATH_H
#define MUSAE_PATH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when `path` exists and is a regular file (links followed); else -1 with "PATH: cannot open: <errno text>",
 * "PATH: is a directory, expected FILE" or "PATH: is a FIFO (named pipe), not a regular file" in err. `what`
 * names the expected content ("a .safetensors file"). */
int musae_path_regular(const char *path, const char *what, char *err, size_t errlen);

/* 1 when a and b both exist and are the same file (same device and inode, whatever the spelling or links). */
int musae_path_same_file(const char *a, const char *b);

/* A phrase for what the first n bytes of a file look like ("a WAV audio file", "an HDF5 file", "a text file",
 * ...), or NULL when nothing is recognised. For error messages of readers that met something else. */
const char *musae_file_kind(const uint8_t *head, size_t n);

/* The most musae_read_file reads: the JSON and text files it serves are far smaller (a tokenizer's vocabulary is a
 * few MB), so a larger one is a wrong or hostile file, refused before any allocation. */
#define MUSAE_READ_FILE_MAX ((long)64 << 20)

/* The whole of path as a NUL-terminated string (malloc'd; free() it), its length in *n when n is not NULL. NULL
 * when it cannot be opened or read or is over MUSAE_READ_FILE_MAX bytes (EFBIG): errno is then the reason and,
 * when err is not NULL, err holds "PATH: cannot read: <errno text>". */
char *musae_read_file(const char *path, size_t *n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_PATH_H */
