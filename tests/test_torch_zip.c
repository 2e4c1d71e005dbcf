/* PyTorch zip checkpoints (host/io/torch_zip.h): the tiny CLAP's state_dict as torch.save wrote it
 * (tests/fixtures/tiny-clap-bin/pytorch_model.bin, tools/reference/make_clap.py) holds exactly the tensors
 * of tiny-clap/model.safetensors, byte for byte; a CLAP folder with only the .bin embeds exactly as the
 * safetensors one; malformed files are refused with one line naming the file: a truncated zip, a compressed
 * entry, pickles that call a function (os.system, builtins.eval through STACK_GLOBAL), an unknown opcode, a
 * truncated pickle, no state_dict, a tensor past its storage, a missing storage entry. */
#include <unistd.h>

#include "host/io/safetensors.h"
#include "host/io/torch_zip.h"
#include "model/clap.h"
#include "test.h"

static void test_same_as_safetensors(void) {
    char bin[1024], st_path[1024], err[512] = "";
    snprintf(bin, sizeof bin, "%s/tiny-clap-bin/pytorch_model.bin", test_fixtures());
    snprintf(st_path, sizeof st_path, "%s/tiny-clap/model.safetensors", test_fixtures());
    musae_st a, b;
    CHECK(musae_torch_zip_open(&a, bin, err, sizeof err) == 0, "open %s: %s", bin, err);
    CHECK(musae_st_open(&b, st_path, err, sizeof err) == 0, "open %s: %s", st_path, err);
    if (!a.path || !b.path) return;
    CHECK(a.n_tensors == b.n_tensors, "%d tensors in the .bin, %d in the safetensors", a.n_tensors, b.n_tensors);
    int same = 0;
    for (int i = 0; i < b.n_tensors; i++) {
        const musae_st_tensor *t = &b.tensors[i], *u = musae_st_find(&a, t->name);
        const int ok = u && !strcmp(u->dtype, t->dtype) && u->rank == t->rank &&
                       !memcmp(u->shape, t->shape, sizeof t->shape[0] * (size_t)t->rank) && u->nbytes == t->nbytes &&
                       !memcmp(u->data, t->data, t->nbytes);
        if (!ok) fprintf(stderr, "  differs: %s\n", t->name);
        same += ok;
    }
    CHECK(same == b.n_tensors, "%d of %d tensors identical", same, b.n_tensors);
    printf("pytorch_model.bin: %d/%d tensors identical to model.safetensors\n", same, b.n_tensors);
    musae_st_close(&a);
    musae_st_close(&b);
}

/* A CLAP folder with pytorch_model.bin instead of model.safetensors gives the same embeddings. */
static void test_clap_from_bin(const char *tmp) {
    char cmd[4096], dir[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/bin-model", tmp);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cd %s/tiny-clap && cp config.json preprocessor_config.json vocab.json merges.txt "
             "tokenizer.json tokenizer_config.json %s/ && cp %s/tiny-clap-bin/pytorch_model.bin %s/",
             dir, test_fixtures(), dir, test_fixtures(), dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    musae_clap m1, m2;
    snprintf(cmd, sizeof cmd, "%s/tiny-clap", test_fixtures());
    CHECK(musae_clap_open(&m1, cmd, musae_ops_cpu(), err, sizeof err) == 0, "safetensors model: %s", err);
    CHECK(musae_clap_open(&m2, dir, musae_ops_cpu(), err, sizeof err) == 0, "bin model: %s", err);
    if (!m1.ops || !m2.ops) return;
    int64_t ids[MUSAE_CLAP_TEXT_LEN], mask[MUSAE_CLAP_TEXT_LEN];
    CHECK(musae_clap_tokenize(m1.tok, "a calm piano", 12, "t", ids, mask, NULL, err, sizeof err) == 0, "%s", err);
    float e1[64], e2[64];
    musae_clap_text_embed(&m1, ids, mask, 1, e1, NULL);
    musae_clap_text_embed(&m2, ids, mask, 1, e2, NULL);
    CHECK(!memcmp(e1, e2, (size_t)m1.cfg.proj_dim * sizeof *e1), "text embeddings differ");
    const int64_t F = m1.fe.frames * m1.fe.n_mels;
    float *feat = calloc((size_t)F, sizeof *feat);
    for (int64_t i = 0; i < F; i++) feat[i] = (float)((i * 37) % 101) - 60.0f;
    musae_clap_audio_embed(&m1, feat, 1, e1, NULL);
    musae_clap_audio_embed(&m2, feat, 1, e2, NULL);
    CHECK(!memcmp(e1, e2, (size_t)m1.cfg.proj_dim * sizeof *e1), "audio embeddings differ");
    free(feat);
    musae_clap_close(&m1);
    musae_clap_close(&m2);
}

/* ---- malformed files: a minimal stored zip around a given data.pkl (CRCs left 0: musae does not check them) */
typedef struct {
    const char *name;
    const void *data;
    size_t n;
} entry;

static size_t put(uint8_t *b, size_t o, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) b[o + i] = (uint8_t)(v >> (8 * i));
    return o + (size_t)bytes;
}

/* Writes a zip of the entries to path; method 8 (deflate) on entry `compressed` (-1: none). Returns its size. */
static size_t write_zip(const char *path, const entry *e, int n, int compressed) {
    uint8_t *b = calloc(1, 1 << 16);
    size_t o = 0, offs[8];
    for (int i = 0; i < n; i++) {
        offs[i] = o;
        o = put(b, o, 0x04034b50, 4), o = put(b, o, 20, 2), o = put(b, o, 0, 2), o = put(b, o, i == compressed ? 8 : 0, 2);
        o = put(b, o, 0, 4), o = put(b, o, 0, 4), o = put(b, o, e[i].n, 4), o = put(b, o, e[i].n, 4);
        o = put(b, o, strlen(e[i].name), 2), o = put(b, o, 0, 2);
        memcpy(b + o, e[i].name, strlen(e[i].name)), o += strlen(e[i].name);
        memcpy(b + o, e[i].data, e[i].n), o += e[i].n;
    }
    const size_t cd = o;
    for (int i = 0; i < n; i++) {
        o = put(b, o, 0x02014b50, 4), o = put(b, o, 20, 2), o = put(b, o, 20, 2), o = put(b, o, 0, 2);
        o = put(b, o, i == compressed ? 8 : 0, 2), o = put(b, o, 0, 4), o = put(b, o, 0, 4);
        o = put(b, o, e[i].n, 4), o = put(b, o, e[i].n, 4), o = put(b, o, strlen(e[i].name), 2);
        o = put(b, o, 0, 2), o = put(b, o, 0, 2), o = put(b, o, 0, 2), o = put(b, o, 0, 2), o = put(b, o, 0, 4);
        o = put(b, o, offs[i], 4);
        memcpy(b + o, e[i].name, strlen(e[i].name)), o += strlen(e[i].name);
    }
    const size_t cd_size = o - cd;
    o = put(b, o, 0x06054b50, 4), o = put(b, o, 0, 4), o = put(b, o, (uint64_t)n, 2), o = put(b, o, (uint64_t)n, 2);
    o = put(b, o, cd_size, 4), o = put(b, o, cd, 4), o = put(b, o, 0, 2);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, o, f);
    fclose(f);
    free(b);
    return o;
}

static void refuse_pickle(const char *tmp, const void *pkl, size_t n, const char *msg) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/bad.bin", tmp);
    static const float storage[6] = {1, 2, 3, 4, 5, 6};
    const entry e[2] = {{"archive/data.pkl", pkl, n}, {"archive/data/0", storage, sizeof storage}};
    write_zip(path, e, 2, -1);
    musae_st st;
    CHECK(musae_torch_zip_open(&st, path, err, sizeof err) == -1, "accepted a pickle that should fail with '%s'", msg);
    CHECK(strstr(err, "bad.bin: ") != NULL && strstr(err, msg) != NULL, "'%s' lacks '%s'", err, msg);
}

/* {"w": _rebuild_tensor_v2(storage('0', FloatStorage, numel 6), OFFSET, (2, SIZE1), (SIZE1, 1), False, OrderedDict())} */
/* C hex escapes are greedy ("\x01c" is one byte), so every escape followed by a hex digit ends its string. */
#define TENSOR_PKL(OFFSET, SIZE1)                                                                               \
    "\x80\x02}q\x00X\x01\x00\x00\x00wq\x01" "ctorch._utils\n_rebuild_tensor_v2\nq\x02" "((X\x07\x00\x00\x00" \
    "storageq\x03" "ctorch\nFloatStorage\nq\x04" "X\x01\x00\x00\x00" "0q\x05" "X\x03\x00\x00\x00" "cpuq\x06"        \
    "K\x06tq\x07QK" OFFSET "K\x02K" SIZE1 "\x86q\x08K" SIZE1 "K\x01\x86q\x09\x89" "ccollections\nOrderedDict\nq\x0a" \
    ")Rq\x0btq\x0cRq\x0ds."

static void test_malformed(const char *tmp) {
    char path[1024], err[512] = "";
    /* the minimal good file first, so the refusals below are about what they change */
    const char good[] = TENSOR_PKL("\x00", "\x03");
    static const float storage[6] = {1, 2, 3, 4, 5, 6};
    snprintf(path, sizeof path, "%s/good.bin", tmp);
    entry e[2] = {{"archive/data.pkl", good, sizeof good - 1}, {"archive/data/0", storage, sizeof storage}};
    const size_t size = write_zip(path, e, 2, -1);
    musae_st st;
    CHECK(musae_torch_zip_open(&st, path, err, sizeof err) == 0, "minimal state_dict: %s", err);
    if (st.path) {
        const int64_t shape[2] = {2, 3};
        float *w = musae_st_load(&st, "w", MUSAE_F32, 2, shape);
        CHECK(w && w[0] == 1 && w[5] == 6, "tensor w read back");
        free(w);
        musae_st_close(&st);
    }
    /* truncated: the file cut in half, and cut before its last byte */
    char cmd[2300];
    snprintf(cmd, sizeof cmd, "head -c %zu %s > %s/cut.bin && head -c %zu %s > %s/cut1.bin", size / 2, path, tmp,
             size - 1, path, tmp);
    CHECK(system(cmd) == 0, "truncate");
    snprintf(path, sizeof path, "%s/cut.bin", tmp);
    CHECK(musae_torch_zip_open(&st, path, err, sizeof err) == -1, "truncated zip accepted");
    CHECK_STR_CONTAINS(err, "cut.bin: not a zip file (no end-of-central-directory record; truncated?)");
    snprintf(path, sizeof path, "%s/cut1.bin", tmp);
    CHECK(musae_torch_zip_open(&st, path, err, sizeof err) == -1, "zip cut by one byte accepted");
    CHECK_STR_CONTAINS(err, "cut1.bin: ");
    /* a deflated entry */
    snprintf(path, sizeof path, "%s/deflate.bin", tmp);
    write_zip(path, e, 2, 1);
    CHECK(musae_torch_zip_open(&st, path, err, sizeof err) == -1, "compressed entry accepted");
    CHECK_STR_CONTAINS(err, "entry 'archive/data/0' is compressed");

    const char os_system[] = "\x80\x02\x63os\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.";
    refuse_pickle(tmp, os_system, sizeof os_system - 1, "data.pkl refers to 'os.system' at byte 2: only a state_dict");
    const char stack_global[] = "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08" "builtins" "\x8c\x04" "eval"
                                "\x93.";
    refuse_pickle(tmp, stack_global, sizeof stack_global - 1, "pickle opcode 0x93 at byte 27 is not one a state_dict uses");
    const char reduce_storage[] = "\x80\x02\x63torch\nFloatStorage\n)R.";
    refuse_pickle(tmp, reduce_storage, sizeof reduce_storage - 1, "'torch.FloatStorage' cannot be called");
    const char bad_op[] = "\x80\x02}S'x'\n.";
    refuse_pickle(tmp, bad_op, sizeof bad_op - 1, "pickle opcode 0x53 at byte 3");
    const char cut[] = "\x80\x02}q\x00X\x05\x00\x00\x00" "ab";
    refuse_pickle(tmp, cut, sizeof cut - 1, "data.pkl: truncated");
    const char not_dict[] = "\x80\x02K\x05.";
    refuse_pickle(tmp, not_dict, sizeof not_dict - 1, "data.pkl holds no state_dict");
    const char past[] = TENSOR_PKL("\x01", "\x03"); /* 6 elements from offset 1 of 6 */
    refuse_pickle(tmp, past, sizeof past - 1, "tensor 'w' (6 elements at 1) does not fit its storage");
    const char no_stop[] = "\x80\x02}";
    refuse_pickle(tmp, no_stop, sizeof no_stop - 1, "no STOP");
    /* a storage entry that is not there */
    snprintf(path, sizeof path, "%s/nostorage.bin", tmp);
    entry e1[1] = {{"archive/data.pkl", good, sizeof good - 1}};
    write_zip(path, e1, 1, -1);
    CHECK(musae_torch_zip_open(&st, path, err, sizeof err) == -1, "missing storage accepted");
    CHECK_STR_CONTAINS(err, "storage entry 'archive/data/0' is missing");
}

int main(void) {
    char tmp[512], cmd[600];
    snprintf(tmp, sizeof tmp, "%s/torch_zip_%d", test_tmp(), (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp);
    CHECK(system(cmd) == 0, "mkdir");
    test_same_as_safetensors();
    test_clap_from_bin(tmp);
    test_malformed(tmp);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
