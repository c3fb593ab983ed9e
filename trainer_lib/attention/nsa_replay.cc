// nsa_replay: runs NsaAttend forward and backward on recorded tensors, so a test in another
// language can compare it with a reference implementation (tests/oracle/nsa_oracle_test.py
// compares it with fla-core's naive NSA).
//
//   nsa_replay --in CASE.safetensors --out DIR [--arg block_size=16 --arg window=32 ...]
//              [--query_chunk N] [--device cuda]
//
// CASE holds q [B, H, T, D], k and v [B, H_kv, T, D], gates [B, H, T, 3] (g_cmp, g_slc, g_swa)
// and grad_out [B, H, T, D], all fp32. Each --arg is set as the sweep field
// attention_args.<key> of an "nsa" config, parsed and validated as a sweep file's value is.
// DIR/model.safetensors receives out, the gradients of sum(out * grad_out) as grad_q, grad_k,
// grad_v and grad_gates (fp32), and block_indices [B, H_kv, T, n] (int64). Exit status 0 on
// success, 1 with the reason on stderr otherwise.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/attention_args.h"
#include "common/train_config.h"
#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/hf/safetensors.h"

namespace ablate::train {
namespace {

struct Flags {
  std::string in;
  std::string out;
  std::vector<std::string> args;
  int64_t query_chunk = 0;
  std::string device = "cpu";
};

absl::StatusOr<NsaOptions> OptionsOf(const Flags& flags) {
  v1::TrainConfig config;
  config.set_attention("nsa");
  for (const std::string& arg : flags.args) {
    std::pair<std::string, std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    if (absl::Status s = SetTrainField(config, absl::StrCat("attention_args.", kv.first),
                                       kv.second);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = ValidateAttentionArgs(config); !s.ok()) return s;
  const NsaShape shape = NsaShapeOf(config);
  // The recorded tensors carry no compression weights: fla's naive_nsa pools by the mean.
  if (shape.learned_compression) {
    return absl::InvalidArgumentError(
        "--arg learned_compression=true: replay compares with fla's mean pooling, which has no "
        "compression weights to replay");
  }
  return NsaOptions{shape, flags.query_chunk, /*fused_chunk_bytes=*/0};
}

absl::Status Replay(const Flags& flags) {
  absl::StatusOr<NsaOptions> options = OptionsOf(flags);
  if (!options.ok()) return options.status();
  const torch::Device device(flags.device);
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(flags.in);
  if (!reader.ok()) return reader.status();
  std::vector<torch::Tensor> in;
  for (const char* name : {"q", "k", "v", "gates", "grad_out"}) {
    absl::StatusOr<at::Tensor> t = (*reader)->Read(name);
    if (!t.ok()) return t.status();
    in.push_back(t->to(device).requires_grad_(std::string(name) != "grad_out"));
  }
  torch::Tensor out = NsaAttend(in[0], in[1], in[2], in[3], *options);
  torch::autograd::backward({out}, {in[4]});
  std::vector<std::pair<std::string, at::Tensor>> result = {
      {"out", out.detach().cpu()},
      {"grad_q", in[0].grad().cpu()},
      {"grad_k", in[1].grad().cpu()},
      {"grad_v", in[2].grad().cpu()},
      {"grad_gates", in[3].grad().cpu()},
      {"block_indices", NsaBlockIndices(in[0].detach(), in[1].detach(), *options).cpu()}};
  return WriteSafetensors(flags.out, result);
}

}  // namespace
}  // namespace ablate::train

int main(int argc, char** argv) {
  ablate::train::Flags flags;
  CLI::App app{"Runs NSA forward and backward on recorded tensors."};
  app.add_option("--in", flags.in, "safetensors file of q, k, v, gates, grad_out")->required();
  app.add_option("--out", flags.out, "folder for model.safetensors")->required();
  app.add_option("--arg", flags.args, "attention_args KEY=VALUE, repeatable");
  app.add_option("--query_chunk", flags.query_chunk, "queries per chunk; 0 picks");
  app.add_option("--device", flags.device, "device: cpu, cuda, cuda:1, ...");
  CLI11_PARSE(app, argc, argv);
  try {
    if (absl::Status s = ablate::train::Replay(flags); !s.ok()) {
      std::fprintf(stderr, "nsa_replay: %s\n", s.ToString().c_str());
      return 1;
    }
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "nsa_replay: %s\n", e.what_without_backtrace());
    return 1;
  }
  return 0;
}
