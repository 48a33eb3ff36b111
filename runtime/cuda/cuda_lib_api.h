/* The cuBLAS and cuDNN entry points library steps use, with the libraries'
 * exact signatures (from cublas_api.h, cudnn_ops.h, cudnn_cnn.h and
 * cudnn_graph.h, declared here: no CUDA header is included). One table is
 * filled from the real libraries by dlsym (runtime/cuda/cuda_lib.c), another by
 * the host emulation (runtime/cuda/cuda_lib_emu.c), so the same lowering code
 * drives both. Enums are passed as int, as C passes them. */
#ifndef NNC_RUNTIME_CUDA_LIB_API_H
#define NNC_RUNTIME_CUDA_LIB_API_H

#include <stddef.h>

typedef int cublas_status; /* cublasStatus_t: CUBLAS_STATUS_SUCCESS = 0 */
typedef int cudnn_status;  /* cudnnStatus_t: CUDNN_STATUS_SUCCESS = 0 */
typedef struct cublas_context *cublas_handle;
typedef struct cudnn_context *cudnn_handle;
typedef struct cudnn_tensor_struct *cudnn_tensor_desc;
typedef struct cudnn_filter_struct *cudnn_filter_desc;
typedef struct cudnn_conv_struct *cudnn_conv_desc;
typedef struct lib_stream *cuda_stream; /* cudaStream_t, the driver's CUstream */

enum {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUDNN_DATA_FLOAT = 0,
  CUDNN_TENSOR_NHWC = 1, /* for filters: KRSC */
  CUDNN_CROSS_CORRELATION = 1,
  CUBLAS_DEFAULT_MATH = 0,        /* cublasMath_t: float routines multiply in float */
  CUBLAS_TF32_TENSOR_OP_MATH = 3, /* float routines may round their inputs to TF32 for tensor cores */
  CUDNN_DEFAULT_MATH = 0,         /* cudnnMathType_t */
  CUDNN_TENSOR_OP_MATH = 1, /* tensor cores allowed: for float data on sm_80 and newer, TF32 */
  CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2, /* ... and converting float data down to half for them */
  CUDNN_FMA_MATH = 3, /* plain float FMA, no TF32 tensor cores */
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
  CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
  CUDNN_NON_DETERMINISTIC = 0,
  CUDNN_DETERMINISTIC = 1,
  CUDNN_STATUS_BAD_PARAM = 2000,
  CUDNN_STATUS_BAD_PARAM_NULL_POINTER = 2002,
  CUDNN_STATUS_NOT_SUPPORTED = 3000,
  CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED = 4003,
};

/* cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t: one layout for all three. */
typedef struct cudnn_algo_perf {
  int algo;
  cudnn_status status;
  float time;
  size_t memory;
  int determinism; /* CUDNN_DETERMINISTIC or not */
  int math_type;
  int reserved[3];
} cudnn_algo_perf;

typedef struct nnc_cuda_lib_api {
  /* cuBLAS */
  cublas_status (*cublasCreate_v2)(cublas_handle *handle);
  cublas_status (*cublasDestroy_v2)(cublas_handle handle);
  cublas_status (*cublasSetStream_v2)(cublas_handle handle, cuda_stream stream);
  cublas_status (*cublasSetMathMode)(cublas_handle handle, int mode);
  cublas_status (*cublasSetWorkspace_v2)(cublas_handle handle, void *workspace, size_t bytes);
  const char *(*cublasGetStatusString)(cublas_status status);
  cublas_status (*cublasSgemm_v2)(cublas_handle handle, int transa, int transb, int m, int n, int k, const float *alpha,
                                  const float *A, int lda, const float *B, int ldb, const float *beta, float *C,
                                  int ldc);
  cublas_status (*cublasSgeam)(cublas_handle handle, int transa, int transb, int m, int n, const float *alpha,
                               const float *A, int lda, const float *beta, const float *B, int ldb, float *C, int ldc);
  /* cuDNN */
  cudnn_status (*cudnnCreate)(cudnn_handle *handle);
  cudnn_status (*cudnnDestroy)(cudnn_handle handle);
  cudnn_status (*cudnnSetStream)(cudnn_handle handle, cuda_stream stream);
  const char *(*cudnnGetErrorString)(cudnn_status status);
  cudnn_status (*cudnnCreateTensorDescriptor)(cudnn_tensor_desc *desc);
  cudnn_status (*cudnnSetTensor4dDescriptor)(cudnn_tensor_desc desc, int format, int data_type, int n, int c, int h,
                                             int w);
  cudnn_status (*cudnnDestroyTensorDescriptor)(cudnn_tensor_desc desc);
  cudnn_status (*cudnnCreateFilterDescriptor)(cudnn_filter_desc *desc);
  cudnn_status (*cudnnSetFilter4dDescriptor)(cudnn_filter_desc desc, int data_type, int format, int k, int c, int h,
                                             int w);
  cudnn_status (*cudnnDestroyFilterDescriptor)(cudnn_filter_desc desc);
  cudnn_status (*cudnnCreateConvolutionDescriptor)(cudnn_conv_desc *desc);
  cudnn_status (*cudnnSetConvolution2dDescriptor)(cudnn_conv_desc desc, int pad_h, int pad_w, int u, int v,
                                                  int dilation_h, int dilation_w, int mode, int compute_type);
  cudnn_status (*cudnnSetConvolutionMathType)(cudnn_conv_desc desc, int math_type);
  cudnn_status (*cudnnDestroyConvolutionDescriptor)(cudnn_conv_desc desc);
  cudnn_status (*cudnnGetConvolutionForwardWorkspaceSize)(cudnn_handle handle, const cudnn_tensor_desc x,
                                                          const cudnn_filter_desc w, const cudnn_conv_desc conv,
                                                          const cudnn_tensor_desc y, int algo, size_t *bytes);
  cudnn_status (*cudnnConvolutionForward)(cudnn_handle handle, const void *alpha, const cudnn_tensor_desc x_desc,
                                          const void *x, const cudnn_filter_desc w_desc, const void *w,
                                          const cudnn_conv_desc conv, int algo, void *workspace, size_t bytes,
                                          const void *beta, const cudnn_tensor_desc y_desc, void *y);
  cudnn_status (*cudnnGetConvolutionBackwardDataWorkspaceSize)(cudnn_handle handle, const cudnn_filter_desc w,
                                                               const cudnn_tensor_desc dy, const cudnn_conv_desc conv,
                                                               const cudnn_tensor_desc dx, int algo, size_t *bytes);
  cudnn_status (*cudnnConvolutionBackwardData)(cudnn_handle handle, const void *alpha, const cudnn_filter_desc w_desc,
                                               const void *w, const cudnn_tensor_desc dy_desc, const void *dy,
                                               const cudnn_conv_desc conv, int algo, void *workspace, size_t bytes,
                                               const void *beta, const cudnn_tensor_desc dx_desc, void *dx);
  cudnn_status (*cudnnGetConvolutionBackwardFilterWorkspaceSize)(cudnn_handle handle, const cudnn_tensor_desc x,
                                                                 const cudnn_tensor_desc dy, const cudnn_conv_desc conv,
                                                                 const cudnn_filter_desc dw, int algo, size_t *bytes);
  cudnn_status (*cudnnConvolutionBackwardFilter)(cudnn_handle handle, const void *alpha, const cudnn_tensor_desc x_desc,
                                                 const void *x, const cudnn_tensor_desc dy_desc, const void *dy,
                                                 const cudnn_conv_desc conv, int algo, void *workspace, size_t bytes,
                                                 const void *beta, const cudnn_filter_desc dw_desc, void *dw);
  /* cuDNN's heuristics: candidate algorithms, best first */
  cudnn_status (*cudnnGetConvolutionForwardAlgorithm_v7)(cudnn_handle handle, const cudnn_tensor_desc x,
                                                         const cudnn_filter_desc w, const cudnn_conv_desc conv,
                                                         const cudnn_tensor_desc y, int requested, int *returned,
                                                         cudnn_algo_perf *perf);
  cudnn_status (*cudnnGetConvolutionBackwardDataAlgorithm_v7)(cudnn_handle handle, const cudnn_filter_desc w,
                                                              const cudnn_tensor_desc dy, const cudnn_conv_desc conv,
                                                              const cudnn_tensor_desc dx, int requested, int *returned,
                                                              cudnn_algo_perf *perf);
  cudnn_status (*cudnnGetConvolutionBackwardFilterAlgorithm_v7)(cudnn_handle handle, const cudnn_tensor_desc x,
                                                                const cudnn_tensor_desc dy, const cudnn_conv_desc conv,
                                                                const cudnn_filter_desc dw, int requested,
                                                                int *returned, cudnn_algo_perf *perf);
} nnc_cuda_lib_api;

/* cuda-emu's stream for the emulated libraries' work (runtime/cuda/cuda_emu.c),
 * as a real library puts its kernels on its handle's stream: fn(args) runs
 * now, or, while stream s captures, is recorded with a copy of args' bytes
 * and runs at each replay. s NULL: no stream, run now. Returns fn's
 * status, 0 when recorded, -1 when recording runs out of memory. */
typedef int nnc_emu_work(const void *args);
int nnc_cuda_emu_stream_work(cuda_stream s, nnc_emu_work *fn, const void *args, size_t bytes);

/* The host emulation of every entry point (runtime/cuda/cuda_lib_emu.c). */
extern const nnc_cuda_lib_api nnc_cuda_lib_emulated;
/* The table cuda-emu's library steps call: the emulation, or, in tests, a
 * copy of it with failures put in. */
extern const nnc_cuda_lib_api *nnc_cuda_lib_emulation;

#endif
