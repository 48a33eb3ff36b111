/* The JSON header of a safetensors file (runtime/store/safetensors_header.c). */
#ifndef NNC_SAFETENSORS_HEADER_H
#define NNC_SAFETENSORS_HEADER_H

#include "runtime/store/safetensors.h"

/* Bytes per element of a safetensors dtype, or 0 for a name it does not define. */
int nnc_safetensors_dtype_size(const char *name);

/* Parses the header text (len bytes, at file offset base, for messages)
 * into idx's entries and format; the layout is checked elsewhere. */
int nnc_safetensors_parse_header(const char *path, const unsigned char *text, size_t len, size_t base,
                                 nnc_safetensors_index *idx, nnc_status *st);

#endif
