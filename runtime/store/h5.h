/* Keras 2's HDF5 files, read and written through libhdf5, so that h5py and
 * Keras read what nnc writes and nnc reads what Keras wrote.
 *
 * Weights (model.save_weights("w.h5"), keras/saving/legacy/hdf5_format.py,
 * save_weights_to_hdf5_group):
 *   /                      attrs layer_names = [b"dense", ...] (every layer, in model order),
 *                                backend = b"tensorflow", keras_version = b"2.x"
 *   /dense                 attr weight_names = [b"dense/kernel:0", b"dense/bias:0"]
 *   /dense/dense/kernel:0  the dataset (the weight's name, '/' making groups)
 *   /flatten               weight_names = [] (a layer without weights keeps its group)
 *   /top_level_model_weights  weight_names = []
 * A whole model (model.save("m.h5"), save_model_to_hdf5) holds the same
 * under /model_weights, the JSON attrs model_config and training_config at
 * the root, and /optimizer_weights with weight_names [b"Adam/iter:0",
 * b"Adam/dense/kernel/m:0", ...]: the step count, then every slot.
 *
 * Reading takes what h5py and Keras produce: fixed or variable-length name
 * strings, names split into chunked attrs (layer_names0, layer_names1, ...)
 * as Keras does past HDF5's 64 KiB header limit, and any float dataset type
 * (converted to float32). A file is read whole and checked before anything
 * is handed back, so a bad file loads nothing. */
#ifndef NNC_H5_H
#define NNC_H5_H

#include <stddef.h>
#include <stdint.h>

#include "ir/status.h"
#include "runtime/store/safetensors.h"

/* A layer's group: its weights in order, named "dense/kernel:0". */
typedef struct nnc_h5_layer {
  const char *name;
  int count;
  nnc_named_tensor *weights;
} nnc_h5_layer;

/* A Keras HDF5 file's contents. When written, every pointer is the
 * caller's; when read, the reader owns them (nnc_h5_file_free). */
typedef struct nnc_h5_file {
  const char *model_config;    /* JSON; set for a whole model, NULL for weights only */
  const char *training_config; /* JSON, or NULL */
  nnc_h5_layer *layers;
  int nlayers;
  /* The optimizer's state: the step count under iter_name ("Adam/iter:0"),
   * and each slot ("Adam/dense/kernel/m:0"). iter_name NULL: none saved. */
  const char *iter_name;
  int64_t iterations;
  nnc_named_tensor *slots;
  int nslots;
} nnc_h5_file;

/* Writes f to PATH atomically (ir/atomic_file.h). */
int nnc_h5_save(const char *path, const nnc_h5_file *f, nnc_status *st);

/* Reads a file Keras or nnc wrote. Errors start with `path`. */
int nnc_h5_read(const char *path, nnc_h5_file *f, nnc_status *st);
/* The same from bytes in memory (a whole file's image); `label` names it in
 * errors. */
int nnc_h5_read_buffer(const void *data, size_t size, const char *label, nnc_h5_file *f, nnc_status *st);
void nnc_h5_file_free(nnc_h5_file *f);

/* Keras's load_weights: the file's layers that have weights are matched in
 * order to the model's layers that have weights; counts and every shape must
 * agree. Only when all do are the values copied into `model`'s tensors, so a
 * failure changes nothing. Errors name the file, the layer and both shapes. */
int nnc_h5_assign(const char *path, const nnc_h5_file *f, nnc_h5_layer *model, int nlayers, nnc_status *st);

#endif
