/* Minimal C test harness: CHECK(cond) records a failure with its line;
   TEST(name) { ... } functions are run by RUN(name); END() prints the
   closing "c-tests: N passed, M failed" line and returns the exit code. */
#ifndef SLAYER_CTEST_H
#define SLAYER_CTEST_H
#include <stdio.h>

static int ct_passed, ct_failed, ct_cur_failed;
static const char *ct_name;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  %s: check failed at line %d: %s\n", ct_name, __LINE__, #cond); \
            ct_cur_failed = 1;                                                        \
        }                                                                             \
    } while (0)

#define TEST(name) static void name(void)
#define RUN(name)                                                                     \
    do {                                                                              \
        ct_name = #name;                                                              \
        ct_cur_failed = 0;                                                            \
        name();                                                                       \
        if (ct_cur_failed) { ct_failed++; printf("FAIL %s\n", #name); }              \
        else ct_passed++;                                                             \
    } while (0)
#define END()                                                                         \
    (printf("c-tests: %d passed, %d failed\n", ct_passed, ct_failed), ct_failed ? 1 : 0)
#endif
