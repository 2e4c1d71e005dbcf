# EnCodec and audio I/O (issue 5): HF goldens on the tiny codec, the real-size hash-weight codec, the conv /
# LSTM / ELU ops against plain loops, audio read/write/resample, and the encode/decode verbs.
musae_add_test(test_encodec SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_encodec.c LABELS cpu)
musae_add_test(test_encodec_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_encodec_ops.c LABELS cpu)
musae_add_test(test_encodec32k SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_encodec32k.c LABELS cpu)
musae_add_test(test_audio SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_audio.c LABELS cpu)
musae_add_test(test_encodec_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_encodec_cli.c LABELS cpu)
