#include "trainer_lib/attention/attention.h"

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "trainer_lib/attention/nsa.h"

namespace ablate::train {
namespace {

// Exact attention through at::scaled_dot_product_attention, which picks the fused kernel the
// device has (flash or memory-efficient on CUDA, a blocked kernel on CPU). enable_gqa lets it
// read shared key/value heads in place instead of materialising H / H_kv copies of them.
class DenseAttention : public Attention {
 public:
  bool reads_token_major() const override { return true; }

 protected:
  torch::Tensor Compute(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& /*hidden*/) override {
    // With equal query and key lengths the causal mask is the usual lower triangle.
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/std::nullopt,
                                            /*dropout_p=*/0.0, /*is_causal=*/true,
                                            /*scale=*/std::nullopt, /*enable_gqa=*/true);
  }
};

}  // namespace

torch::Tensor Attention::Forward(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, const torch::Tensor& hidden) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
              "attention expects q, k, v of shape [B, H, T, D], got ", q.sizes(), ", ",
              k.sizes(), ", ", v.sizes());
  TORCH_CHECK(k.sizes() == v.sizes(), "attention: k ", k.sizes(), " and v ", v.sizes(),
              " differ");
  TORCH_CHECK(q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3),
              "attention: q ", q.sizes(), " does not match k ", k.sizes(), " in B, T or D");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "attention: ", q.size(1),
              " query heads are not a multiple of ", k.size(1), " key/value heads");
  return Compute(q, k, v, hidden);
}

absl::StatusOr<std::shared_ptr<Attention>> MakeAttention(const std::string& kind,
                                                         const v1::ModelConfig& model,
                                                         const NsaShape& nsa) {
  if (kind == "dense") return std::make_shared<DenseAttention>();
  if (kind == "nsa") {
    return std::make_shared<NsaAttention>(model.hidden_size(), model.num_attention_heads(),
                                          model.num_key_value_heads(), model.head_dim(),
                                          NsaOptions{nsa});
  }
  return absl::InvalidArgumentError(
      absl::StrCat("attention: unknown kind \"", kind, "\" (known: dense, nsa)"));
}

}  // namespace ablate::train
