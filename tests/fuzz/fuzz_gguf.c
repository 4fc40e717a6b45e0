/* libFuzzer target for the GGUF reader (built with clang, see tests/CMakeLists.txt). */
#include "gguf_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    walk_gguf_image(data, size, size & 1);
    return 0;
}
