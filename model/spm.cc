#include "model/spm.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "host/core/check.h"

struct musae_spm {
    sentencepiece::SentencePieceProcessor proc;
};

musae_spm *musae_spm_load(const char *path, char *err, size_t errlen) {
    musae_spm *s = nullptr;
    try {
        s = new musae_spm;
        const auto st = s->proc.Load(path);
        if (!st.ok()) {
            std::snprintf(err, errlen, "%s: cannot load the SentencePiece model: %s", path, st.ToString().c_str());
            delete s;
            return nullptr;
        }
        return s;
    } catch (const std::exception &e) {
        std::snprintf(err, errlen, "%s: cannot load the SentencePiece model: %s", path, e.what());
        delete s;
        return nullptr;
    }
}

void musae_spm_free(musae_spm *s) { delete s; }

int musae_spm_piece_size(const musae_spm *s) { return s->proc.GetPieceSize(); }

int musae_spm_piece_to_id(const musae_spm *s, const char *piece) {
    const int id = s->proc.PieceToId(piece);
    // PieceToId answers unk for an unknown piece; only the unk piece itself may map there.
    if (id == s->proc.unk_id() && s->proc.IdToPiece(id) != piece) return -1;
    return id;
}

int musae_spm_pad_id(const musae_spm *s) { return s->proc.pad_id(); }
int musae_spm_eos_id(const musae_spm *s) { return s->proc.eos_id(); }
int musae_spm_unk_id(const musae_spm *s) { return s->proc.unk_id(); }

int musae_spm_encode(const musae_spm *s, const char *text, size_t len, int64_t **ids, int64_t *n, int64_t *cap,
                     char *err, size_t errlen) {
    std::vector<int> out;
    try {
        const auto st = s->proc.Encode(std::string_view(text, len), &out);
        if (!st.ok()) {
            std::snprintf(err, errlen, "sentencepiece: %s", st.ToString().c_str());
            return -1;
        }
    } catch (const std::exception &e) {
        std::snprintf(err, errlen, "sentencepiece: %s", e.what());
        return -1;
    }
    if (*n + (int64_t)out.size() > *cap) {
        *cap = (*n + (int64_t)out.size()) * 2 + 16;
        *ids = static_cast<int64_t *>(musae_xrealloc(*ids, (size_t)*cap * sizeof(int64_t)));
    }
    for (const int id : out) (*ids)[(*n)++] = id;
    return 0;
}
