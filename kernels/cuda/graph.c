/* CUDA graphs (cuda_graph.h): stream capture, instantiation, launch. */
#include "cuda_graph.h"

#include <stdlib.h>

#include <cuda_runtime_api.h>

struct clv_cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

static clv_status cuda_fail(const char *what, cudaError_t err) {
    (void)cudaGetLastError();
    return clv_fail(CLV_ERR_DEVICE, "CUDA graph: %s failed: %s", what, cudaGetErrorString(err));
}

clv_status clv_cuda_graph_begin(void *stream) {
    cudaError_t err = cudaStreamBeginCapture((cudaStream_t)stream, cudaStreamCaptureModeThreadLocal);
    return err == cudaSuccess ? CLV_OK : cuda_fail("beginning a capture", err);
}

clv_status clv_cuda_graph_end(void *stream, clv_cuda_graph **out) {
    *out = NULL;
    cudaGraph_t graph = NULL;
    cudaError_t err = cudaStreamEndCapture((cudaStream_t)stream, &graph);
    if (err != cudaSuccess || !graph) {
        if (graph) cudaGraphDestroy(graph);
        return cuda_fail("capturing the stream's work", err != cudaSuccess ? err : cudaErrorStreamCaptureInvalidated);
    }
    clv_cuda_graph *g = calloc(1, sizeof *g);
    if (!g) {
        cudaGraphDestroy(graph);
        return clv_fail(CLV_ERR_NOMEM, "CUDA graph: out of memory");
    }
    g->graph = graph;
    err = cudaGraphInstantiateWithFlags(&g->exec, graph, 0);
    if (err != cudaSuccess) {
        clv_cuda_graph_free(g);
        return cuda_fail("instantiating the graph", err);
    }
    *out = g;
    return CLV_OK;
}

clv_status clv_cuda_graph_launch(clv_cuda_graph *g, void *stream) {
    cudaError_t err = cudaGraphLaunch(g->exec, (cudaStream_t)stream);
    return err == cudaSuccess ? CLV_OK : cuda_fail("launching the graph", err);
}

void clv_cuda_graph_free(clv_cuda_graph *g) {
    if (!g) return;
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    free(g);
}
