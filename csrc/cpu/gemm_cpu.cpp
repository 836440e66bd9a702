// vptq::gemm_cpu: VPTQGemm on the CPU (docs/op-spec.md, "Math"), fp32 accumulation.
//
// Per call:
//  1. X is gathered once into stored column order with the norm scale folded in,
//     xs[m, s] = X[m, perm[s]] * weight_scale[perm[s]], and xb[m] = sum_i X[m, i] * weight_bias[i]
//     (the norm bias adds the same value to every output of a row);
//  2. fp16 / bf16 codebooks are widened to fp32 once (fp32 ones are used in place);
//  3. the output rows are split into tasks of whole index rows (v outputs each). A task walks its
//     index rows; per (index row, group, column tile) it decodes the tile's codes once into
//     main / residual index arrays, then either (M = 1) gathers codebook rows straight into v
//     register accumulators, or (M > 1) dequantizes the tile once (C[main] + R[res], v x tile)
//     and reuses it for every activation row;
//  4. the outlier columns (their own codebook and vector length) are added per output row range,
//     then xb, the output bias, and the rounding to the activation type.
// Each output element is summed in a fixed order that does not depend on the thread count, so
// results are bitwise identical for any num_threads / executor.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "vptq/cpu.h"
#include "vptq/float_bits.h"
#include "vptq/packed_index.h"

namespace vptq {
namespace {

constexpr int64_t kTileCols = 256;  // columns decoded per tile (a multiple of 32)
constexpr int64_t kMinFlopsPerTask = 1 << 17;  // below this a task is not worth a thread
constexpr int kTasksPerThread = 4;          // load balance: tasks per unit of concurrency

inline float load_float(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::kFloat32: return static_cast<const float*>(p)[i];
    case DType::kFloat16: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::kBFloat16: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
  }
  return 0.f;
}

inline void store_float(void* p, DType t, int64_t i, float value) {
  switch (t) {
    case DType::kFloat32: static_cast<float*>(p)[i] = value; return;
    case DType::kFloat16: static_cast<uint16_t*>(p)[i] = float_to_half(value); return;
    case DType::kBFloat16: static_cast<uint16_t*>(p)[i] = float_to_bf16(value); return;
  }
}

void widen(const void* src, DType t, int64_t begin, int64_t end, float* dst) {
  if (t == DType::kFloat16) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = begin; i < end; ++i) dst[i] = half_to_float(s[i]);
  } else if (t == DType::kBFloat16) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = begin; i < end; ++i) dst[i] = bf16_to_float(s[i]);
  } else {
    std::memcpy(dst + begin, static_cast<const float*>(src) + begin, (end - begin) * sizeof(float));
  }
}

// ------------------------------------------------------------------ executors

// Runs f(i) for i in [0, n) on the executor; collects the first exception message.
template <typename F>
std::string parallel_for(const CpuExecutor& ex, size_t n, F&& f) {
  struct Shared {
    F* f;
    std::mutex mu;
    std::string error;
    std::atomic<bool> failed{false};
  } shared{&f, {}, {}, {}};
  auto call = [](void* c, size_t i) {
    auto* sh = static_cast<Shared*>(c);
    if (sh->failed.load(std::memory_order_relaxed)) return;
    try {
      (*sh->f)(i);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(sh->mu);
      if (!sh->failed.exchange(true)) sh->error = e.what();
    } catch (...) {
      std::lock_guard<std::mutex> lock(sh->mu);
      if (!sh->failed.exchange(true)) sh->error = "unknown exception";
    }
  };
  if (n == 0) return "";
  if (!ex.run || n == 1 || ex.concurrency <= 1) {
    for (size_t i = 0; i < n; ++i) call(&shared, i);
  } else {
    ex.run(ex.ctx, call, &shared, n);
  }
  return shared.error;
}

// std::thread executor: ctx points at the thread count. Threads are started per call (gemm_cpu
// keeps no state); if the system refuses a thread the remaining ones do its share.
void run_on_threads(void* ctx, void (*fn)(void*, size_t), void* fn_ctx, size_t n) {
  const size_t threads = std::min<size_t>(static_cast<size_t>(*static_cast<int*>(ctx)), n);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) fn(fn_ctx, i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;
    }
  }
  worker();
  for (auto& th : pool) th.join();
}

// ------------------------------------------------------------------ the problem

struct Problem {
  int64_t M, I, O, v, G, gs, os, NI, W, k, kr, vo, ko;
  int T, ib, rb;
  uint32_t main_mask, res_mask;
  const uint32_t* packed;
  const float* C;   // [G, k, v]
  const float* R;   // [G, kr, v] or null
  const float* Co;  // [1, ko, vo] or null
  const int32_t* oidx;
  const float* xs;  // [M, I] stored order, scale folded
  const float* xb;  // [M] or null
  const float* ob;  // [O] or null
  float* yacc;      // [M, O]
  DType dtype;
  void* y;
  std::atomic<int64_t>* bad_outlier;  // first out-of-range outlier index seen (-1: none)
};

struct Scratch {
  std::vector<uint32_t> mi, ri;
  std::vector<float> wt, acc;
};


// ------------------------------------------------------------------ inner loops
// 4-lane SIMD: SSE on x86-64 (always present), GCC / Clang vector extensions elsewhere (NEON...).
// Explicit vectors keep the compiler from re-vectorising the gathers across columns. Two
// accumulator sets (even / odd columns) hide the add latency; the summation order is fixed, so
// results do not depend on threading.
#if defined(__SSE2__)
using vec4 = __m128;
inline vec4 load4(const float* p) { return _mm_loadu_ps(p); }
inline void store4(float* p, vec4 v) { _mm_storeu_ps(p, v); }
inline vec4 splat4(float x) { return _mm_set1_ps(x); }
inline vec4 zero4() { return _mm_setzero_ps(); }
inline vec4 add4(vec4 a, vec4 b) { return _mm_add_ps(a, b); }
inline vec4 madd4(vec4 acc, vec4 x, vec4 w) { return _mm_add_ps(acc, _mm_mul_ps(x, w)); }
#else
using vec4 = float __attribute__((vector_size(16)));
inline vec4 load4(const float* p) { vec4 v; std::memcpy(&v, p, 16); return v; }
inline void store4(float* p, vec4 v) { std::memcpy(p, &v, 16); }
inline vec4 splat4(float x) { return vec4{x, x, x, x}; }
inline vec4 zero4() { return vec4{0.f, 0.f, 0.f, 0.f}; }
inline vec4 add4(vec4 a, vec4 b) { return a + b; }
inline vec4 madd4(vec4 acc, vec4 x, vec4 w) { return acc + x * w; }
#endif

// Lanes per vector for vector length V (0: scalar path).
constexpr int lanes_for(int V) { return V > 0 && V % 4 == 0 ? 4 : 0; }

// acc[0..v) += sum_c x[c] * (C[mi[c]] + R[ri[c]])   (R only when RES)
template <int V, bool RES>
void gather_dot(const float* x, const uint32_t* mi, const uint32_t* ri, const float* C,
                const float* R, int64_t n, int64_t v_rt, float* acc) {
  constexpr int L = lanes_for(V);
  if constexpr (L > 0) {
    constexpr int NV = V / L;
    vec4 a0[NV], a1[NV];
    for (int q = 0; q < NV; ++q) {
      a0[q] = load4(acc + q * L);
      a1[q] = zero4();
    }
    int64_t c = 0;
    for (; c + 1 < n; c += 2) {
      const float* c0 = C + static_cast<int64_t>(mi[c]) * V;
      const float* c1 = C + static_cast<int64_t>(mi[c + 1]) * V;
      const vec4 x0 = splat4(x[c]), x1 = splat4(x[c + 1]);
      if constexpr (RES) {
        const float* r0 = R + static_cast<int64_t>(ri[c]) * V;
        const float* r1 = R + static_cast<int64_t>(ri[c + 1]) * V;
        for (int q = 0; q < NV; ++q) {
          a0[q] = madd4(a0[q], x0, add4(load4(c0 + q * L), load4(r0 + q * L)));
          a1[q] = madd4(a1[q], x1, add4(load4(c1 + q * L), load4(r1 + q * L)));
        }
      } else {
        for (int q = 0; q < NV; ++q) {
          a0[q] = madd4(a0[q], x0, load4(c0 + q * L));
          a1[q] = madd4(a1[q], x1, load4(c1 + q * L));
        }
      }
    }
    if (c < n) {
      const float* c0 = C + static_cast<int64_t>(mi[c]) * V;
      const vec4 x0 = splat4(x[c]);
      for (int q = 0; q < NV; ++q) {
        vec4 w = load4(c0 + q * L);
        if constexpr (RES) w = add4(w, load4(R + static_cast<int64_t>(ri[c]) * V + q * L));
        a0[q] = madd4(a0[q], x0, w);
      }
    }
    for (int q = 0; q < NV; ++q) store4(acc + q * L, add4(a0[q], a1[q]));
  } else {
    const int64_t v = V ? V : v_rt;
    for (int64_t c = 0; c < n; ++c) {
      const float xv = x[c];
      const float* cp = C + static_cast<int64_t>(mi[c]) * v;
      if constexpr (RES) {
        const float* rp = R + static_cast<int64_t>(ri[c]) * v;
        for (int64_t j = 0; j < v; ++j) acc[j] += xv * (cp[j] + rp[j]);
      } else {
        for (int64_t j = 0; j < v; ++j) acc[j] += xv * cp[j];
      }
    }
  }
}

// acc[0..v) += sum_c x[c] * wt[c*v .. c*v+v)   (a dequantized tile, v contiguous per column)
template <int V>
void tile_dot(const float* x, const float* wt, int64_t n, int64_t v_rt, float* acc) {
  constexpr int L = lanes_for(V);
  if constexpr (L > 0) {
    constexpr int NV = V / L;
    vec4 a0[NV], a1[NV];
    for (int q = 0; q < NV; ++q) {
      a0[q] = load4(acc + q * L);
      a1[q] = zero4();
    }
    int64_t c = 0;
    for (; c + 1 < n; c += 2) {
      const vec4 x0 = splat4(x[c]), x1 = splat4(x[c + 1]);
      for (int q = 0; q < NV; ++q) {
        a0[q] = madd4(a0[q], x0, load4(wt + c * V + q * L));
        a1[q] = madd4(a1[q], x1, load4(wt + (c + 1) * V + q * L));
      }
    }
    if (c < n) {
      const vec4 x0 = splat4(x[c]);
      for (int q = 0; q < NV; ++q) a0[q] = madd4(a0[q], x0, load4(wt + c * V + q * L));
    }
    for (int q = 0; q < NV; ++q) store4(acc + q * L, add4(a0[q], a1[q]));
  } else {
    const int64_t v = V ? V : v_rt;
    for (int64_t c = 0; c < n; ++c) {
      const float xv = x[c];
      const float* w = wt + c * v;
      for (int64_t j = 0; j < v; ++j) acc[j] += xv * w[j];
    }
  }
}

// Decodes codes [c0, c0 + n) of a packed row (c0 a multiple of 32, so the block starts on a word
// boundary). T is a compile-time constant: in blocks of 32 codes (T words) every shift and word
// offset folds to a constant; a tail of < 32 codes uses the generic decoder.
template <int T>
void decode_codes(const uint32_t* row, int64_t c0, int64_t n, uint32_t* __restrict codes) {
  const uint32_t* words = row + c0 / 32 * T;
  constexpr uint32_t mask = T >= 32 ? 0xFFFFFFFFu : ((1u << (T % 32)) - 1u);
  int64_t c = 0;
  for (; c + 32 <= n; c += 32, words += T) {
#pragma GCC unroll 32
    for (int e = 0; e < 32; ++e) {
      const int bit = e * T, w = bit >> 5, sh = bit & 31;
      uint64_t both = words[w];
      if (sh + T > 32) both |= static_cast<uint64_t>(words[w + 1]) << 32;
      codes[c + e] = static_cast<uint32_t>(both >> sh) & mask;
    }
  }
  for (int64_t e = 0; c < n; ++c, ++e) codes[c] = packed_code(words, e, T);
}

using DecodeFn = void (*)(const uint32_t*, int64_t, int64_t, uint32_t*);

template <int... Ts>
DecodeFn decoder_for(int bits, std::integer_sequence<int, Ts...>) {
  DecodeFn table[] = {&decode_codes<Ts + 1>...};
  return table[bits - 1];
}
DecodeFn decoder_for(int bits) {  // bits in 1..32
  return decoder_for(bits, std::make_integer_sequence<int, 32>{});
}

// Main (non-outlier) columns of index rows [r0, r1): yacc[:, r*v .. r*v+v) = partial sums.
template <int V>
void main_rows(const Problem& p, int64_t r0, int64_t r1, Scratch& s) {
  const int64_t v = V ? V : p.v;
  const int64_t M = p.M;
  s.mi.resize(kTileCols);
  s.ri.resize(kTileCols);
  s.acc.assign(M * v, 0.f);
  if (M > 1) s.wt.resize(kTileCols * v);
  uint32_t* mi = s.mi.data();
  uint32_t* ri = s.ri.data();
  float* acc = s.acc.data();
  // Locals, not p.*: the index stores below may alias p's fields as far as the compiler knows.
  const int ib = p.ib, rb = p.rb;
  const uint32_t main_mask = p.main_mask, res_mask = p.res_mask;
  const DecodeFn decode = decoder_for(p.T);
  for (int64_t r = r0; r < r1; ++r) {
    std::fill(s.acc.begin(), s.acc.end(), 0.f);
    for (int64_t g = 0; g < p.G; ++g) {
      const uint32_t* row = p.packed + (g * p.NI + r) * p.W;
      const float* Cg = p.C + g * p.k * v;
      const float* Rg = p.R ? p.R + g * p.kr * v : nullptr;
      for (int64_t c0 = 0; c0 < p.gs; c0 += kTileCols) {
        const int64_t n = std::min(kTileCols, p.gs - c0);
        decode(row, c0, n, mi);
        if (rb) {
          for (int64_t c = 0; c < n; ++c) {
            ri[c] = (mi[c] >> ib) & res_mask;
            mi[c] &= main_mask;
          }
        }
        const int64_t col = p.os + g * p.gs + c0;
        if (M == 1) {
          const float* x = p.xs + col;
          if (Rg)
            gather_dot<V, true>(x, mi, ri, Cg, Rg, n, v, acc);
          else
            gather_dot<V, false>(x, mi, ri, Cg, Rg, n, v, acc);
        } else {
          // Dequantize the tile once (v contiguous values per column), reuse it for every row.
          float* wt = s.wt.data();
          for (int64_t c = 0; c < n; ++c) {
            const float* cp = Cg + static_cast<int64_t>(mi[c]) * v;
            float* w = wt + c * v;
            if (Rg) {
              const float* rp = Rg + static_cast<int64_t>(ri[c]) * v;
              for (int64_t j = 0; j < v; ++j) w[j] = cp[j] + rp[j];
            } else {
              for (int64_t j = 0; j < v; ++j) w[j] = cp[j];
            }
          }
          for (int64_t m = 0; m < M; ++m) tile_dot<V>(p.xs + m * p.I + col, wt, n, v, acc + m * v);
        }
      }
    }
    const int64_t o0 = r * v;
    const int64_t count = std::min(v, p.O - o0);
    for (int64_t m = 0; m < M; ++m)
      std::memcpy(p.yacc + m * p.O + o0, acc + m * v, count * sizeof(float));
  }
}

// Outlier columns (stored columns [0, os)) for output rows [o0, o1): yacc += their sums.
void outlier_rows(const Problem& p, int64_t o0, int64_t o1, Scratch& s) {
  const int64_t vo = p.vo, M = p.M;
  s.acc.resize(M * vo);
  float* acc = s.acc.data();
  for (int64_t rr = o0 / vo; rr * vo < o1; ++rr) {
    const int64_t base = rr * vo;
    const int64_t ja = std::max<int64_t>(o0 - base, 0);
    const int64_t jb = std::min(o1 - base, vo);
    std::fill(acc, acc + M * vo, 0.f);
    const int32_t* row = p.oidx + rr * p.os;
    for (int64_t s_col = 0; s_col < p.os; ++s_col) {
      const uint32_t idx = static_cast<uint32_t>(row[s_col]);
      if (idx >= static_cast<uint64_t>(p.ko)) {
        int64_t none = -1;
        p.bad_outlier->compare_exchange_strong(none, static_cast<int64_t>(idx));
        continue;
      }
      const float* cp = p.Co + static_cast<int64_t>(idx) * vo;
      for (int64_t m = 0; m < M; ++m) {
        const float xv = p.xs[m * p.I + s_col];
        float* a = acc + m * vo;
        for (int64_t j = ja; j < jb; ++j) a[j] += xv * cp[j];
      }
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = ja; j < jb; ++j) p.yacc[m * p.O + base + j] += acc[m * vo + j];
  }
}

void finish_rows(const Problem& p, int64_t o0, int64_t o1) {
  for (int64_t m = 0; m < p.M; ++m) {
    const float add = p.xb ? p.xb[m] : 0.f;
    const float* src = p.yacc + m * p.O;
    for (int64_t o = o0; o < o1; ++o) {
      float value = src[o] + add;
      if (p.ob) value += p.ob[o];
      store_float(p.y, p.dtype, m * p.O + o, value);
    }
  }
}

using MainFn = void (*)(const Problem&, int64_t, int64_t, Scratch&);

MainFn main_kernel(int64_t v) {
  switch (v) {
    case 1: return &main_rows<1>;
    case 2: return &main_rows<2>;
    case 4: return &main_rows<4>;
    case 6: return &main_rows<6>;
    case 8: return &main_rows<8>;
    case 12: return &main_rows<12>;
    case 16: return &main_rows<16>;
    default: return &main_rows<0>;
  }
}

std::string run(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                void* y, int64_t M, const CpuExecutor& ex) {
  std::string err = validate(a);
  if (!err.empty()) return err;
  if (M < 0) return "gemm_cpu: negative row count";
  if (M == 0) return "";
  if (!x || !y || !t.packed_indices || !t.centroids) return "gemm_cpu: null X, Y, indices or centroids";
  if (a.has_residual() && !t.res_centroids) return "gemm_cpu: res_centroids missing";
  if (a.has_outliers() && (!t.outlier_indices || !t.outlier_centroids))
    return "gemm_cpu: outlier_indices / outlier_centroids missing";
  if (a.has_perm && !t.perm) return "gemm_cpu: perm missing";
  if (a.has_norm && (!t.weight_scale || !t.weight_bias))
    return "gemm_cpu: weight_scale / weight_bias missing";
  if (a.has_bias && !t.bias) return "gemm_cpu: bias missing";

  const int64_t I = a.in_features, O = a.out_features, v = a.vector_len, G = a.group_num;
  const int64_t k = a.num_centroids, kr = a.num_res_centroids;
  const int64_t vo = a.outlier_vector_len, ko = a.outlier_num_centroids;
  const int concurrency = ex.run ? std::max(1, ex.concurrency) : 1;

  // 1. X in stored order with the norm folded in.
  std::vector<float> xs(static_cast<size_t>(M * I));
  std::vector<float> xb;
  if (a.has_perm) {
    for (int64_t s = 0; s < I; ++s)
      if (t.perm[s] < 0 || t.perm[s] >= I)
        return "input 'perm': value " + std::to_string(t.perm[s]) + " at position " +
               std::to_string(s) + " is outside [0, in_features = " + std::to_string(I) + ")";
  }
  {
    std::vector<float> scale, xrow(static_cast<size_t>(I));
    if (a.has_norm) {
      scale.resize(I);
      widen(t.weight_scale, dtype, 0, I, scale.data());
      std::vector<float> wb(static_cast<size_t>(I));
      widen(t.weight_bias, dtype, 0, I, wb.data());
      xb.assign(static_cast<size_t>(M), 0.f);
      for (int64_t m = 0; m < M; ++m) {
        widen(x, dtype, m * I, m * I + I, xs.data());  // xs row m, original order (temporarily)
        float sum = 0.f;
        const float* xr = xs.data() + m * I;
        for (int64_t i = 0; i < I; ++i) sum += xr[i] * wb[i];
        xb[m] = sum;
      }
    } else {
      widen(x, dtype, 0, M * I, xs.data());
    }
    if (a.has_perm || a.has_norm) {
      for (int64_t m = 0; m < M; ++m) {
        float* xr = xs.data() + m * I;
        std::memcpy(xrow.data(), xr, I * sizeof(float));
        for (int64_t s = 0; s < I; ++s) {
          const int64_t i = a.has_perm ? t.perm[s] : s;
          xr[s] = a.has_norm ? xrow[i] * scale[i] : xrow[i];
        }
      }
    }
  }

  // 2. fp32 codebooks and output bias.
  std::vector<float> c32, r32, o32, ob;
  const float* C = static_cast<const float*>(t.centroids);
  const float* R = a.has_residual() ? static_cast<const float*>(t.res_centroids) : nullptr;
  const float* Co = a.has_outliers() ? static_cast<const float*>(t.outlier_centroids) : nullptr;
  if (dtype != DType::kFloat32) {
    struct Book { const void* src; int64_t n; std::vector<float>* dst; const float** view; };
    std::vector<Book> books = {{t.centroids, G * k * v, &c32, &C}};
    if (a.has_residual()) books.push_back({t.res_centroids, G * kr * v, &r32, &R});
    if (a.has_outliers()) books.push_back({t.outlier_centroids, ko * vo, &o32, &Co});
    constexpr int64_t kChunk = 1 << 16;
    std::vector<std::pair<size_t, int64_t>> chunks;  // (book, start)
    for (size_t b = 0; b < books.size(); ++b) {
      books[b].dst->resize(static_cast<size_t>(books[b].n));
      *books[b].view = books[b].dst->data();
      for (int64_t s = 0; s < books[b].n; s += kChunk) chunks.emplace_back(b, s);
    }
    err = parallel_for(ex, chunks.size(), [&](size_t i) {
      const Book& b = books[chunks[i].first];
      const int64_t s = chunks[i].second;
      widen(b.src, dtype, s, std::min(b.n, s + kChunk), b.dst->data());
    });
    if (!err.empty()) return "gemm_cpu: " + err;
  }
  if (a.has_bias) {
    ob.resize(static_cast<size_t>(O));
    widen(t.bias, dtype, 0, O, ob.data());
  }

  // 3./4. Output rows in tasks of whole index rows.
  std::vector<float> ybuf;
  float* yacc = static_cast<float*>(y);
  if (dtype != DType::kFloat32) {
    ybuf.resize(static_cast<size_t>(M * O));
    yacc = ybuf.data();
  }
  std::atomic<int64_t> bad_outlier{-1};
  Problem p{};
  p.M = M; p.I = I; p.O = O; p.v = v; p.G = G; p.gs = a.group_size; p.os = a.outlier_size;
  p.NI = a.num_index_rows(); p.W = a.packed_words_per_row(); p.k = k; p.kr = kr;
  p.vo = vo; p.ko = ko;
  p.T = static_cast<int>(a.total_index_bits());
  p.ib = static_cast<int>(a.index_bits);
  p.rb = static_cast<int>(a.res_index_bits);
  p.main_mask = low_bits_mask(p.ib);
  p.res_mask = low_bits_mask(p.rb);
  p.packed = reinterpret_cast<const uint32_t*>(t.packed_indices);
  p.C = C; p.R = R; p.Co = Co; p.oidx = t.outlier_indices;
  p.xs = xs.data(); p.xb = xb.empty() ? nullptr : xb.data(); p.ob = ob.empty() ? nullptr : ob.data();
  p.yacc = yacc; p.dtype = dtype; p.y = y; p.bad_outlier = &bad_outlier;

  const double flops_per_row = 2.0 * static_cast<double>(I) * v * M;
  int64_t tasks = std::min<int64_t>(p.NI, int64_t{concurrency} * kTasksPerThread);
  tasks = std::min<int64_t>(tasks, std::max<int64_t>(
      1, static_cast<int64_t>(flops_per_row * p.NI / kMinFlopsPerTask)));
  if (concurrency <= 1) tasks = 1;
  const int64_t rows_per_task = (p.NI + tasks - 1) / tasks;
  tasks = (p.NI + rows_per_task - 1) / rows_per_task;
  const MainFn kernel = main_kernel(v);
  err = parallel_for(ex, static_cast<size_t>(tasks), [&](size_t i) {
    Scratch scratch;
    const int64_t r0 = static_cast<int64_t>(i) * rows_per_task;
    const int64_t r1 = std::min(p.NI, r0 + rows_per_task);
    const int64_t o0 = r0 * v, o1 = std::min(O, r1 * v);
    kernel(p, r0, r1, scratch);
    if (a.has_outliers()) outlier_rows(p, o0, o1, scratch);
    if (dtype != DType::kFloat32 || p.xb || p.ob) finish_rows(p, o0, o1);
  });
  if (!err.empty()) return "gemm_cpu: " + err;
  if (bad_outlier.load() >= 0)
    return "input 'outlier_indices': value " + std::to_string(bad_outlier.load()) +
           " is outside [0, outlier_num_centroids = " + std::to_string(ko) + ")";
  return "";
}

}  // namespace

std::string gemm_cpu(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                     void* y, int64_t m, const CpuExecutor& executor) {
  try {
    return run(a, t, dtype, x, y, m, executor);
  } catch (const std::bad_alloc&) {
    return "gemm_cpu: out of memory";
  } catch (const std::exception& e) {
    return std::string("gemm_cpu: ") + e.what();
  }
}

std::string gemm_cpu(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                     void* y, int64_t m, int num_threads) {
  int threads = num_threads > 0 ? num_threads
                                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CpuExecutor ex;
  if (threads > 1) {
    ex.run = &run_on_threads;
    ex.ctx = &threads;
    ex.concurrency = threads;
  }
  return gemm_cpu(a, t, dtype, x, y, m, ex);
}

}  // namespace vptq
