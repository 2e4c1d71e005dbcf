# The committed fixtures against tests/fixtures/MANIFEST.json (sha256 and byte count of every file, no file
# unlisted), so a golden cannot change silently. SHA-256 is in the test itself; no Python.
musae_add_test(test_fixtures_manifest SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fixtures_manifest.c LABELS cpu)
