/* `edgetrain experiment`: runs an experiment matrix on the emulator. The
 * harness is tests/experiments/run.py (Python: it drives topology/emulate);
 * this command finds it relative to the binary (build/bin/edgetrain ->
 * tests/experiments/run.py of the same tree), passes --bin, and execs it
 * with every argument. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

#define PYTHON "/usr/bin/python3"

int
cmd_experiment(int argc, char **argv)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "edgetrain experiment: /proc/self/exe: %s\n",
                strerror(errno));
        return 1;
    }
    exe[n] = '\0';
    char bindir[PATH_MAX], script[PATH_MAX + 64];
    snprintf(bindir, sizeof bindir, "%s", dirname(exe));
    /* bindir is <tree>/<build>/bin. */
    snprintf(script, sizeof script, "%s/../../tests/experiments/run.py",
             bindir);
    if (access(script, R_OK)) {
        fprintf(stderr, "edgetrain experiment: %s: %s (the command runs from"
                " a source tree's build/bin)\n", script, strerror(errno));
        return 1;
    }
    /* python3 run.py --bin BINDIR ARGS... (a later --bin overrides). */
    char **av = calloc((size_t) argc + 5, sizeof *av);
    if (!av) {
        return 1;
    }
    size_t k = 0;
    av[k++] = PYTHON;
    av[k++] = script;
    av[k++] = "--bin";
    av[k++] = bindir;
    for (int i = 1; i < argc; i++) {
        av[k++] = argv[i];
    }
    av[k] = NULL;
    execv(PYTHON, av);
    fprintf(stderr, "edgetrain experiment: %s: %s\n", PYTHON, strerror(errno));
    free(av);
    return 1;
}
