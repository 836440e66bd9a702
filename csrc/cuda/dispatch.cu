// csrc/cuda/dispatch.cu: vptq::gemm_cuda and friends (vptq/cuda.h): argument checks, the
// workspace plan, and THE dispatch table that says which configuration runs which kernel.
//
// Dispatch (one table, kGemvTable below, plus the rules in select_gemv() and plan()):
//   M == 0                           nothing to do
//   M <= VPTQ_GEMV_MAX_M (8)         decode, MB = smallest of {1,2,4,8} >= M:
//     mma kernel (gemv_mma.cuh)      first choice for kMmaMinRows <= M <= 8 (one kernel for all M;
//                                    P = 1 or 2 row pairs per warp step, two table entries,
//                                    P and the split-K S from mma_geometry's cost model):
//                                    CUDA (not HIP) on sm_80+, fp16 /
//                                    bf16, (v, index_bits, res_index_bits) in
//                                    VPTQ_GEMV_MMA_LAYOUTS (gemv_fast_table.h), no outliers,
//                                    group_size % 32 == 0, codebooks 16-byte aligned, not fp16
//                                    with norm (x' = X * scale could overflow fp16: hi / lo split
//                                    only for bf16), shared memory fits kMmaMaxSmemBytes and
//                                    the device's per-block opt-in limit (smem_per_block_limit).
//                                    Environment VPTQ_GEMV_MMA=0 turns it off (A/B measurements),
//                                    VPTQ_GEMV_MMA_MIN_M=n moves the M threshold. Also for
//                                    VPTQ_GEMV_MMA_WIDE_LAYOUTS (v8-k4096-256, v8-k4096; G = 1,
//                                    P = 1) from M = 2 (kMmaWideMinRows), from M = 1 on layers
//                                    of <= 512 index rows (kMmaWideOneRowMaxIndexRows); for
//                                    v8-k8192-256 and v6-k4096 (same list) from M = 1; its
//                                    sibling gemv_mma_v12.cuh for v12-k4096-4096 (G = 1) from
//                                    M = 1 (kMmaWideV12MinRows).
//     mma gather kernel              first choice for 2 <= M <= 8 (kMmaGatherMinRows; 3 <= M
//     (gemv_mma_gather.cuh)          for 12 / 13-bit codes with a residual; M = 1 the fast
//                                    kernel, measured faster) for VPTQ_GEMV_MMA_GATHER_LAYOUTS
//                                    (v8-k65536, v8-k65536-256, v16-k65536-65536, v8-k4096,
//                                    v8-k4096-256, v8-k8192-256): same conditions as the mma
//                                    kernel, the 256-row residual only with G = 1 (one staged copy).
//                                    Its staged-main variant (main codebook in shared memory)
//                                    replaces it for VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS (v8-k4096,
//                                    v8-k4096-256) with G = 1, from M = 2 (kMmaStageMainMinRows;
//                                    VPTQ_GEMV_MMA_STAGE_MAIN=0 turns it off); both take the mma
//                                    kernel above unless VPTQ_GEMV_MMA_WIDE=0.
//                                    (fast entries exist for MB = 1 and 8: gemv_fast_table.h)
//     fast kernel (gemv_fast.cuh)    when dtype is fp16 / bf16, (v, index_bits, res_index_bits)
//                                    is one of gemv_fast_table.h, there are no outlier columns,
//                                    group_size is a multiple of 32, G * group_size <= 65536,
//                                    the packed indices and codebooks are 16-byte aligned and
//                                    the staged codebooks fit kFastMaxSmemBytes. Tile = RT index
//                                    rows (RT * S warp items of 1024 codes, split-K inside the
//                                    block); k <= 256 codebooks in shared memory (8 copies,
//                                    persistent grid), larger ones through L1 / L2.
//     generic kernel (gemv.cuh)      otherwise: kernel = entry with dtype, MB, and
//                                      VT = v, exact = true   when v is in {2,4,6,8,12,16} and the
//                                                             codebooks are 16-byte aligned
//                                      VT = 4, exact = false  otherwise (any v, ceil(v/4) slices)
//                                    codebooks staged in shared memory when all groups' main +
//                                    residual codebooks fit kSmemCodebookMaxBytes (persistent
//                                    grid), else read through L1 from global memory.
//                                    perm / norm or M > 1: prep_activations first (fp32 x' in
//                                    the workspace, [I][MB]); both kernels read that layout.
//   8 < M <= chunked_decode_max_rows decode with the tensor-core kernels' 16-row (two n-tile)
//                                    variants: one launch for M <= 16, else ceil(M / 16)
//                                    launches on 16-row slices of X, for fp16 / bf16 layouts with
//                                    a tensor-core decode kernel (up to 32 rows for the
//                                    staged-codebook kernel with 8-bit codes, 64 when W needs
//                                    several dequantization chunks; with 12-bit codes 32 for
//                                    v8-k4096, 16 for v8-k4096-256, 32 / 16 for v6-k4096 and
//                                    v12-k4096-4096 by layer size; 16 for the gather kernel,
//                                    32 for V = 16 and the staged-main v8-k4096; measured
//                                    crossovers, kChunked*); else
//   M > 8                            prefill: dequantize W in stored column order into the
//                                    workspace (row chunks of at most kDequantChunkMaxBytes),
//                                    then cublasGemmEx (fp32 compute) when a BLAS handle is
//                                    given and the library was built with cuBLAS, else the
//                                    tiled fallback GEMM. perm / norm: prep_activations (x' in
//                                    T); bias / norm with cuBLAS: fp32 result + epilogue, so
//                                    the output is rounded to T once.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "gemv.cuh"
#include "gemv_fast.cuh"
#include "gemv_fast_table.h"
#include "gemv_mma.cuh"
#include "gemv_mma_gather.cuh"
#include "gemv_mma_v12.cuh"
#include "env_knob.h"
#include "gemv_table.h"
#include "prefill.h"
#include "vptq/cuda.h"

namespace vptq {
namespace {

using gpu::GemvArgs;
using gpu::LayerView;

// decode: stage codebooks in shared memory up to this size. Measured on the H100 (8B q/o, M = 1):
// one shared copy of a 48 KB codebook (v6-k4096) 58 us against 27 us for L1-cached global reads of
// a larger one; v8-k256-256 (8 KB) 23.4 us staged against 19.9 us for v8-k4096-256 from global.
// Staging pays only for tiny codebooks (bank conflicts of one copy, staging cost per block).
constexpr size_t kSmemCodebookMaxBytes = 2 * 1024;
// prefill: dequantized W per chunk. 128 MiB holds a whole 8B MLP matrix (14336 x 4096 fp16 = 112
// MiB) in one chunk: measured on the H100 (docs/kernels.md), one cuBLAS call on the whole W beats
// two halves (8B up, M = 2048: 0.86x vs 0.83x of dense cuBLAS), smaller chunks lose more (16 MiB:
// 0.76x; 8 MiB: 0.68x): the GEMM's efficiency matters more than keeping W in L2.
constexpr size_t kDequantChunkMaxBytes = 128ull << 20;
// prefill: rows per dequantization chunk rounded down to a multiple of this when W needs several
// chunks (each chunk is one GEMM of `rows` x M; its output starts at row0 of Y). Measured (H200,
// 70B down 8192 x 28672 fp16, docs/kernels.md): 128 MiB chunks of 2340 rows took 2.5-2.8x the
// time of one 8192-row chunk at M = 512 / 2048; 70B up, whose 128 MiB chunks are 8192 rows,
// 0.95-1.0x.
constexpr int64_t kDequantChunkRowAlign = 128;

// Prefill chunk size: kDequantChunkMaxBytes, or VPTQ_PREFILL_CHUNK_MB from the environment
// (benchmark sweeps; read once per process).
size_t dequant_chunk_bytes() {
  static const size_t bytes = [] {
    const long mb = gpu::env_knob("VPTQ_PREFILL_CHUNK_MB", 0);
    return mb > 0 ? static_cast<size_t>(mb) << 20 : kDequantChunkMaxBytes;
  }();
  return bytes;
}
constexpr size_t kResultChunkMaxBytes = 32ull << 20;   // prefill: fp32 GEMM result per chunk
constexpr size_t kWorkspaceAlign = 256;
constexpr int kMaxDevices = 64;
constexpr double kMinTilesPerSM = 1.5;                 // decode: R > 1 only above this many tiles
// fast decode kernel: shared memory for staged codebooks + partials, and warp items per tile
constexpr size_t kFastMaxSmemBytes = 100 * 1024;
constexpr int kFastMaxItems = 64;
// V = 16 at M = 1: the fast kernel up to this many index rows, the generic kernel above. The
// V = 16 fast kernel holds 16 accumulators next to 32 index words (254 registers, one block of 8
// warps per SM); the generic kernel runs ~30 warps per SM, which pays once the layer has enough
// rows to fill them. Measured (H100, M = 1, fp16, two repeats, docs/kernels.md): generic / fast
// time 0.85-0.95 on the 5 Llama shapes with 384-1792 rows (8B qkv, 8B up, 70B o, up, down),
// 1.02 at 256 rows (8B q/o, 8B down), 1.79 at 64 rows (8B kv).
constexpr int64_t kFastWideMaxRows = 256;
constexpr int kFastTargetWarpsPerSM = 16;  // resident warps of the fast kernel (2 blocks x 8)
// fast_geometry's wave-tail rule: tiles / (resident blocks x rounds) below this doubles S. Measured
// (H100, M = 1, S swept over 1..16 on 7 fast-kernel configurations x 8 Llama shapes,
// docs/kernels.md): it changes v12-k4096-4096 70B up (S 1 -> 2) and 8B up (2 -> 4) and v6-k4096
// 8B up (1 -> 2), 0.85-0.88x the time; 0.7 and above also changed shapes that got slower.
constexpr double kFastMinWaveFill = 0.6;
constexpr int kFastWarpsPerBlock = gpu::kFastThreads / 32;  // host view (32-lane warps)
// tensor-core kernel from this many rows of X on. Measured (H200, v8-k256-256 fp16, third version
// with the cp.async index ring, docs/kernels.md): M = 1 8B q/o / up / down 10.2 / 24.4 / 20.7 us
// against 15.4 / 27.3 / 27.9 (fast kernel), M = 8 8B up 27.0 against 103.0 (fast MB = 8): it wins
// at every M (VPTQ_GEMV_MMA_MIN_M overrides).
constexpr int kMmaMinRows = 1;
// tensor-core gather kernel (gemv_mma_gather.cuh, 16-bit main codes) from this many rows on.
// Measured (same-run A/B, H200 and H100, 8 Llama shapes, docs/kernels.md): at M = 1 it takes
// 0.94-1.35x the fast kernel's time, slower on most shapes (H200 8B up 58.9 against 56.0 us; its
// staging ring takes shared memory that the fast kernel leaves to L1, which caches ~20% of the
// gathers); at M = 8 it is 1.8-2.0x faster (H200 8B up 61.5 against 123.0 us).
// For 12 / 13-bit main codes with the 256-row residual (v8-k4096-256, v8-k8192-256) from M = 3:
// measured (H200, 8B up, fp16, docs/kernels.md) at M = 2 the generic kernel takes 52.4 / 53.2 us
// against the gather kernel's 56.1 / 64.3, at M = 4 71.2 / 73.7 against 56.6 / 64.8 (M = 3 runs
// the generic kernel's MB = 4 variant). VPTQ_GEMV_MMA_GATHER_MIN_M overrides both.
constexpr int kMmaGatherMinRows = 2;
// M > 8 as decode slices (chunked_decode_max_rows) instead of dequantize + GEMM, up to these M.
// Every tensor-core layout has a 16-row (two n-tile) variant: M = 9 .. 16 is one launch at
// 1.01-1.19x (gather kernel) / 1.27-1.52x (staged-codebook kernel, P = 1 only) of the 8-row
// time; more rows are ceil(M / 16) launches. Prefill costs about the same from M = 9 to 96
// (dequantizing W dominates). Measured (H200, fp16, M = 9 .. 96 on 8B q/o, 8B up, 70B down for
// the 7 tensor-core layouts, two repeats, prefill with 128-row-aligned chunks,
// docs/bench/bench_decode_prefill_switch_16_h200_2026-11-27.md):
//   staged-codebook kernel (v8-k256-256): 32 rows (slices 0.35-0.88x of prefill); 64 rows when W
//     needs several dequantization chunks (70B down: 0.24-0.97x; 1.41x at M = 96);
//   gather kernel: 16 rows (0.41-0.83x; at M = 17 prefill is faster on 11 of the 15 v8 cases);
//     32 for V = 16 (0.41-0.99x).
constexpr int64_t kChunkedMmaMaxRows = 32;
constexpr int64_t kChunkedMmaMaxRowsMultiChunk = 64;
constexpr int64_t kChunkedGatherMaxRows = 16;
constexpr int64_t kChunkedGatherWideMaxRows = 32;
// the gather kernel's staged-main variant without a residual (v8-k4096): 32 rows. Measured (H200,
// fp16, 8B q/o, 8B up, 70B down, two repeats, slices against prefill): M = 17 0.53-0.85x, M = 32
// 0.67-0.94x, M = 48 1.00-1.37x (at M = 32 on all 8 shapes: 0.67-0.99x on 6, 1.22 / 1.39x on the
// small 8B qkv / kv); with the residual (v8-k4096-256) M = 17 0.78-1.02x, M = 32 1.00-1.24x, so it
// keeps 16.
constexpr int64_t kChunkedStageMainMaxRows = 32;
// the staged-codebook kernel for v8-k4096 (gemv_mma.cuh, IB = 12, RB = 0): 32 rows. Measured
// (H200, fp16, 8 Llama shapes, two repeats, slices against prefill,
// docs/bench/bench_mma_k4096_h200_2026-11-27.md): M = 17 / 24 / 32 0.49-0.83x / 0.52-0.84x /
// 0.57-0.84x on 6 shapes; 8B qkv 0.91 / 1.03 / 1.04x, 8B kv 1.00 / 0.95 / 0.99x.
constexpr int64_t kChunkedMmaWideNoResMaxRows = 32;
// v6-k4096 (gemv_mma.cuh, kV = 6) and v12-k4096-4096 (gemv_mma_v12.cuh): 32 rows on layers of more
// than kChunkedV6MinWeights / kChunkedV12MinWeights weights, else 16. Measured (fp16, 8 Llama
// shapes, two repeats, slices (VPTQ_GEMV_CHUNKED_MAX_M=32) against prefill (=16) at M = 17 / 24 /
// 32, docs/bench/bench_mma_v6_v12_h100_2026-11-27.md section 3 (H100) and section 5 (H200)):
//   v6-k4096: H100 0.53-0.90x on the 6 shapes above 4096 x 4096, 1.02-1.19x on 8B q/o and kv;
//     H200 0.65-0.95x on 5 of those 6, 8B down 0.97 / 1.01 / 1.11x, 8B q/o and kv 1.07-1.22x.
//   v12-k4096-4096: H100 0.74-0.99x on the same 6, 1.17-1.31x on 8B q/o and kv; H200 0.89-0.99x
//     on 70B up / down only (8B qkv, up, down, 70B o 1.01-1.19x): prefill wins sooner on the
//     H200 (more bandwidth for the dequantized W), so slices only above 8192 x 8192 weights.
constexpr int64_t kChunkedV6V12MaxRows = 32;
constexpr int64_t kChunkedV6MinWeights = int64_t{4096} * 4096;
constexpr int64_t kChunkedV12MinWeights = int64_t{8192} * 8192;
constexpr int kMmaGatherOddResMinRows = 3;
// the gather kernel's staged-main variant (VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS: v8-k4096,
// v8-k4096-256 with G = 1) from this many rows on; it replaces the gathering variant there
// (VPTQ_GEMV_MMA_STAGE_MAIN=0 turns it off). Measured (H200, fp16, the 8 Llama shapes, two
// repeats, same-call A/B against the gathering dispatch, docs/kernels.md): flat in M (8B up
// M = 2 / 8 / 16 at 1.35 / 1.38 / 1.55x of the fast kernel's M = 1 time); at M = 2..16 0.73-0.92x
// (v8-k4096) and 0.83-0.95x (v8-k4096-256, M >= 4) of the gathering variant's time; v8-k4096-256
// at M = 2 against the generic kernel 0.59-0.97x on 7 shapes, 1.19x on 70B up; at M = 1 (first
// run, 5 shapes) 1.10-1.77x of the fast kernel's time, so M = 1 stays there.
constexpr int kMmaStageMainMinRows = 2;
// the staged-codebook kernel (gemv_mma.cuh) for 12-bit main codes (VPTQ_GEMV_MMA_WIDE_LAYOUTS:
// v8-k4096-256 and v8-k4096, G = 1) from this many rows on
// (VPTQ_GEMV_MMA_WIDE_MIN_M overrides, VPTQ_GEMV_MMA_WIDE=0 turns it off). Measured (H200, fp16,
// 8 Llama shapes, two repeats, same-call A/B against 7e8bb2a, docs/kernels.md): M = 2 / 8
// 0.68-0.80x / 0.71-0.82x of the staged-main gather variant (or the generic kernel at M = 2);
// M = 16 0.86-0.99x; at M = 1 0.87-1.19x of the fast kernel (8 shapes: 376 against 343 us), so
// M = 1 stays there. Decode slices above 16 rows lost (M = 32: 1.10-1.49x of prefill on the 8B
// shapes but 8B down 0.99x, 70B down 0.86x): 16 rows, as the gather kernel.
// v8-k4096 (same-call A/B against the staged-main gather variant, VPTQ_GEMV_MMA_WIDE=0, H200,
// fp16, 8 shapes, two repeats, docs/bench/bench_mma_k4096_h200_2026-11-27.md): M = 2 / 4 / 8 / 16
// 0.71-0.85x / 0.73-0.86x / 0.76-0.87x / 0.79-0.91x; at M = 1 0.93-1.14x of the fast kernel (the
// 8 shapes 249 against 237 us), so M = 1 stays there too.
constexpr long kMmaWideMinRows = 2;
// ... except on layers of at most this many index rows, where the staged-codebook kernel takes
// M = 1 too. Measured (H200, fp16, same-call A/B of VPTQ_GEMV_MMA_WIDE_MIN_M=1 against the fast
// kernel, two repeats, after the persistent-grid geometry below,
// docs/bench/bench_mma_k4096_h200_2026-11-27.md section 5): on the three 8B shapes with <= 512
// index rows (q/o, kv, down) 0.94-0.98x (v8-k4096) and 0.88-0.98x (v8-k4096-256), bf16 q/o
// 0.96 / 0.92x; on the five with 768-3584 rows 1.00-1.08x / 1.03-1.13x. The session before
// (v8-k4096-256, the old geometry) measured the same split: 0.87-0.98x against 1.05-1.19x.
// VPTQ_GEMV_MMA_WIDE_MIN_M, when set, replaces this rule.
constexpr int64_t kMmaWideOneRowMaxIndexRows = 512;
// 13-bit main codes (v8-k8192-256, one block of 16 warps with the 128 KB codebook) from M = 1 on
// every layer. Measured (H200, fp16, 8 Llama shapes, two repeats, same-call A/B against
// VPTQ_GEMV_MMA_WIDE=0, docs/bench/bench_mma_k8192_h200_2026-11-27.md): M = 1 0.69-0.82x of the
// fast kernel, M = 2 0.43-0.71x (generic kernel before), M = 4 / 8 0.49-0.66x / 0.49-0.68x of the
// gather kernel, M = 16 0.60-0.75x. VPTQ_GEMV_MMA_WIDE_MIN_M, when set, replaces this too.
constexpr long kMmaWide13MinRows = 1;
// v6-k4096 (12-byte entries padded to 16-byte rows when staged) from this many rows on. Measured
// (H200, fp16, 8 Llama shapes, two repeats, same-call A/B against VPTQ_GEMV_MMA_WIDE=0,
// docs/bench/bench_mma_v6_h200_2026-11-27.md): M = 1 0.53-0.83x of the fast kernel, M = 2 / 4 / 8
// 0.44-0.59x / 0.44-0.46x / 0.24-0.43x of the generic / fast kernels, M = 16 0.39-0.65x of prefill.
constexpr long kMmaWideV6MinRows = 1;
// v12-k4096-4096 (gemv_mma_v12.cuh) from this many rows on. Measured (H200, fp16, 8 Llama shapes,
// two repeats, same-call A/B against VPTQ_GEMV_MMA_WIDE=0, docs/bench/bench_mma_v12_h200_2026-11-27.md):
// M = 1 0.69-0.92x of the fast kernel (8B kv 1.02x, within the repeats' spread), M = 2 / 4 / 8
// 0.47-0.79x / 0.45-0.56x / 0.30-0.45x of the generic kernel, M = 16 0.50-0.74x of prefill.
constexpr long kMmaWideV12MinRows = 1;
// Warps per block of the staged-codebook kernel for 12-bit main codes: 8 (two blocks per SM, a
// 64 KB codebook copy each), except 16 (one block per SM, one copy; the ",W=16" entries) for the
// two-n-tile variant (9 <= M <= 16) with the 256-row residual. Measured (H200, fp16, 8 Llama
// shapes, two repeats, same-call A/B of VPTQ_GEMV_MMA_WIDE_WARPS=16 against 8, both at
// VPTQ_GEMV_MMA_WIDE_MIN_M=1, docs/bench/bench_mma_w16_h200_2026-11-27.md): M = 1..8 0.96-1.06x
// (70B up 1.03-1.06x: no gain, the kernel waits on shared memory either way), M = 16 0.90-0.96x
// for v8-k4096-256 (whose two-n-tile variant spills 28-36 bytes in both forms), 0.97-1.03x for
// v8-k4096. VPTQ_GEMV_MMA_WIDE_WARPS=8 or 16 forces one form for every M.
constexpr int kMmaWide12Warps = 8, kMmaWide12WarpsTwoTilesRes = 16;
// tensor-core kernel shared memory: codebooks (64 KB for G = 1) + D fragments + the warps' index
// rings (gpu::mma_smem_bytes); two blocks per SM on sm_90 (228 KB per SM). The 13-bit-code entries
// (one block of 16 warps, 128 KB codebook, ~200 KB in all) are bounded by the device's limit only.
constexpr size_t kMmaMaxSmemBytes = 110 * 1024;
// tensor-core kernel geometry model (mma_geometry): cost of one pair-step (32 columns of 2 index
// rows) by P (pairs per warp step; [0] unused) relative to P = 1, and the per-item overhead in
// P = 1 pair-steps. Fitted to a sweep of P in {1, 2} x S in {1, 2, 4, 8, 16} on the H200 (8
// Llama shapes, M = 1, docs/kernels.md): with these values the model picks the fastest measured
// (P, S) on all 8 shapes (its unfitted first form picked P = 1 on 4 of them, up to 13% slower).
constexpr double kMmaPairStepCost[gpu::kMmaMaxPairs + 1] = {0.0, 1.0, 0.6};
constexpr double kMmaItemOverhead = 16.0;
// Every other tensor-core entry (the staged-codebook kernel's 12- / 13-bit main codes, v6 and v12,
// and the gather kernel) models its persistent grid instead (persistent_grid_tile_times): a tile
// costs (U + kMmaWideItemOverhead) pair-steps alone on its SM, kMmaWideSharedSmTime times that
// while two blocks share the SM; the slowest SM's time. Fitted on the 12-bit v8 layouts (H200,
// fp16, v8-k4096 and v8-k4096-256, 8 Llama shapes, M = 1 and 8, S forced to 1 .. 16 by
// VPTQ_GEMV_MMA_SPLIT, docs/bench/bench_mma_k4096_h200_2026-11-27.md section 3,
// benchmarks/fit_mma_split.py), where the pair-step model above picked S = 4 on 70B up at 1.10 /
// 1.12x of S = 8. Its first form (every block ceil(tiles / grid) tiles, all of them shared when the
// grid has more blocks than SMs) picked S = 4 for v6-k4096 on 8B down, 1.22x the time of S = 8
// (docs/bench/bench_mma_v6_split_h200_2026-11-27.md): there the 78 blocks with a second tile run
// it alone on their SM. The per-SM form, same constants, picks within 3.2% of the fastest S on
// all 48 points of those two sweeps, and on the gather kernel's sweep (section 8 of the k4096
// table: v8-k65536, v8-k65536-256, M = 2 and 8) changes the pair-step model's picks on 70B up
// only (S = 4 -> 8: 1.07-1.11x -> 1.00-1.07x of the fastest S). Same-call A/Bs on the H200 and
// the H100: docs/bench/bench_mma_split_model_2026-11-27.md.
constexpr double kMmaWideItemOverhead = 4.0;
constexpr double kMmaWideSharedSmTime = 1.33;

// Modelled time of a persistent grid, in times of one tile run alone on an SM: min(tiles, blocks)
// blocks, block b taking tiles b, b + grid, ... (the kernels' loop); SM j runs block j and, when
// the grid has more blocks than SMs, block j + SMs. Two tiles side by side take
// kMmaWideSharedSmTime; an SM's first block takes as many tiles as its second or one more, so the
// SM runs (second's tiles) shared, then the rest alone. The slowest SM's time.
double persistent_grid_tile_times(int64_t tiles, int64_t blocks, int64_t sms) {
  const int64_t grid = std::min(tiles, blocks);
  const int64_t q = tiles / grid, r = tiles % grid;  // blocks b < r take q + 1 tiles, the others q
  if (grid <= sms) return static_cast<double>(q + (r > 0 ? 1 : 0));
  const auto sm_time = [](int64_t first, int64_t second) {
    return static_cast<double>(second) * kMmaWideSharedSmTime + static_cast<double>(first - second);
  };
  double slowest = 0.0;
  if (r > sms) slowest = std::max(slowest, sm_time(q + 1, q + 1));  // SMs j < r - SMs
  if (r > 0) slowest = std::max(slowest, sm_time(q + 1, q));        // r - SMs <= j < r
  if (r < sms) slowest = std::max(slowest, sm_time(q, q));          // j >= r
  return slowest;
}

// ------------------------------------------------------------------ the dispatch table
using GemvLaunch = gpuError_t (*)(const GemvArgs&, size_t, int, gpuStream_t);
using GemvOccupancy = int (*)(size_t);

struct GemvEntry {
  DType dtype;
  int vt;       // vector components per tile
  bool exact;   // vector_len == vt (else generic, any vector_len)
  int mb;       // rows of X per launch (M <= mb); tensor-core kernels: 8 per n-tile (8 or 16)
  int r;        // index rows per tile (generic kernel); index-row pairs per warp step (mma kernel)
  int ib, rb;   // fast kernel: index bits and residual bits it is compiled for; -1: generic
  bool mma;     // tensor-core kernel (gemv_mma.cuh, gemv_mma_gather.cuh): any M <= mb
  GemvLaunch launch;
  GemvOccupancy blocks_per_sm;
  const char* name;
  bool gather = false;  // mma: the gather kernel (gemv_mma_gather.cuh), else staged codebooks
  bool stage_main = false;  // gather: its staged-main variant (main codebook in shared memory, G = 1)
  int warps = 0;  // mma: warps per block (8: two blocks per SM; 16: one)
};

#define VPTQ_ENTRY(T, DT, DTNAME, VT, MB, R, EXACT)                                    \
  {DT, VT, EXACT, MB, R, -1, -1, false, &gpu::launch_gemv<T, VT, MB, R, EXACT>,       \
   &gpu::gemv_blocks_per_sm<T, VT, MB, R, EXACT>,                                     \
   "vptq_gemv<" DTNAME ",VT=" #VT ",MB=" #MB ",R=" #R ",exact=" #EXACT ">"},
#define VPTQ_ENTRY_F32(VT, MB, R, EXACT) VPTQ_ENTRY(float, DType::kFloat32, "float32", VT, MB, R, EXACT)
#define VPTQ_ENTRY_F16(VT, MB, R, EXACT) VPTQ_ENTRY(gpu_half, DType::kFloat16, "float16", VT, MB, R, EXACT)
#define VPTQ_ENTRY_BF16(VT, MB, R, EXACT) \
  VPTQ_ENTRY(gpu_bfloat16, DType::kBFloat16, "bfloat16", VT, MB, R, EXACT)
#define VPTQ_VEC_F32(VT, EXACT) VPTQ_GEMV_ROWS(VPTQ_ENTRY_F32, VT, EXACT)
#define VPTQ_VEC_F16(VT, EXACT) VPTQ_GEMV_ROWS(VPTQ_ENTRY_F16, VT, EXACT)
#define VPTQ_VEC_BF16(VT, EXACT) VPTQ_GEMV_ROWS(VPTQ_ENTRY_BF16, VT, EXACT)

#define VPTQ_FAST_ENTRY(T, DT, DTNAME, V, IB, RB, MB)                                          \
  {DT, V, true, MB, 1, IB, RB, false, &gpu::launch_gemv_fast<T, V, IB, RB, MB>,               \
   &gpu::gemv_fast_blocks_per_sm<T, V, IB, RB, MB>,                                          \
   "vptq_gemv_fast<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB ",MB=" #MB ">"},
#define VPTQ_FAST_ROWS(T, DT, DTNAME, V, IB, RB) \
  VPTQ_FAST_ENTRY(T, DT, DTNAME, V, IB, RB, 1) VPTQ_FAST_ENTRY(T, DT, DTNAME, V, IB, RB, 8)
#define VPTQ_FAST_ROWS_WIDE(T, DT, DTNAME, V, IB, RB) VPTQ_FAST_ENTRY(T, DT, DTNAME, V, IB, RB, 1)
#define VPTQ_FAST_F16(V, IB, RB) VPTQ_FAST_ROWS(gpu_half, DType::kFloat16, "float16", V, IB, RB)
#define VPTQ_FAST_BF16(V, IB, RB) VPTQ_FAST_ROWS(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB)
#define VPTQ_FAST_F16_W(V, IB, RB) VPTQ_FAST_ROWS_WIDE(gpu_half, DType::kFloat16, "float16", V, IB, RB)
#define VPTQ_FAST_BF16_W(V, IB, RB) VPTQ_FAST_ROWS_WIDE(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB)

#if !VPTQ_HIP
// staged-codebook kernel: P = 1, 2 with one n-tile (M <= 8), P = 1 with two (M <= 16, ",MB=16")
#define VPTQ_MMA_ENTRY_P(T, DT, DTNAME, V, IB, RB, P)                                             \
  {DT, V, true, gpu::kMmaMaxRows, P, IB, RB, true, &gpu::launch_gemv_mma<T, IB, RB, P, 1, gpu::mma_warps_of(IB), V>, \
   &gpu::gemv_mma_blocks_per_sm<T, IB, RB, P, 1, gpu::mma_warps_of(IB), V>,                                      \
   "vptq_gemv_mma<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB ",P=" #P ">", false, false, gpu::mma_warps_of(IB)},
#define VPTQ_MMA_ENTRY_16(T, DT, DTNAME, V, IB, RB)                                               \
  {DT, V, true, 2 * gpu::kMmaMaxRows, 1, IB, RB, true, &gpu::launch_gemv_mma<T, IB, RB, 1, 2, gpu::mma_warps_of(IB), V>, \
   &gpu::gemv_mma_blocks_per_sm<T, IB, RB, 1, 2, gpu::mma_warps_of(IB), V>,                                          \
   "vptq_gemv_mma<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB ",P=1,MB=16>", false, false, gpu::mma_warps_of(IB)},
#define VPTQ_MMA_ENTRY(T, DT, DTNAME, V, IB, RB)                                                  \
  VPTQ_MMA_ENTRY_P(T, DT, DTNAME, V, IB, RB, 1) VPTQ_MMA_ENTRY_P(T, DT, DTNAME, V, IB, RB, 2)    \
  VPTQ_MMA_ENTRY_16(T, DT, DTNAME, V, IB, RB)
// 12-bit main codes: P = 1 only
#define VPTQ_MMA_ENTRY_WIDE(T, DT, DTNAME, V, IB, RB) \
  VPTQ_MMA_ENTRY_P(T, DT, DTNAME, V, IB, RB, 1) VPTQ_MMA_ENTRY_16(T, DT, DTNAME, V, IB, RB)
// 12-bit main codes as one block of 16 warps per SM (",W=16"; VPTQ_GEMV_MMA_WIDE_WARPS picks)
#define VPTQ_MMA_ENTRY_W16(T, DT, DTNAME, V, IB, RB)                                                       \
  {DT, V, true, gpu::kMmaMaxRows, 1, IB, RB, true, &gpu::launch_gemv_mma<T, IB, RB, 1, 1, 16>,               \
   &gpu::gemv_mma_blocks_per_sm<T, IB, RB, 1, 1, 16>,                                                      \
   "vptq_gemv_mma<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB ",P=1,W=16>", false, false, 16},                  \
  {DT, V, true, 2 * gpu::kMmaMaxRows, 1, IB, RB, true, &gpu::launch_gemv_mma<T, IB, RB, 1, 2, 16>,           \
   &gpu::gemv_mma_blocks_per_sm<T, IB, RB, 1, 2, 16>,                                                      \
   "vptq_gemv_mma<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB ",P=1,MB=16,W=16>", false, false, 16},
#define VPTQ_MMA_W16_F16(V, IB, RB) VPTQ_MMA_ENTRY_W16(gpu_half, DType::kFloat16, "float16", V, IB, RB)
#define VPTQ_MMA_W16_BF16(V, IB, RB) VPTQ_MMA_ENTRY_W16(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB)
#define VPTQ_MMA_12BIT_LAYOUTS(X) X(8, 12, 8) X(8, 12, 0)
// v12-k4096-4096 (gemv_mma_v12.cuh: its own kernel, 16 warps, three 64 KB tables)
#define VPTQ_MMA_V12_ENTRY(T, DT, DTNAME)                                                                   \
  {DT, 12, true, gpu::kMmaMaxRows, 1, 12, 12, true, &gpu::launch_gemv_mma_v12<T, 1>,                          \
   &gpu::gemv_mma_v12_blocks_per_sm<T, 1>, "vptq_gemv_mma<" DTNAME ",V=12,IB=12,RB=12,P=1>", false, false,    \
   gpu::kV12Warps},                                                                                          \
  {DT, 12, true, 2 * gpu::kMmaMaxRows, 1, 12, 12, true, &gpu::launch_gemv_mma_v12<T, 2>,                      \
   &gpu::gemv_mma_v12_blocks_per_sm<T, 2>, "vptq_gemv_mma<" DTNAME ",V=12,IB=12,RB=12,P=1,MB=16>", false, false, \
   gpu::kV12Warps},
#define VPTQ_MMA_F16(V, IB, RB) VPTQ_MMA_ENTRY(gpu_half, DType::kFloat16, "float16", V, IB, RB)
#define VPTQ_MMA_BF16(V, IB, RB) VPTQ_MMA_ENTRY(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB)
#define VPTQ_MMA_WIDE_F16(V, IB, RB) VPTQ_MMA_ENTRY_WIDE(gpu_half, DType::kFloat16, "float16", V, IB, RB)
#define VPTQ_MMA_WIDE_BF16(V, IB, RB) VPTQ_MMA_ENTRY_WIDE(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB)
// gather kernel: one n-tile (M <= 8; the name without MB) and two (M <= 16, ",MB=16")
// (SM = true: the staged-main variant, names ending ",cb=smem")
#define VPTQ_MMA_GATHER_ENTRY(T, DT, DTNAME, V, IB, RB, SM, SUFFIX)                                        \
  {DT, V, true, gpu::kMmaMaxRows, 1, IB, RB, true, &gpu::launch_gemv_mma_gather<T, V, IB, RB, 1, SM>,       \
   &gpu::gemv_mma_gather_blocks_per_sm<T, V, IB, RB, 1, SM>,                                            \
   "vptq_gemv_mma_gather<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB SUFFIX ">", true, SM, gpu::kMmaWarps},  \
  {DT, V, true, 2 * gpu::kMmaMaxRows, 1, IB, RB, true, &gpu::launch_gemv_mma_gather<T, V, IB, RB, 2, SM>,   \
   &gpu::gemv_mma_gather_blocks_per_sm<T, V, IB, RB, 2, SM>,                                            \
   "vptq_gemv_mma_gather<" DTNAME ",V=" #V ",IB=" #IB ",RB=" #RB ",MB=16" SUFFIX ">", true, SM, gpu::kMmaWarps},
#define VPTQ_MMA_GATHER_F16(V, IB, RB) \
  VPTQ_MMA_GATHER_ENTRY(gpu_half, DType::kFloat16, "float16", V, IB, RB, false, "")
#define VPTQ_MMA_GATHER_BF16(V, IB, RB) \
  VPTQ_MMA_GATHER_ENTRY(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB, false, "")
#define VPTQ_MMA_STAGE_MAIN_F16(V, IB, RB) \
  VPTQ_MMA_GATHER_ENTRY(gpu_half, DType::kFloat16, "float16", V, IB, RB, true, ",cb=smem")
#define VPTQ_MMA_STAGE_MAIN_BF16(V, IB, RB) \
  VPTQ_MMA_GATHER_ENTRY(gpu_bfloat16, DType::kBFloat16, "bfloat16", V, IB, RB, true, ",cb=smem")
#define VPTQ_MMA_ROWS                                                                                  \
  VPTQ_GEMV_MMA_LAYOUTS(VPTQ_MMA_F16) VPTQ_GEMV_MMA_LAYOUTS(VPTQ_MMA_BF16)                             \
  VPTQ_GEMV_MMA_WIDE_LAYOUTS(VPTQ_MMA_WIDE_F16) VPTQ_GEMV_MMA_WIDE_LAYOUTS(VPTQ_MMA_WIDE_BF16)         \
  VPTQ_MMA_12BIT_LAYOUTS(VPTQ_MMA_W16_F16) VPTQ_MMA_12BIT_LAYOUTS(VPTQ_MMA_W16_BF16)                   \
  VPTQ_MMA_V12_ENTRY(gpu_half, DType::kFloat16, "float16")                                             \
  VPTQ_MMA_V12_ENTRY(gpu_bfloat16, DType::kBFloat16, "bfloat16")                                       \
  VPTQ_GEMV_MMA_GATHER_LAYOUTS(VPTQ_MMA_GATHER_F16) VPTQ_GEMV_MMA_GATHER_LAYOUTS(VPTQ_MMA_GATHER_BF16) \
  VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS(VPTQ_MMA_STAGE_MAIN_F16) VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS(VPTQ_MMA_STAGE_MAIN_BF16)
#else
#define VPTQ_MMA_ROWS
#endif

const GemvEntry kGemvTable[] = {
    VPTQ_GEMV_VECTORS(VPTQ_VEC_F32) VPTQ_GEMV_VECTORS(VPTQ_VEC_F16) VPTQ_GEMV_VECTORS(VPTQ_VEC_BF16)
    VPTQ_GEMV_FAST_LAYOUTS(VPTQ_FAST_F16) VPTQ_GEMV_FAST_LAYOUTS(VPTQ_FAST_BF16)
    VPTQ_GEMV_FAST_LAYOUTS_WIDE(VPTQ_FAST_F16_W) VPTQ_GEMV_FAST_LAYOUTS_WIDE(VPTQ_FAST_BF16_W)
    VPTQ_MMA_ROWS};
constexpr int kGemvTableSize = sizeof(kGemvTable) / sizeof(kGemvTable[0]);

int rows_per_launch(int64_t m) { return m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : 8; }

// Attribute `attr` of the current device, read once per (device, slot) and cached; `fallback` when
// the device or the attribute cannot be read.
enum DeviceAttrSlot { kAttrSms, kAttrCcMajor, kAttrSmemOptin, kAttrSlots };
template <typename Attr>
int device_attribute(DeviceAttrSlot slot, Attr attr, int fallback) {
  static int cache[kAttrSlots][kMaxDevices] = {};   // 0: not read yet (values are >= 1)
  int dev = 0;
  if (gpuGetDevice(&dev) != gpuSuccess || dev < 0) return fallback;
  if (dev < kMaxDevices && cache[slot][dev] > 0) return cache[slot][dev];
  int v = 0;
  if (gpuDeviceGetAttribute(&v, attr, dev) != gpuSuccess || v < 1) return fallback;
  if (dev < kMaxDevices) cache[slot][dev] = v;
  return v;
}

int multiprocessors();

// Dynamic shared memory one block may opt in to on the current device (227 KB on sm_90, 163 KB
// on sm_80, 99 KB on sm_86 / sm_89 RTX cards): a kernel whose plan needs more is not selected.
size_t smem_per_block_limit() {
  return static_cast<size_t>(device_attribute(kAttrSmemOptin, gpuDevAttrMaxSharedMemoryPerBlockOptin, 48 * 1024));
}

// Fast-kernel geometry of a layer. Split-K: each index row's upr 32-code units are cut into S warp
// items of U units (U a multiple of 32), S the smallest that gives about kFastTargetWarpsPerSM
// items per multiprocessor (long items keep one fold per row; few rows get more, shorter items).
// RT = index rows per block tile (RT * S a multiple of the warps per block where possible, fewer
// rows when the layer would give fewer tiles than multiprocessors), items = RT * S.
struct FastGeometry {
  int chunks = 0, units = 32, rows_per_tile = 1, items = 0;
  int64_t tiles = 0;  // block tiles of the layer (the launch's grid is at most this)
  int pairs = 1;      // mma kernel: index-row pairs per warp step (P)
  double cost = 0.0;  // mma kernel: modelled time (mma_geometry), to compare P = 1 and 2
};

FastGeometry fast_geometry(const LayerAttributes& a) {
  const int64_t upr = a.group_num * (a.group_size / gpu::kFastUnitCodes);
  const int64_t rows = std::max<int64_t>(1, a.num_index_rows());
  const int64_t target = int64_t{multiprocessors()} * kFastTargetWarpsPerSM;
  const int64_t max_s = (upr + 31) / 32;
  auto with_split = [&](int64_t s) {
    FastGeometry f;
    f.units = static_cast<int>(((upr + s - 1) / s + 31) / 32 * 32);
    f.chunks = static_cast<int>((upr + f.units - 1) / f.units);
    int gcd = kFastWarpsPerBlock;
    while (f.chunks % gcd) gcd /= 2;  // kFastWarpsPerBlock is a power of two
    int rt = kFastWarpsPerBlock / gcd;
    while (rt > 1 && static_cast<int64_t>(rt) * f.chunks > kFastMaxItems) rt /= 2;
    while (rt > 1 && (rows + rt - 1) / rt < multiprocessors()) rt /= 2;
    f.rows_per_tile = rt;
    f.items = rt * f.chunks;
    f.tiles = (rows + rt - 1) / rt;
    return f;
  };
  static const long forced_split = gpu::env_knob("VPTQ_GEMV_FAST_SPLIT", 0);  // S, for sweeps
  int64_t s = std::min<int64_t>(max_s, forced_split > 0 ? forced_split
                                                         : std::max<int64_t>(1, (target + rows - 1) / rows));
  FastGeometry f = with_split(s);
  // Wave tail: more tiles than resident blocks, the last round less than kFastMinWaveFill full
  // (e.g. 1.13 rounds of work in 2 rounds): split K twice as fine (twice the tiles, half the rows
  // per tile) while that fits.
  const int64_t slots = int64_t{multiprocessors()} * gpu::fast_min_blocks(static_cast<int>(a.vector_len));
  while (forced_split <= 0 && f.tiles > slots && 2 * s <= max_s) {
    const double waves = static_cast<double>(f.tiles) / static_cast<double>(slots);
    if (waves / std::ceil(waves) >= kFastMinWaveFill) break;
    const FastGeometry g = with_split(2 * s);
    if (g.items > kFastMaxItems) break;
    f = g;
    s *= 2;
  }
  return f;
}

size_t fast_smem(const LayerAttributes& a, DType dtype, int mb, int items) {
  return gpu::fast_smem_bytes(static_cast<int>(a.vector_len), static_cast<int>(dtype_size(dtype)),
                              static_cast<int>(a.index_bits), static_cast<int>(a.res_index_bits), mb,
                              static_cast<int>(a.group_num), items);
}

// The fast kernel for (dtype, layout, m), or -1. ptr_ok = packed indices and codebooks 16-byte
// aligned (assumed by gemm_cuda_workspace_bytes / gemm_cuda_kernel_name). On success *geom is the
// layer's fast-kernel geometry (computed once per call here, used by plan() and the launch).
int select_fast(const LayerAttributes& a, DType dtype, int64_t m, bool ptr_ok, FastGeometry* geom) {
  static const bool env_off = gpu::env_knob("VPTQ_GEMV_FAST", 1) == 0;  // A/B runs against the generic kernel
  if (env_off || !ptr_ok || a.outlier_size != 0 || a.group_size < gpu::kFastUnitCodes ||
      a.group_size % gpu::kFastUnitCodes != 0 || a.group_num * a.group_size > 65536 ||
      (a.vector_len == 16 && a.num_index_rows() > kFastWideMaxRows))
    return -1;
  const int mb = rows_per_launch(m);
  for (int i = 0; i < kGemvTableSize; ++i) {
    const GemvEntry& e = kGemvTable[i];
    if (e.ib < 0 || e.mma || e.dtype != dtype || e.mb != mb || e.vt != a.vector_len || e.ib != a.index_bits ||
        e.rb != a.res_index_bits)
      continue;
    const FastGeometry f = fast_geometry(a);
    const size_t smem = fast_smem(a, dtype, mb, f.items);
    if (f.items > kFastMaxItems || smem > kFastMaxSmemBytes || smem > smem_per_block_limit()) return -1;
    *geom = f;
    return i;
  }
  return -1;
}

// Tensor-core kernel geometry (gemv_mma.cuh) for P index-row pairs per warp step: the work of a
// layer is (row block of P pairs, 32-column unit); a row block's upr units are cut into S warp
// items of U units (S a power of two, U a multiple of the 4-unit index chunk; items past the row
// end are empty), RT = 8 / S row blocks per block tile for S <= 8, else 1. Among S in
// {1, 2, 4, 8, 16}, the one with the least modelled time: tiles per SM (rounded up: an SM's
// shared-memory gathers are the bottleneck, whichever of its blocks issues them) x warp rounds
// per tile x (U * P pair-steps * kMmaPairStepCost[P] + kMmaItemOverhead), x sqrt(blocks / tiles)
// when there are fewer tiles than the 2 resident blocks per SM (fewer warps to cover latency:
// measured, one block of 8 warps per SM loses little, hence the square root). persistent_grid (the
// staged-codebook kernel's 12- / 13-bit main codes and v6 / v12, and the gather kernel): the
// persistent-grid model of kMmaWideItemOverhead instead. warps: per block (8, or 16, which then
// have one block per SM; RT = warps / S).
FastGeometry mma_geometry(const LayerAttributes& a, int P, bool persistent_grid, int warps = kFastWarpsPerBlock) {
  const int64_t upr = a.group_num * (a.group_size / gpu::kMmaStepCols);
  const int64_t rows_per_pair = gpu::mma_index_rows_per_pair(static_cast<int>(a.vector_len));
  const int64_t pairs = std::max<int64_t>(1, (a.num_index_rows() + rows_per_pair - 1) / rows_per_pair);
  const int64_t row_blocks = (pairs + P - 1) / P;
  // blocks per SM: two of 8 warps, one of 16 (registers: 128 per thread)
  const int64_t sms = multiprocessors(), blocks = sms * (2 * kFastWarpsPerBlock / warps);
  static const long forced_split = gpu::env_knob("VPTQ_GEMV_MMA_SPLIT", 0);  // S, where valid (sweeps)
  FastGeometry best;
  for (int s = 1; s <= 16; s *= 2) {
    const int64_t u = ((upr + s - 1) / s + gpu::kMmaChunk - 1) / gpu::kMmaChunk * gpu::kMmaChunk;
    if (s > 1 && (upr + u - 1) / u <= s / 2) break;  // half the items would be empty
    const int64_t rt = s < warps ? warps / s : 1;
    const int64_t items = rt * s;
    const int64_t tiles = (row_blocks + rt - 1) / rt;
    const int64_t rounds = (tiles + sms - 1) / sms;
    const int64_t warp_rounds = (items + warps - 1) / warps;
    const double fill = tiles < blocks ? std::sqrt(static_cast<double>(blocks) / static_cast<double>(tiles)) : 1.0;
    const double cost =
        persistent_grid ? static_cast<double>(warp_rounds) * (static_cast<double>(u) + kMmaWideItemOverhead) *
                   persistent_grid_tile_times(tiles, blocks, sms)
             : static_cast<double>(rounds * warp_rounds) *
                   (static_cast<double>(u * P) * kMmaPairStepCost[P] + kMmaItemOverhead) * fill;
    if (best.items == 0 || cost < best.cost || s == forced_split) {
      best.cost = cost;
      best.chunks = s;
      best.units = static_cast<int>(u);
      best.rows_per_tile = static_cast<int>(rt);
      best.items = static_cast<int>(items);
      best.tiles = tiles;
      best.pairs = P;
      if (s == forced_split) break;
    }
  }
  return best;
}

// Does the current device run the tensor-core kernel (CUDA sm_80+, not turned off by
// VPTQ_GEMV_MMA=0)?
bool mma_device_ok() {
#if VPTQ_HIP
  return false;
#else
  static const bool env_off = gpu::env_knob("VPTQ_GEMV_MMA", 1) == 0;
  return !env_off && device_attribute(kAttrCcMajor, gpuDevAttrComputeCapabilityMajor, 0) >= 8;
#endif
}

// Dynamic shared memory of a tensor-core table entry for a geometry of `items` warp items and
// `pairs` row pairs per step: the gather kernel's (gemv_mma_gather.cuh) for gather entries, else
// gemv_mma.cuh's staged codebooks.
size_t mma_entry_smem(const LayerAttributes& a, const GemvEntry& e, int items, int pairs) {
  if (e.gather) return gpu::mma_gather_smem_bytes(e.ib, e.rb, e.stage_main, items, e.mb / gpu::kMmaMaxRows);
  if (e.vt == 12) return gpu::mma_v12_smem_bytes(items, e.mb / gpu::kMmaMaxRows);
  return gpu::mma_smem_bytes(static_cast<int>(a.group_num), e.ib, e.rb, items, pairs, e.mb / gpu::kMmaMaxRows,
                             e.warps);
}

// The tensor-core kernel for (dtype, layout, m), or -1; ptr_ok and *geom as for select_fast.
// Among the entries for the layout (P = 1 and 2 pairs per warp step), the least modelled time
// (ties: the larger P); VPTQ_GEMV_MMA_PAIRS=1 or 2 forces P of gemv_mma.cuh (A/B measurements;
// the gather kernel has P = 1 only).
int select_mma(const LayerAttributes& a, DType dtype, int64_t m, bool ptr_ok, FastGeometry* geom) {
  static const long min_rows = std::max(1L, gpu::env_knob("VPTQ_GEMV_MMA_MIN_M", kMmaMinRows));
  static const long forced_pairs = gpu::env_knob("VPTQ_GEMV_MMA_PAIRS", 0);
  static const long forced_gather_min_rows = gpu::env_knob("VPTQ_GEMV_MMA_GATHER_MIN_M", 0);
  static const bool stage_main_on = gpu::env_knob("VPTQ_GEMV_MMA_STAGE_MAIN", 1) != 0;
  static const bool wide_on = gpu::env_knob("VPTQ_GEMV_MMA_WIDE", 1) != 0;
  static const long forced_wide_min_rows = gpu::env_knob("VPTQ_GEMV_MMA_WIDE_MIN_M", 0);
  static const long forced_wide12_warps = gpu::env_knob("VPTQ_GEMV_MMA_WIDE_WARPS", 0);
  const long wide_min_rows = forced_wide_min_rows > 0 ? forced_wide_min_rows
                             : a.index_bits == 13                                                      ? kMmaWide13MinRows
                             : a.vector_len == 6                                                       ? kMmaWideV6MinRows
                             : a.vector_len == 12                                                      ? kMmaWideV12MinRows
                             : a.index_bits == 12 && a.num_index_rows() <= kMmaWideOneRowMaxIndexRows ? 1
                                                                                                     : kMmaWideMinRows;
  if (!ptr_ok || m < min_rows || a.outlier_size != 0 || a.group_size < gpu::kMmaStepCols || a.group_size % gpu::kMmaStepCols != 0 ||
      (dtype == DType::kFloat16 && a.has_norm) || !mma_device_ok())
    return -1;
  // the entries of one n-tile for M <= 8, of two for 9 <= M <= 16 (gather kernel only)
  const int tile_rows = m <= gpu::kMmaMaxRows ? gpu::kMmaMaxRows : gpu::kMmaMaxTiles * gpu::kMmaMaxRows;
  if (m > tile_rows) return -1;
  const size_t device_smem_limit = smem_per_block_limit();
  const size_t smem_limit = std::min(kMmaMaxSmemBytes, device_smem_limit);
  int best = -1;
  for (int i = 0; i < kGemvTableSize; ++i) {
    const GemvEntry& e = kGemvTable[i];
    if (!e.mma || e.mb != tile_rows || e.dtype != dtype || e.vt != a.vector_len || e.ib != a.index_bits ||
        e.rb != a.res_index_bits || (forced_pairs > 0 && !e.gather && e.r != forced_pairs))
      continue;
    // per kind of entry: whether it is on, the fewest rows it takes (M = 1 stays on the fast kernel
    // where measured faster), and whether it stages one group's codebook only (G = 1)
    const bool wide = !e.gather && e.ib != 8;  // gemv_mma.cuh for 12- / 13-bit main codes
    const bool on = e.stage_main ? stage_main_on : wide ? wide_on : true;
    const long first_row = !e.gather                ? (wide ? wide_min_rows : 1)
                           : forced_gather_min_rows > 0 ? forced_gather_min_rows
                           : e.stage_main                ? kMmaStageMainMinRows
                           : e.ib < gpu::kGatherIndexBits && e.rb == 8 ? kMmaGatherOddResMinRows
                                                                         : kMmaGatherMinRows;
    const bool one_group = wide || e.stage_main || (e.gather && e.rb == 8);
    if (!on || m < first_row || (one_group && a.group_num != 1)) continue;
    // 12-bit codes: the 8- or the 16-warp entries (kMmaWide12Warps*, VPTQ_GEMV_MMA_WIDE_WARPS)
    if (wide && e.ib == 12 && e.vt == 8) {
      const long want = forced_wide12_warps > 0                      ? forced_wide12_warps
                        : e.rb == 8 && tile_rows > gpu::kMmaMaxRows ? kMmaWide12WarpsTwoTilesRes
                                                                      : kMmaWide12Warps;
      if (e.warps != want) continue;
    }
    // 13-bit codes: whole 16-byte-aligned row chunks (4 units of 21 words: group_size % 128 == 0)
    if (wide && e.ib == 13 && a.group_size % (gpu::kMmaChunk * gpu::kMmaStepCols) != 0) continue;
    // a block of 16 warps is alone on its SM: bounded by the device's limit only
    // split-K S: the pair-step model for the IB = 8 staged-codebook kernel (P = 1 or 2), the
    // persistent-grid one for the others
    const FastGeometry f = mma_geometry(a, e.r, wide || e.gather, e.warps);
    if (f.items == 0 || mma_entry_smem(a, e, f.items, e.r) > (e.warps > kFastWarpsPerBlock ? device_smem_limit : smem_limit))
      continue;
    // per layout: the staged-codebook kernel, then the gather kernel's staged-main variant, then
    // its gathering one; among entries of one kind, the least modelled time (ties: the larger P)
    auto rank = [](const GemvEntry& x) { return !x.gather ? 2 : x.stage_main ? 1 : 0; };
    const bool better = best < 0                              ? true
                        : rank(kGemvTable[best]) != rank(e) ? rank(e) > rank(kGemvTable[best])
                                                               : f.cost < geom->cost ||
                                                                     (f.cost == geom->cost && f.pairs > geom->pairs);
    if (better) {
      *geom = f;
      best = i;
    }
  }
  return best;
}

// The generic decode kernel for (dtype, v, m); exact_ok = codebook pointers allow vectorised loads.
// Among the entries for (dtype, MB, VT), the largest R that still gives every multiprocessor
// kMinTilesPerSM tiles (R > 1 shares activation loads between rows, but makes fewer tiles).
int select_gemv(DType dtype, int64_t v, int64_t index_rows, int64_t m, bool exact_ok) {
  const int mb = rows_per_launch(m);
  bool exact = false;
  for (int i = 0; i < kGemvTableSize; ++i)
    if (kGemvTable[i].ib < 0 && kGemvTable[i].dtype == dtype && kGemvTable[i].exact && exact_ok &&
        kGemvTable[i].vt == v)
      exact = true;
  const double min_tiles = kMinTilesPerSM * multiprocessors();
  int best = -1;
  for (int i = 0; i < kGemvTableSize; ++i) {
    const GemvEntry& e = kGemvTable[i];
    if (e.ib >= 0 || e.dtype != dtype || e.mb != mb || e.exact != exact || (exact && e.vt != v)) continue;
    const int64_t slices = (v + e.vt - 1) / e.vt;
    const int64_t tiles = (index_rows + e.r - 1) / e.r * slices;
    if (best < 0 || (e.r > kGemvTable[best].r && tiles >= min_tiles)) best = i;
  }
  return best;
}

// Prefill kernel names: [tiled dequantizer][dtype] (vptq::gpu::dequant_tiles_supported; the
// generic dequantizer also runs for the tiled layouts when a pointer is misaligned).
#if VPTQ_HAS_BLAS && !VPTQ_HIP
#define VPTQ_PREFILL_GEMM "cublasGemmEx"
#else
#define VPTQ_PREFILL_GEMM "vptq_tiled_gemm"
#endif
const char* prefill_name(DType dtype, bool tiles) {
  static const char* const kNames[2][3] = {
      {"vptq_dequant<float32>+" VPTQ_PREFILL_GEMM, "vptq_dequant<float16>+" VPTQ_PREFILL_GEMM,
       "vptq_dequant<bfloat16>+" VPTQ_PREFILL_GEMM},
      {"vptq_dequant_tiles<float32>+" VPTQ_PREFILL_GEMM, "vptq_dequant_tiles<float16>+" VPTQ_PREFILL_GEMM,
       "vptq_dequant_tiles<bfloat16>+" VPTQ_PREFILL_GEMM}};
  const int d = dtype == DType::kFloat32 ? 0 : dtype == DType::kFloat16 ? 1 : 2;
  return kNames[tiles ? 1 : 0][d];
}
#undef VPTQ_PREFILL_GEMM

// ------------------------------------------------------------------ decode for M > 8
// Rows of X one tensor-core launch takes at most: two n-tiles (call_plans falls back to 8-row
// slices where the layout has no such kernel or the weights are not 16-byte aligned).
constexpr int64_t kWideDecodeRows = gpu::kMmaMaxTiles * gpu::kMmaMaxRows;

// Rows of X up to which M > VPTQ_GEMV_MAX_M still runs the decode path, as ceil(M / R) launches on
// R-row slices (R = 16, or 8: call_plans), instead of dequantizing W for a GEMM (gemm_cuda);
// VPTQ_GEMV_MAX_M = none. Only for fp16 / bf16 layouts whose decode kernel is a tensor-core kernel
// (flat in M), where the measured crossover against dequantize + GEMM lies above 8 rows
// (docs/kernels.md). VPTQ_GEMV_CHUNKED_MAX_M overrides (for sweeps; it also applies to the other
// layouts). The choice assumes 16-byte aligned weights (as gemm_cuda_workspace_bytes does); with
// misaligned ones the slices are 8 rows and run the CUDA-core decode kernels, still correct.
int64_t chunked_decode_max_rows(const LayerAttributes& a, DType dtype) {
  static const long forced = gpu::env_knob("VPTQ_GEMV_CHUNKED_MAX_M", -1);
  if (forced >= 0) return forced;
  if (dtype == DType::kFloat32) return VPTQ_GEMV_MAX_M;
  FastGeometry geom;
  const int entry = select_mma(a, dtype, VPTQ_GEMV_MAX_M, true, &geom);
  if (entry < 0) return VPTQ_GEMV_MAX_M;
  const bool several_chunks = static_cast<size_t>(a.out_features) * static_cast<size_t>(a.in_features) *
                                  dtype_size(dtype) > dequant_chunk_bytes();
  const GemvEntry& e = kGemvTable[entry];
  if (!e.gather && (e.vt == 6 || e.vt == 12)) {  // v6-k4096, v12-k4096-4096: by layer size
    const int64_t min_weights = e.vt == 6 ? kChunkedV6MinWeights : kChunkedV12MinWeights;
    return a.out_features * a.in_features > min_weights ? kChunkedV6V12MaxRows : kChunkedGatherMaxRows;
  }
  if (!e.gather && e.ib != 8)  // gemv_mma.cuh, 12- / 13-bit v8 codes
    return e.rb == 0 ? kChunkedMmaWideNoResMaxRows : kChunkedGatherMaxRows;
  if (!e.gather) return several_chunks ? kChunkedMmaMaxRowsMultiChunk : kChunkedMmaMaxRows;
  if (e.stage_main && e.rb == 0) return kChunkedStageMainMaxRows;
  return a.vector_len == 16 ? kChunkedGatherWideMaxRows : kChunkedGatherMaxRows;
}

// ------------------------------------------------------------------ workspace plan
struct Plan {
  bool gemv = false;
  int entry = -1;          // kGemvTable index (gemv)
  bool prep = false;       // perm or norm: activations go through prep_activations
  int nparts = 0;          // row-constant partial sums per row (norm)
  size_t xs_off = 0, parts_off = 0, w_off = 0, c32_off = 0, total = 0;
  int64_t chunk_rows = 0;  // prefill: rows of W dequantized per chunk
  int64_t chunk_m = 0;     // prefill + cuBLAS + epilogue: rows of X per GEMM
  bool epilogue = false;   // prefill + cuBLAS: fp32 result, then epilogue
  size_t cb_smem = 0;      // gemv: dynamic shared memory for staged codebooks (0: global)
  int decode_mb = 0;       // gemv: MB of the kernel (layout of the prepared activations)
  bool fast = false;       // gemv: entry is a fast kernel (gemv_fast.cuh); cb_smem = its smem
  bool mma = false;        // gemv: entry is the tensor-core kernel (gemv_mma.cuh)
  bool split = false;      // mma + norm: x' as hi + lo (two T arrays)
  FastGeometry geom;       // gemv, fast or mma: the kernel's split-K geometry
};

size_t align_up(size_t n) { return (n + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

// decode: the decode path (M <= 8, or a slice of at most 16 rows for a tensor-core kernel's
// 16-row variant, call_plans), else prefill. A decode plan for more than 8 rows without a
// tensor-core kernel is a prefill plan (call_plans then slices by 8).
Plan plan(const LayerAttributes& a, DType dtype, int64_t m, bool exact_ok, bool fast_ok, bool decode) {
  Plan p;
  const size_t sz = dtype_size(dtype);
  const size_t I = static_cast<size_t>(a.in_features), O = static_cast<size_t>(a.out_features);
  p.prep = a.has_perm || a.has_norm;
  p.nparts = a.has_norm ? gpu::prep_parts(a.in_features) : 0;
  if (decode) p.entry = select_mma(a, dtype, m, fast_ok, &p.geom);
  p.gemv = decode && (m <= VPTQ_GEMV_MAX_M || p.entry >= 0);
  size_t off = 0;
  if (p.entry >= 0) {
    // tensor-core kernel: activations as T [m][I]; X itself unless perm / norm (prep, decode_mb
    // 0 = row-major T, -1 = hi / lo split)
    p.mma = p.fast = true;
    p.split = a.has_norm;
    p.decode_mb = p.split ? -1 : 0;
    if (p.prep) { p.xs_off = off; off += align_up((p.split ? 2 : 1) * static_cast<size_t>(m) * I * sz); }
    if (p.nparts) { p.parts_off = off; off += align_up(static_cast<size_t>(m) * p.nparts * sizeof(float)); }
    p.cb_smem = mma_entry_smem(a, kGemvTable[p.entry], p.geom.items, p.geom.pairs);
  } else if (p.gemv) {
    p.entry = select_fast(a, dtype, m, fast_ok, &p.geom);
    p.fast = p.entry >= 0;
    if (!p.fast) p.entry = select_gemv(dtype, a.vector_len, a.num_index_rows(), m, exact_ok);
    p.decode_mb = rows_per_launch(m);
    p.prep = p.prep || p.decode_mb > 1;  // M > 1: column-interleaved fp32 activations
    if (p.prep) { p.xs_off = off; off += align_up(static_cast<size_t>(p.decode_mb) * I * sizeof(float)); }
    if (p.nparts) { p.parts_off = off; off += align_up(static_cast<size_t>(p.decode_mb) * p.nparts * sizeof(float)); }
    const size_t v = static_cast<size_t>(a.vector_len), G = static_cast<size_t>(a.group_num);
    const size_t main_bytes = (G * a.num_centroids * v * sz + 15) / 16 * 16;
    const size_t res_bytes = G * a.num_res_centroids * v * sz;
    if (p.fast) p.cb_smem = fast_smem(a, dtype, p.decode_mb, p.geom.items);
    else if (main_bytes + res_bytes <= kSmemCodebookMaxBytes) p.cb_smem = main_bytes + res_bytes;
  } else {
    if (p.prep) { p.xs_off = off; off += align_up(static_cast<size_t>(m) * I * sz); }
    if (p.nparts) { p.parts_off = off; off += align_up(static_cast<size_t>(m) * p.nparts * sizeof(float)); }
    p.chunk_rows = std::max<int64_t>(1, std::min<int64_t>(O, dequant_chunk_bytes() / (I * sz)));
    if (p.chunk_rows < static_cast<int64_t>(O) && p.chunk_rows >= kDequantChunkRowAlign)
      p.chunk_rows = p.chunk_rows / kDequantChunkRowAlign * kDequantChunkRowAlign;
    p.w_off = off;
    off += align_up(static_cast<size_t>(p.chunk_rows) * I * sz);
    p.epilogue = a.has_bias || a.has_norm;
    if (p.epilogue) {
      p.chunk_m = std::max<int64_t>(
          1, std::min<int64_t>(m, kResultChunkMaxBytes / (static_cast<size_t>(p.chunk_rows) * sizeof(float))));
      p.c32_off = off;
      off += align_up(static_cast<size_t>(p.chunk_m) * p.chunk_rows * sizeof(float));
    }
  }
  p.total = off;
  return p;
}

bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

int log2_exact(int64_t n) {
  int b = 0;
  while ((int64_t{1} << b) < n) ++b;
  return b;
}

// What the kernels rely on for memory safety (adapters run layer.h validate() for the rest).
std::string check_attributes(const LayerAttributes& a) {
  auto bad = [](const std::string& what) { return "vptq::gemm_cuda: " + what; };
  if (a.in_features < 1 || a.out_features < 1)
    return bad("in_features and out_features must be >= 1, found " + std::to_string(a.in_features) +
               " and " + std::to_string(a.out_features));
  if (a.in_features > (int64_t{1} << 30) || a.out_features > (int64_t{1} << 30))
    return bad("in_features / out_features above 2^30 are not supported by the GPU kernels");
  if (a.vector_len < 1) return bad("vector_len must be >= 1, found " + std::to_string(a.vector_len));
  if (a.group_num < 1 || a.group_size < 0 || a.outlier_size < 0 ||
      a.outlier_size + a.group_num * a.group_size != a.in_features)
    return bad("outlier_size + group_num * group_size must equal in_features (" +
               std::to_string(a.outlier_size) + " + " + std::to_string(a.group_num) + " * " +
               std::to_string(a.group_size) + " != " + std::to_string(a.in_features) + ")");
  if (!is_pow2(a.num_centroids) || a.index_bits != log2_exact(a.num_centroids))
    return bad("num_centroids must be a power of two equal to 2^index_bits, found " +
               std::to_string(a.num_centroids) + " and index_bits " + std::to_string(a.index_bits));
  if (a.num_res_centroids < 0 || (a.num_res_centroids > 0 && !is_pow2(a.num_res_centroids)) ||
      a.res_index_bits != (a.num_res_centroids > 0 ? log2_exact(a.num_res_centroids) : 0))
    return bad("num_res_centroids must be 0 or a power of two equal to 2^res_index_bits, found " +
               std::to_string(a.num_res_centroids) + " and res_index_bits " +
               std::to_string(a.res_index_bits));
  if (a.total_index_bits() > 32)
    return bad("index_bits + res_index_bits must be <= 32, found " + std::to_string(a.total_index_bits()));
  if (a.num_centroids > (int64_t{1} << 30) || a.num_res_centroids > (int64_t{1} << 30))
    return bad("codebooks above 2^30 entries are not supported by the GPU kernels");
  if (a.outlier_size > 0 && (a.outlier_vector_len < 1 || !is_pow2(a.outlier_num_centroids)))
    return bad("outlier_size > 0 needs outlier_vector_len >= 1 and a power-of-two "
               "outlier_num_centroids, found " + std::to_string(a.outlier_vector_len) + " and " +
               std::to_string(a.outlier_num_centroids));
  return "";
}

std::string check_tensors(const LayerAttributes& a, const LayerTensors& t, const void* x, void* y) {
  auto missing = [](const char* name) {
    return std::string("vptq::gemm_cuda: input '") + name + "' is null but the attributes say it is present";
  };
  if (!x) return missing("X");
  if (!y) return "vptq::gemm_cuda: output Y is null";
  if (!t.packed_indices && a.total_index_bits() > 0) return missing("packed_indices");
  if (!t.centroids) return missing("centroids");
  if (a.has_residual() && !t.res_centroids) return missing("res_centroids");
  if (a.has_outliers() && !t.outlier_indices) return missing("outlier_indices");
  if (a.has_outliers() && !t.outlier_centroids) return missing("outlier_centroids");
  if (a.has_perm && !t.perm) return missing("perm");
  if (a.has_norm && !t.weight_scale) return missing("weight_scale");
  if (a.has_norm && !t.weight_bias) return missing("weight_bias");
  if (a.has_bias && !t.bias) return missing("bias");
  return "";
}


LayerView make_view(const LayerAttributes& a, const LayerTensors& t) {
  LayerView L;
  L.out_features = static_cast<int>(a.out_features);
  L.in_features = static_cast<int>(a.in_features);
  L.v = static_cast<int>(a.vector_len);
  L.k = static_cast<int>(a.num_centroids);
  L.k_res = static_cast<int>(a.num_res_centroids);
  L.groups = static_cast<int>(a.group_num);
  L.group_size = static_cast<int>(a.group_size);
  L.outlier_size = static_cast<int>(a.outlier_size);
  L.v_o = a.has_outliers() ? static_cast<int>(a.outlier_vector_len) : 1;
  L.k_o = a.has_outliers() ? static_cast<int>(a.outlier_num_centroids) : 1;
  L.index_bits = static_cast<int>(a.index_bits);
  L.bits = static_cast<int>(a.total_index_bits());
  L.words_per_row = static_cast<int>(a.packed_words_per_row());
  L.index_rows = static_cast<int>(a.num_index_rows());
  L.main_mask = static_cast<uint32_t>((uint64_t{1} << a.index_bits) - 1);
  L.res_mask = static_cast<uint32_t>((uint64_t{1} << a.res_index_bits) - 1);
  L.code_mask = static_cast<uint32_t>((uint64_t{1} << a.total_index_bits()) - 1);
  L.straddles = L.bits > 0 && (32 % L.bits) != 0;
  L.packed = reinterpret_cast<const uint32_t*>(t.packed_indices);
  L.cb = t.centroids;
  L.rcb = a.has_residual() ? t.res_centroids : nullptr;
  L.oidx = a.has_outliers() ? t.outlier_indices : nullptr;
  L.ocb = a.has_outliers() ? t.outlier_centroids : nullptr;
  return L;
}

int multiprocessors() { return std::max(1, device_attribute(kAttrSms, gpuDevAttrMultiProcessorCount, 1)); }

// Blocks per multiprocessor of a table entry at a dynamic shared-memory size (cached).
int blocks_per_sm(int entry, size_t smem) {
  static std::mutex mu;
  static size_t cached_smem[kGemvTableSize];
  static int cached_blocks[kGemvTableSize];
  std::lock_guard<std::mutex> lock(mu);
  if (cached_blocks[entry] > 0 && cached_smem[entry] == smem) return cached_blocks[entry];
  const int n = std::max(1, kGemvTable[entry].blocks_per_sm(smem));
  cached_smem[entry] = smem;
  cached_blocks[entry] = n;
  return n;
}

std::string launch_error(const char* what, gpuError_t e) {
  return std::string("vptq::gemm_cuda: launching ") + what + " failed: " + gpuGetErrorString(e);
}

#if VPTQ_HAS_BLAS && !VPTQ_HIP
const char* cublas_status(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

// C[rows, n] (col-major, ldc) = W[rows, K] (row-major, ld K) · A[n, K]^T, i.e. row-major
// Y[n, rows] = A · W^T. fp32 accumulation; fp32 inputs stay fp32 (no TF32).
std::string blas_gemm(cublasHandle_t h, DType dt, const void* w, const void* act, void* c,
                      bool c_fp32, int rows, int n, int K, int ldc, gpuStream_t stream) {
  const cudaDataType_t t = dt == DType::kFloat32 ? CUDA_R_32F : dt == DType::kFloat16 ? CUDA_R_16F : CUDA_R_16BF;
  const cudaDataType_t tc = c_fp32 ? CUDA_R_32F : t;
  const cublasComputeType_t compute =
      dt == DType::kFloat32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
  cublasStatus_t s = cublasSetStream(h, stream);
  if (s != CUBLAS_STATUS_SUCCESS) return std::string("vptq::gemm_cuda: cublasSetStream: ") + cublas_status(s);
  cublasPointerMode_t mode;
  cublasGetPointerMode(h, &mode);
  if (mode != CUBLAS_POINTER_MODE_HOST) cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST);
  const float alpha = 1.f, beta = 0.f;
  s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, K, &alpha, w, t, K, act, t, K, &beta, c, tc, ldc,
                   compute, CUBLAS_GEMM_DEFAULT);
  if (mode != CUBLAS_POINTER_MODE_HOST) cublasSetPointerMode(h, mode);
  if (s != CUBLAS_STATUS_SUCCESS) return std::string("vptq::gemm_cuda: cublasGemmEx: ") + cublas_status(s);
  return "";
}
#endif

__global__ void empty_launch_kernel(GemvArgs) {}

// The plans of one gemm_cuda call of m rows: *first for each launch of `rows` rows (the return
// value: m; or, for 8 < M <= chunked_decode_max_rows, decode slices of 16 rows, 8 where no 16-row
// kernel runs), *last for a shorter last slice (total 0 when there is none). The workspace is
// the larger of the two totals (a 1- or 2-row last slice may take a CUDA-core kernel with
// prepared activations where the full slices need none). fast_ok: weights 16-byte aligned
// (gemm_cuda_workspace_bytes and gemm_cuda_kernel_name assume so).
int64_t call_plans(const LayerAttributes& a, DType dtype, int64_t m, bool exact_ok, bool fast_ok, Plan* first,
                   Plan* last) {
  int64_t rows = m;
  if (m <= VPTQ_GEMV_MAX_M || m > chunked_decode_max_rows(a, dtype)) {
    *first = plan(a, dtype, m, exact_ok, fast_ok, m <= VPTQ_GEMV_MAX_M);
  } else {
    rows = std::min<int64_t>(m, kWideDecodeRows);
    *first = plan(a, dtype, rows, exact_ok, fast_ok, true);
    if (!first->gemv) {
      rows = VPTQ_GEMV_MAX_M;
      *first = plan(a, dtype, rows, exact_ok, fast_ok, true);
    }
  }
  *last = m % rows ? plan(a, dtype, m % rows, exact_ok, fast_ok, true) : Plan{};
  return rows;
}

std::string run_plan(const LayerAttributes& a, const LayerTensors& t, DType dtype, const Plan& p, const void* x,
                     void* y, int64_t m, void* workspace, void* blas_handle, void* stream_ptr);

}  // namespace

double gpu_empty_launch_host_us(void* stream_ptr, int launches) {
  auto stream = static_cast<gpuStream_t>(stream_ptr);
  const GemvArgs args;
  launches = std::max(1, launches);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < launches; ++i) empty_launch_kernel<<<1, 32, 0, stream>>>(args);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  return gpuGetLastError() == gpuSuccess ? us / launches : -1.0;
}

size_t gemm_cuda_workspace_bytes(const LayerAttributes& a, DType dtype, int64_t m) {
  if (m <= 0 || !check_attributes(a).empty()) return 0;
  Plan first, last;
  call_plans(a, dtype, m, true, true, &first, &last);
  return std::max(first.total, last.total);
}

const char* gemm_cuda_kernel_name(const LayerAttributes& a, DType dtype, int64_t m) {
  if (!check_attributes(a).empty()) return "unsupported";
  if (m <= 0) return "none";
  Plan p, last;
  call_plans(a, dtype, m, true, true, &p, &last);
  if (!p.gemv)
    return prefill_name(dtype, gpu::dequant_tiles_supported(static_cast<int>(a.vector_len), static_cast<int>(a.group_size),
                                                            static_cast<int>(a.outlier_size),
                                                            static_cast<int>(a.in_features)));
  return p.entry >= 0 ? kGemvTable[p.entry].name : "unsupported";
}

std::string gemm_cuda(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                      void* y, int64_t m, void* workspace, size_t workspace_bytes,
                      void* blas_handle, void* stream_ptr) {
  if (dtype != DType::kFloat32 && dtype != DType::kFloat16 && dtype != DType::kBFloat16)
    return "vptq::gemm_cuda: unsupported dtype " + std::to_string(static_cast<int>(dtype));
  if (m < 0) return "vptq::gemm_cuda: negative row count " + std::to_string(m);
  if (m == 0) return "";
  if (m > (int64_t{1} << 30)) return "vptq::gemm_cuda: more than 2^30 rows of X are not supported";
  std::string err = check_attributes(a);
  if (!err.empty()) return err;
  err = check_tensors(a, t, x, y);
  if (!err.empty()) return err;
  const bool exact_ok = gpu::aligned_to(t.centroids, 16) && (!a.has_residual() || gpu::aligned_to(t.res_centroids, 16));
  const bool fast_ok = exact_ok && (a.total_index_bits() == 0 || gpu::aligned_to(t.packed_indices, 16));
  Plan first, last;
  const int64_t rows = call_plans(a, dtype, m, exact_ok, fast_ok, &first, &last);
  const size_t need = std::max(first.total, last.total);
  if (workspace_bytes < need || (need > 0 && !workspace))
    return "vptq::gemm_cuda: workspace of " + std::to_string(workspace_bytes) + " bytes at " +
           (workspace ? "a valid pointer" : "null") + ", but " + std::to_string(need) +
           " bytes are needed (gemm_cuda_workspace_bytes)";
  // one launch sequence, or decode slices of `rows` rows (chunked_decode_max_rows), checked and
  // planned once
  const size_t sz = dtype_size(dtype);
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    const int64_t mr = std::min<int64_t>(rows, m - r0);
    err = run_plan(a, t, dtype, mr == rows ? first : last, static_cast<const unsigned char*>(x) + r0 * a.in_features * sz,
                   static_cast<unsigned char*>(y) + r0 * a.out_features * sz, mr, workspace, blas_handle, stream_ptr);
    if (!err.empty()) return err;
  }
  return "";
}

namespace {

// One launch sequence of gemm_cuda for m rows under plan p (arguments checked, workspace large
// enough).
std::string run_plan(const LayerAttributes& a, const LayerTensors& t, DType dtype, const Plan& p, const void* x,
                     void* y, int64_t m, void* workspace, void* blas_handle, void* stream_ptr) {
  std::string err;
  auto* ws = static_cast<unsigned char*>(workspace);
  auto stream = static_cast<gpuStream_t>(stream_ptr);
  const LayerView L = make_view(a, t);
  const int M = static_cast<int>(m), I = L.in_features, O = L.out_features;
  float* parts = p.nparts ? reinterpret_cast<float*>(ws + p.parts_off) : nullptr;
  gpuError_t e;

  if (p.prep) {
    e = gpu::launch_prep_activations(dtype, x, a.has_perm ? t.perm : nullptr,
                                     a.has_norm ? t.weight_scale : nullptr,
                                     a.has_norm ? t.weight_bias : nullptr, ws + p.xs_off,
                                     p.gemv ? p.decode_mb : 0, parts, M, I, stream);
    if (e != gpuSuccess) return launch_error("prep_activations", e);
  }

  if (p.gemv) {
    if (p.entry < 0) return "vptq::gemm_cuda: no decode kernel for this configuration";
    const GemvEntry& k = kGemvTable[p.entry];
    GemvArgs g;
    g.L = L;
    g.x = x;
    g.xs = p.prep ? reinterpret_cast<const float*>(ws + p.xs_off) : nullptr;
    g.row_const_parts = parts;
    g.row_const_nparts = p.nparts;
    g.bias = a.has_bias ? t.bias : nullptr;
    g.y = y;
    g.m = M;
    g.slices = static_cast<int>((a.vector_len + k.vt - 1) / k.vt);
    int64_t grid;
    if (p.mma) {
      const FastGeometry& f = p.geom;
      g.rows_per_tile = f.rows_per_tile;
      g.chunks_per_row = f.chunks;
      g.units_per_item = f.units;
      if (p.prep) {
        g.x = ws + p.xs_off;
        if (p.split) g.x_lo = ws + p.xs_off + static_cast<size_t>(M) * I * dtype_size(dtype);
      }
      g.xs = nullptr;
      grid = std::min<int64_t>(f.tiles, int64_t{multiprocessors()} * blocks_per_sm(p.entry, p.cb_smem));
    } else if (p.fast) {
      const FastGeometry& f = p.geom;
      g.rows_per_tile = f.rows_per_tile;
      g.chunks_per_row = f.chunks;
      g.units_per_item = f.units;
      const int row_bytes = L.v * static_cast<int>(dtype_size(dtype));
      const bool staged = gpu::fast_cb_in_smem(L.index_bits, row_bytes) ||
                          (L.k_res > 0 && gpu::fast_cb_in_smem(L.bits - L.index_bits, row_bytes));
      grid = staged ? std::min<int64_t>(f.tiles, int64_t{multiprocessors()} * blocks_per_sm(p.entry, p.cb_smem))
                    : f.tiles;
    } else {
      g.cb_in_smem = p.cb_smem > 0;
      const int64_t tiles = (a.num_index_rows() + k.r - 1) / k.r * g.slices;
      grid = tiles;
      if (g.cb_in_smem) grid = std::min<int64_t>(tiles, int64_t{multiprocessors()} * blocks_per_sm(p.entry, p.cb_smem));
    }
    grid = std::max<int64_t>(1, std::min<int64_t>(grid, 0x7fffffff));
    e = k.launch(g, p.cb_smem, static_cast<int>(grid), stream);
    if (e != gpuSuccess) return launch_error(k.name, e);
    return "";
  }

  // ---- prefill: dequantize row chunks of W, then GEMM
  const void* act = p.prep ? static_cast<const void*>(ws + p.xs_off) : x;
  void* wbuf = ws + p.w_off;
  const size_t sz = dtype_size(dtype);
  const int sms = multiprocessors();
  for (int64_t row0 = 0; row0 < O; row0 += p.chunk_rows) {
    const int rows = static_cast<int>(std::min<int64_t>(p.chunk_rows, O - row0));
    e = gpu::launch_dequant_rows(dtype, L, wbuf, static_cast<int>(row0), rows, sms, stream);
    if (e != gpuSuccess) return launch_error("dequant_rows", e);
#if VPTQ_HAS_BLAS && !VPTQ_HIP
    if (blas_handle) {
      auto h = static_cast<cublasHandle_t>(blas_handle);
      if (p.epilogue) {
        auto* c32 = reinterpret_cast<float*>(ws + p.c32_off);
        for (int64_t m0 = 0; m0 < M; m0 += p.chunk_m) {
          const int mc = static_cast<int>(std::min<int64_t>(p.chunk_m, M - m0));
          err = blas_gemm(h, dtype, wbuf, static_cast<const unsigned char*>(act) + m0 * I * sz, c32,
                          true, rows, mc, I, rows, stream);
          if (!err.empty()) return err;
          e = gpu::launch_epilogue(dtype, c32, mc, rows, static_cast<int>(m0), static_cast<int>(row0),
                                   parts, p.nparts, a.has_bias ? t.bias : nullptr, y, O, stream);
          if (e != gpuSuccess) return launch_error("epilogue", e);
        }
      } else {
        err = blas_gemm(h, dtype, wbuf, act, static_cast<unsigned char*>(y) + row0 * sz, false, rows, M,
                        I, O, stream);
        if (!err.empty()) return err;
      }
      continue;
    }
#else
    (void)blas_handle;
#endif
    e = gpu::launch_tiled_gemm(dtype, act, wbuf, M, rows, I, parts, p.nparts,
                               a.has_bias ? t.bias : nullptr, y, O, static_cast<int>(row0), stream);
    if (e != gpuSuccess) return launch_error("tiled_gemm", e);
  }
  return "";
}

}  // namespace
}  // namespace vptq
