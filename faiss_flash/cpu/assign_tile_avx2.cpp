// The micro-kernel for x86-64 with AVX2 + FMA (compiled with -mavx2 -mfma
// -ffp-contract=fast, so the mainloop's multiply-add is one vfmadd).
#define FAISS_FLASH_ASSIGN_BLOCK assign_block_avx2
#include "assign_tile.inl"
