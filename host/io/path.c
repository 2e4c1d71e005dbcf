#include "host/io/path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/core/check.h"

static const char *mode_name(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int musae_path_regular(const char *path, const char *what, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISREG(sb.st_mode)) return 0;
    if (S_ISDIR(sb.st_mode)) snprintf(err, errlen, "%s: is a directory, expected %s", path, what);
    else snprintf(err, errlen, "%s: is %s, not a regular file (expected %s)", path, mode_name(sb.st_mode), what);
    return -1;
}

int musae_path_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Printable ASCII, tab/newline/CR, or bytes of multi-byte UTF-8: what a text file's first bytes are made of. */
static int texty(const uint8_t *b, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || (b[i] >= 0x20 && b[i] != 0x7f))) return 0;
    return 1;
}

const char *musae_file_kind(const uint8_t *h, size_t n) {
    if (n == 0) return "an empty file";
    if (n >= 12 && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) return "a WAV audio file";
    if (n >= 12 && !memcmp(h, "RF64", 4)) return "a WAV (RF64) audio file";
    if (n >= 4 && !memcmp(h, "fLaC", 4)) return "a FLAC audio file";
    if (n >= 4 && !memcmp(h, "OggS", 4)) return "an Ogg audio file";
    if (n >= 12 && !memcmp(h, "FORM", 4) && (!memcmp(h + 8, "AIFF", 4) || !memcmp(h + 8, "AIFC", 4)))
        return "an AIFF audio file";
    if (n >= 3 && !memcmp(h, "ID3", 3)) return "an MP3 audio file";
    if (n >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0) return "an MP3 audio file";
    if (n >= 8 && !memcmp(h, "\x89HDF\r\n\x1a\n", 8)) return "an HDF5 file";
    if (n >= 4 && !memcmp(h, "PK\x03\x04", 4)) return "a zip archive (a PyTorch .bin/.pt checkpoint?)";
    if (n >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5) return "a Python pickle (a PyTorch .bin checkpoint?)";
    if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) return "a gzip file";
    const size_t k = n < 256 ? n : 256;
    if (texty(h, k)) return h[0] == '{' || h[0] == '[' ? "a JSON or text file" : "a text file";
    return NULL;
}

char *musae_read_file(const char *path, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    int e = f ? 0 : errno;
    const long size = e ? -1 : fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (!e) e = size < 0 ? errno : size > MUSAE_READ_FILE_MAX ? EFBIG : fseek(f, 0, SEEK_SET) != 0 ? errno : 0;
    char *txt = NULL;
    size_t got = 0;
    if (!e) {
        txt = musae_xmalloc((size_t)size + 1);
        errno = 0;
        got = fread(txt, 1, (size_t)size, f);
        if (ferror(f)) e = errno ? errno : EIO;
    }
    if (f) fclose(f);
    if (e) {
        free(txt);
        if (err) snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    txt[got] = 0;
    if (n) *n = got;
    return txt;
}
