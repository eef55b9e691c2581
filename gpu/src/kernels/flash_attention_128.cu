// flash_attention.cu's forward kernel for head size 128 (Qwen3-Embedding's attention, 32 query
// and 8 key/value heads): the same tiling, online softmax and layouts with rows of 128 values.
#define HD 128
#include "flash_attention.cu"
