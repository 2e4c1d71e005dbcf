# CLAP: RoBERTa tokenizer (vs HF on 230 strings). Goldens: tools/reference/make_clap.py.
musae_add_test(test_clap_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_clap_tokenizer.c LABELS cpu)
# Audio front end (vs HF ClapFeatureExtractor on the tiny config and the real 48 kHz config).
musae_add_test(test_clap_fe SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_clap_fe.c LABELS cpu)
# Text and audio embeddings and logits (vs HF ClapModel on the tiny model), config refusals.
musae_add_test(test_clap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_clap.c LABELS cpu)
# musae clap end to end (vs the same goldens), order of rows, folders, resampling, refusals.
musae_add_test(test_clap_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_clap_cli.c LABELS cpu)
add_dependencies(test_clap_cli musae)
# PyTorch zip checkpoints (pytorch_model.bin): same tensors as the safetensors copy, same embeddings, refusals.
musae_add_test(test_torch_zip SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_torch_zip.c LABELS cpu)
# The CLAP labeler and CLAP scores through their entry functions (host/cli/clap_main.h): a store
# cut from WAV sources, analyze, the tiny CLAP; every tag score, label and score recomputed from `musae clap`'s
# embeddings of the same clips; the cache; the built-in MTG-Jamendo lists; refusals.
musae_add_test(test_clap_label SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_clap_label.c ${CMAKE_SOURCE_DIR}/host/cli/cli.c
               ${CMAKE_SOURCE_DIR}/host/cli/clap_main.c
               LABELS cpu)
add_dependencies(test_clap_label musae)
set_property(TEST test_clap_label APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
