// NSA forward and backward time on a GPU against PyTorch's dense causal SDPA, at fla's shape (64
// query heads, 4 key/value heads, D 128), Qwen3-0.6B's (16 and 8, D 128) and Qwen3-4B's (32 and
// 8, D 128), bf16, batch 1.
// Prints a markdown table: the median of `reps` timed runs (after one warm-up) of
//   NsaAttend            the whole layer as the model calls it (the compressed branch on
//                        PyTorch's fused attention, the selection and the selected branch on our
//                        kernels, the window on its wgmma kernels or FlashAttention)
//   compressed+selection NsaCompressedAndSelect alone: o_cmp and the block indices
//   selected kernels     NsaSelectedAttention alone on precomputed block indices
//   selected fwd         its forward alone, by query blocks or by key block (NsaForwardPath;
//                        by key block in one pass, on the compressed branch's log-sum-exp)
//   selected bwd         its backward alone, dq by the dq kernel or in the dk/dv kernel
//                        (NsaDqPath)
//   window branch        with a window, the branch alone: on FlashAttention and on its wgmma
//                        kernels (nsa_window.h), and on the selected kernels over the window's
//                        blocks
//   SDPA                 at::scaled_dot_product_attention, causal, k and v repeated to H heads;
//                        up to 128K tokens (past it, quadratic: 29 s a forward and backward at
//                        1M on Qwen3-0.6B's shape by extrapolation)
// each as forward alone and forward + backward (the window branch: forward + backward only), in
// milliseconds. The inputs' gradients are cleared before each run, as a training step's
// zero_grad(set_to_none) and Triton's do_bench(grad_to_none=...) do: otherwise every backward
// after the first adds its dq into q.grad, a [B, H, T, D] sum (0.7 ms at fla's shape and 64K on
// an H200) that a model, whose q is no leaf, never runs. The Qwen3 shapes also have rows at 512K
// and 1M tokens, the contexts only NSA cells have: they run when max T reaches them. A cell that
// fails (out of memory, at the longest contexts) reads nan, and a comment after its row says what
// failed.
//
// Usage: nsa_benchmark [reps (default 5)] [max T (default 131072)] [window (default 512; 0:
//        no sliding-window branch, to compare with fla where flash-attn is missing)] [shape: fla,
//        qwen3-0.6b or qwen3-4b; given, only that shape at max T runs (a profiler's run)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/attention/nsa_compressed.h"
#include "trainer_lib/attention/nsa_cuda.h"
#include "trainer_lib/attention/nsa_window.h"

namespace {

using ablate::train::NsaOptions;

// The median of `reps` timed runs after one warm-up, the leaves' gradients cleared (untimed)
// before each.
double MedianMs(const std::function<void()>& run, int reps,
                const std::vector<torch::Tensor>& leaves = {}) {
  auto clear_grads = [&] {
    for (torch::Tensor leaf : leaves) leaf.mutable_grad().reset();
  };
  clear_grads();
  run();  // warm-up: allocator, cuBLAS handles, first launches
  torch::cuda::synchronize();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    clear_grads();
    const auto start = std::chrono::steady_clock::now();
    run();
    torch::cuda::synchronize();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// The longest context SDPA is timed at.
constexpr int64_t kDenseMaxTokens = 131072;

struct Shape {
  const char* name;
  int64_t heads, kv_heads, head_dim, seq_len;
};

void Row(const Shape& s, int reps, int64_t window) {
  auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  const int64_t t = s.seq_len, d = s.head_dim, g = s.heads / s.kv_heads;
  torch::Tensor q = torch::randn({1, s.heads, t, d}, opts).requires_grad_(true);
  torch::Tensor k = torch::randn({1, s.kv_heads, t, d}, opts).requires_grad_(true);
  torch::Tensor v = torch::randn({1, s.kv_heads, t, d}, opts).requires_grad_(true);
  torch::Tensor gates = torch::sigmoid(torch::randn({1, s.heads, t, 3}, opts)).requires_grad_(true);
  torch::Tensor d_o = torch::randn({1, s.heads, t, d}, opts);
  NsaOptions options;  // the defaults: block 64, 16 selected blocks; the window as asked
  options.shape.window = window;
  options.gates_nonnegative = true;  // sigmoids, as NsaAttention's

  auto nsa = [&](bool backward) {
    torch::Tensor o = ablate::train::NsaAttend(q, k, v, gates, options);
    if (backward) o.backward(d_o);
  };
  // o_cmp's gradient, made only while the compressed branch is timed: at Qwen3-4B's 1M tokens
  // an fp32 copy of d_o is 16 GiB that the other cells need.
  torch::Tensor d_o32;
  auto compressed = [&](bool backward) {
    torch::Tensor o = ablate::train::NsaCompressedAndSelect(q, k, v, options).out;
    if (backward) o.backward(d_o32);
  };
  // The selection and the compressed branch's log-sum-exp, the selected branch's row shift as
  // NsaAttend passes it.
  torch::Tensor idx, shift;
  {
    torch::NoGradGuard no_grad;
    const auto cmp = ablate::train::NsaCompressedAndSelect(q, k, v, options);
    idx = cmp.block_idx;
    shift = cmp.lse;
  }
  auto selected = [&](bool backward) {
    torch::Tensor o =
        ablate::train::NsaSelectedAttention(q, k, v, idx, options.shape.block_size, 0, shift);
    if (backward) o.backward(d_o);
  };
  auto sdpa = [&](bool backward) {
    torch::Tensor o = at::scaled_dot_product_attention(q, k.repeat_interleave(g, 1),
                                                       v.repeat_interleave(g, 1), {}, 0.0,
                                                       /*is_causal=*/true);
    if (backward) o.backward(d_o);
  };
  using ablate::train::NsaWindowPath;
  auto window_on = [&](NsaWindowPath path) {
    return [&, path](bool backward) {
      torch::Tensor o = ablate::train::NsaWindowAttention(q, k, v, window, 0, path);
      if (backward) o.backward(d_o);
    };
  };
  torch::Tensor window_idx;
  if (window > 0) {
    window_idx = ablate::train::NsaWindowBlockIndices(1, s.kv_heads, t, 64, window, q.device());
  }
  auto window_kernels = [&](bool backward) {
    torch::Tensor o = ablate::train::NsaSelectedAttention(q, k, v, window_idx, 64, window);
    if (backward) o.backward(d_o);
  };
  const bool kernels = ablate::train::NsaSelectedKernelTakes(q, k);
  // A cell's time, or NaN with its failure noted: at the longest contexts an out-of-memory in one
  // cell leaves the others measured, and the note says which allocation failed where.
  std::string failures;
  auto cell = [&](const char* name, const std::function<double()>& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      const std::string what = e.what();
      const size_t line = std::min<size_t>(what.find('\n'), 160);  // its first line
      failures += std::string(name) + ": " + what.substr(0, line) + "; ";
      return static_cast<double>(NAN);
    }
  };
  auto time = [&](const char* name, const std::function<void(bool)>& f, bool backward) {
    return cell(name, [&] { return MedianMs([&] { f(backward); }, reps, {q, k, v, gates}); });
  };
  const double nsa_f = time("NsaAttend fwd", nsa, false);
  const double nsa_fb = time("NsaAttend fwd+bwd", nsa, true);
  d_o32 = d_o.to(torch::kFloat32);  // o_cmp is fp32
  const double cmp_f = time("compressed fwd", compressed, false);
  const double cmp_fb = time("compressed fwd+bwd", compressed, true);
  d_o32 = torch::Tensor();
  const double sel_f = kernels ? time("selected fwd", selected, false) : NAN;
  const double sel_fb = kernels ? time("selected fwd+bwd", selected, true) : NAN;
  // The selected branch's forward alone (raw launches) by each way it walks the blocks, and its
  // backward alone on one forward's o and lse by each way it forms dq.
  double fwd_ms[2] = {NAN, NAN}, bwd_ms[2] = {NAN, NAN};
  if (kernels) {
    cell("selected raw", [&] {
      torch::NoGradGuard no_grad;
      const torch::Tensor q16 = q.detach(), k16 = k.detach(), v16 = v.detach();
      const torch::Tensor idx32 = idx.to(torch::kInt32).contiguous();
      torch::Tensor o = torch::empty_like(q16), dq = torch::empty_like(q16);
      torch::Tensor lse = torch::empty({1, s.heads, t}, opts.dtype(torch::kFloat32));
      torch::Tensor dk = torch::empty(k16.sizes(), opts.dtype(torch::kFloat32));
      torch::Tensor dv = torch::empty_like(dk);
      using ablate::train::NsaDqPath;
      using ablate::train::NsaForwardPath;
      const int64_t l = options.shape.block_size;
      auto forward = [&](NsaForwardPath path) {
        return MedianMs(
            [&] {
              ablate::train::NsaSelectedForwardInto(q16, k16, v16, idx32, l, 0, o, lse, path,
                                                    shift);
            },
            reps);
      };
      auto backward = [&](NsaDqPath path) {
        return MedianMs(
            [&] {
              ablate::train::NsaSelectedBackwardInto(q16, k16, v16, idx32, l, 0, o, lse, d_o, dq,
                                                     dk, dv, path);
            },
            reps);
      };
      fwd_ms[0] = forward(NsaForwardPath::kQueryBlocks);
      fwd_ms[1] = forward(NsaForwardPath::kByKeyBlock);  // whose o and lse the backwards read
      bwd_ms[0] = backward(NsaDqPath::kQueryBlocks);
      bwd_ms[1] = backward(NsaDqPath::kInDkv);
      return 0.0;
    });
  }
  const double win_flash =
      window > 0 && ablate::train::NsaWindowFlashTakes(q, k)
          ? time("window FlashAttention", window_on(NsaWindowPath::kFlash), true)
          : NAN;
  const double win_wgmma =
      window > 0 && ablate::train::NsaWindowKernelsTake(q, k)
          ? time("window wgmma kernels", window_on(NsaWindowPath::kKernels), true)
          : NAN;
  const double win_kernels =
      window > 0 && kernels ? time("window kernels", window_kernels, true) : NAN;
  const bool dense = t <= kDenseMaxTokens;
  const double sdpa_f = dense ? time("SDPA fwd", sdpa, false) : NAN;
  const double sdpa_fb = dense ? time("SDPA fwd+bwd", sdpa, true) : NAN;
  std::printf(
      "| %s | %lld/%lld/%lld | %lldK | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | "
      "%.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
      s.name, static_cast<long long>(s.heads), static_cast<long long>(s.kv_heads),
      static_cast<long long>(d), static_cast<long long>(t / 1024), nsa_f, nsa_fb, cmp_f, cmp_fb,
      sel_f, sel_fb, fwd_ms[0], fwd_ms[1], bwd_ms[0], bwd_ms[1], win_flash, win_wgmma, win_kernels,
      sdpa_f, sdpa_fb, sdpa_fb / nsa_fb);
  if (!failures.empty()) {
    std::printf("<!-- %s %lldK failed: %s-->\n", s.name, static_cast<long long>(t / 1024),
                failures.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "nsa_benchmark: no CUDA device\n");
    return 1;
  }
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t max_t = argc > 2 ? std::atoll(argv[2]) : 131072;
  const int64_t window = argc > 3 ? std::atoll(argv[3]) : 512;
  const std::string only = argc > 4 ? argv[4] : "";
  std::printf("NSA kernels: %s, window %lld\n\n",
              ablate::train::NsaKernelsEnabled() ? "on" : "off", static_cast<long long>(window));
  std::printf(
      "| shape | H/H_kv/D | T | NsaAttend fwd ms | NsaAttend fwd+bwd ms | "
      "compressed+selection fwd ms | compressed+selection fwd+bwd ms | selected "
      "kernels fwd ms | selected kernels fwd+bwd ms | selected fwd, by query blocks ms | "
      "selected fwd, by key block ms | selected bwd, dq kernel ms | selected bwd, dq in "
      "dk/dv ms | window fwd+bwd, FlashAttention ms | window fwd+bwd, wgmma kernels ms | "
      "window fwd+bwd, selected kernels ms | "
      "SDPA fwd ms | SDPA fwd+bwd ms | SDPA / NsaAttend (fwd+bwd) "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<Shape> shapes;
  for (int64_t t : {8192, 16384, 32768, 65536, 131072}) shapes.push_back({"fla", 64, 4, 128, t});
  for (int64_t t : {32768, 131072, 524288, 1048576}) {
    shapes.push_back({"qwen3-0.6b", 16, 8, 128, t});
  }
  for (int64_t t : {32768, 131072, 524288, 1048576}) shapes.push_back({"qwen3-4b", 32, 8, 128, t});
  for (const Shape& s : shapes) {
    if (s.seq_len > max_t || (!only.empty() && (only != s.name || s.seq_len != max_t))) continue;
    try {
      Row(s, reps, window);
    } catch (const std::exception& e) {
      std::printf("| %s | %lld | %lldK | failed: %.200s |\n", s.name,
                  static_cast<long long>(s.heads), static_cast<long long>(s.seq_len / 1024),
                  e.what());
    }
    torch::cuda::synchronize();
  }
  return 0;
}
