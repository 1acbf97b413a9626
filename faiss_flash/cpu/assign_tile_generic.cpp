// The micro-kernel for any target the compiler supports: the portable
// fallback when the CPU lacks AVX2/FMA.
#define FAISS_FLASH_ASSIGN_BLOCK assign_block_generic
#include "assign_tile.inl"
