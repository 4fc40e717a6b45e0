/* A CUDA graph of work captured from a stream, replayed with one launch:
 * decode runs the same few hundred kernels for every token, and launching
 * them one by one costs more host and GPU time than most of them take
 * (runtime/ops_cuda.c captures one token's forward pass and replays it). */
#ifndef CLV_CUDA_GRAPH_H
#define CLV_CUDA_GRAPH_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_cuda_graph clv_cuda_graph;

/* Starts capturing what is queued on `stream` (a cudaStream_t) from this
 * thread: nothing runs until the graph is launched. */
clv_status clv_cuda_graph_begin(void *stream);

/* Ends the capture and makes the graph launchable. CLV_ERR_DEVICE (capture
 * ended, nothing kept) when something queued could not be captured or an
 * instantiation fails. */
clv_status clv_cuda_graph_end(void *stream, clv_cuda_graph **out);

/* Queues one run of the graph on `stream`. */
clv_status clv_cuda_graph_launch(clv_cuda_graph *g, void *stream);

void clv_cuda_graph_free(clv_cuda_graph *g); /* accepts NULL */

#ifdef __cplusplus
}
#endif

#endif
