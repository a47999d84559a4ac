/* The network input of one `edgetrain infer` argument, shared by the local
 * and the --agent variants. */
#ifndef ET_INFER_INPUT_H
#define ET_INFER_INPUT_H 1

#include <stdbool.h>
#include <stdint.h>

struct dataset;

/* True if 'arg' names a dataset record ("train:N" or "test:N"). */
bool infer_arg_is_record(const char *arg);

/* Fills 'x' (input x input floats, normalised with 'mean' and 'std') from
 * 'arg': a record of 'ds' (which must then be open) or a grey image file,
 * auto-inverted if 'invert'. '*label' gets a record's class name, else
 * NULL. On error prints "edgetrain infer: ..." naming the argument and
 * returns 1; returns 0 on success. */
int infer_input_load(const char *arg, const struct dataset *ds,
                     uint32_t input, float mean, float std, bool invert,
                     float *x, const char **label);

#endif
