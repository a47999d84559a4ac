/* Replays files through a fuzz target's LLVMFuzzerTestOneInput without the
 * libFuzzer runtime, so `make test` (and `make test SANITIZE=1`) checks the
 * committed corpora and crash reproducers with the ordinary compiler.
 * Usage: fuzz_TARGET FILE...   Exits non-zero if a file cannot be read; a
 * crash or sanitizer report fails the run by itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

int
main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        uint8_t *buf = malloc(n ? (size_t) n : 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
            fprintf(stderr, "%s: read error\n", argv[i]);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t) n);
        free(buf);
    }
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
