/* PyTorch checkpoints (torch.save's zip format, e.g. an HF pytorch_model.bin) read as a musae_st, so every
 * loader written for safetensors reads them too.
 *
 * The zip: stored (uncompressed) entries, found through the central directory (zip64 records honoured):
 * "<archive>/data.pkl" is the pickled state_dict, "<archive>/data/<key>" the raw little-endian storages.
 * The pickle is never executed: a small interpreter understands only the opcodes a state_dict uses (dicts,
 * lists, tuples, strings, ints, floats, bools, None, memo, marks, BINPERSID, REDUCE, BUILD) and only these
 * globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and
 * the typed storages torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage. Any other
 * global (os.system, builtins.eval, ...) or opcode is refused with its name and byte offset, before anything
 * could be called. Each tensor must be row-major contiguous and lie inside its storage entry.
 *
 * Every rejection is one message naming the file and what is wrong. */
#ifndef MUSAE_TORCH_ZIP_H
#define MUSAE_TORCH_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "host/io/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Maps path and fills st (tensor names as in the state_dict). 0, or -1 with the reason in err. */
int musae_torch_zip_open(musae_st *st, const char *path, char *err, size_t errlen);
/* The same on an in-memory image (the fuzz target); buf must outlive st. */
int musae_torch_zip_parse(musae_st *st, const char *name, const uint8_t *buf, size_t size, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_TORCH_ZIP_H */
