# musae dashboard (issue 17): the generator in C (escaping, missing audio, unicode names, the index data) and
# the site in headless chromium (tests/dashboard_browser.sh; chromium from scripts/install-deps.sh).
musae_add_test(test_dashboard SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dashboard.c LABELS cpu)
set_property(TEST test_dashboard APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
musae_add_test(dashboard_browser COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/dashboard_browser.sh LABELS cpu TIMEOUT 600)
set_property(TEST dashboard_browser APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;OPENBLAS_NUM_THREADS=1")
