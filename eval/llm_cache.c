/* The request/answer cache of the LLM client (eval/llm_client.h): one file per answered request. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/llm_client.h"
#include "host/core/sha256.h"
#include "host/io/path.h"

void llm_cache_key(const char *url, const char *body, char hex[65]) {
    musae_sha256 s;
    musae_sha256_init(&s);
    musae_sha256_update(&s, url, strlen(url) + 1); /* the NUL keeps url|body unambiguous */
    musae_sha256_update(&s, body, strlen(body));
    musae_sha256_hex(&s, hex);
}

char *llm_cache_get(const char *dir, const char *key) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.json", dir, key);
    size_t n = 0;
    char *buf = musae_read_file(path, &n, NULL, 0);
    if (buf && n == 0) free(buf), buf = NULL; /* an empty entry is no entry */
    return buf;
}

int llm_cache_put(const char *dir, const char *key, const char *response, char *err, size_t errlen) {
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create the cache folder: %s", dir, strerror(errno));
        return -1;
    }
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s.json", dir, key);
    snprintf(tmp, sizeof tmp, "%s.partial.%ld", path, (long)getpid());
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    const size_t n = strlen(response);
    size_t done = 0;
    while (done < n) {
        const ssize_t w = write(fd, response + done, n - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    const int bad = done != n || fsync(fd) != 0;
    const int e = errno;
    if (close(fd) || bad || rename(tmp, path)) {
        snprintf(err, errlen, "%s: cannot write the cached answer: %s", path, strerror(bad ? e : errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
