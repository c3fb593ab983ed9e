#include "common/train_config.h"

#include <cmath>
#include <limits>

#include "common/optimizer_args.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate {
namespace {

TEST(TrainConfigTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateTrainConfig(DefaultTrainConfig()).ok());
}

TEST(TrainConfigTest, SetsFieldsOfEveryTypeByName) {
  v1::TrainConfig c = DefaultTrainConfig();
  ASSERT_TRUE(SetTrainField(c, "optimizer", "soap").ok());
  ASSERT_TRUE(SetTrainField(c, "context_length", "32K").ok());
  ASSERT_TRUE(SetTrainField(c, "seed", "7").ok());
  ASSERT_TRUE(SetTrainField(c, "learning_rate", "3e-4").ok());
  ASSERT_TRUE(SetTrainField(c, "optimizer_args.beta2", "0.99").ok());
  EXPECT_EQ(c.optimizer(), "soap");
  EXPECT_EQ(c.context_length(), 32768u);
  EXPECT_EQ(c.seed(), 7u);
  EXPECT_DOUBLE_EQ(c.learning_rate(), 3e-4);
  EXPECT_DOUBLE_EQ(c.optimizer_args().at("beta2"), 0.99);
  EXPECT_EQ(GetTrainField(c, "context_length"), "32768");
  EXPECT_EQ(GetTrainField(c, "optimizer_args.beta2"), "0.99");
  ASSERT_TRUE(SetTrainField(c, "context_length", "1M").ok());
  EXPECT_EQ(c.context_length(), 1048576u);
}

TEST(TrainConfigTest, ACountWithAZeroFractionIsThatWholeNumber) {
  v1::TrainConfig c = DefaultTrainConfig();
  ASSERT_TRUE(SetTrainField(c, "steps", "64.0").ok());
  EXPECT_EQ(c.steps(), 64u);
  ASSERT_TRUE(SetTrainField(c, "context_length", "32.00K").ok());
  EXPECT_EQ(c.context_length(), 32768u);
  EXPECT_EQ(SetTrainField(c, "steps", "64.5").message(),
            "steps: '64.5' is not a whole number (only a zero fraction, as in 64.0, is read)");
  EXPECT_FALSE(SetTrainField(c, "steps", ".0").ok());
  ASSERT_TRUE(SetTrainField(c, "steps", "65.").ok());
  EXPECT_EQ(c.steps(), 65u);
  EXPECT_FALSE(SetTrainField(c, "steps", "6.4e1").ok());
}

TEST(TrainConfigTest, RefusesUnknownNamesAndBadValues) {
  v1::TrainConfig c;
  EXPECT_EQ(SetTrainField(c, "learnin_rate", "1").message(), "learnin_rate: unknown setting");
  EXPECT_FALSE(SetTrainField(c, "steps", "-3").ok());
  EXPECT_FALSE(SetTrainField(c, "steps", "ten").ok());
  EXPECT_FALSE(SetTrainField(c, "context_length", "5000000000").ok());
  EXPECT_FALSE(SetTrainField(c, "learning_rate", "fast").ok());
  EXPECT_FALSE(SetTrainField(c, "optimizer", "").ok());
  EXPECT_FALSE(IsTrainField("optimizer_args."));
  EXPECT_TRUE(IsTrainField("optimizer_args.eps"));
  EXPECT_TRUE(IsTrainArgMap("attention_args"));
  EXPECT_TRUE(IsTrainArgMap("optimizer_args"));
  EXPECT_FALSE(IsTrainArgMap("attention_args."));
  EXPECT_FALSE(IsTrainArgMap("attention"));
  EXPECT_FALSE(IsTrainArgMap(""));
}

TEST(TrainConfigTest, LongContextsNeedSparseAttention) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_context_length(524288);
  EXPECT_EQ(
      ValidateTrainConfig(c).message(),
      "context_length: 524288 requires attention nsa (got dense, which takes at most 131072)");
  c.set_attention("nsa");
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
}

TEST(TrainConfigTest, ValidationNamesTheField) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_optimizer("adamx");
  EXPECT_NE(ValidateTrainConfig(c).message().find("optimizer: unknown optimizer 'adamx'"),
            std::string::npos);
  c = DefaultTrainConfig();
  c.set_warmup_steps(500);
  EXPECT_NE(ValidateTrainConfig(c).message().find("warmup_steps"), std::string::npos);
}

TEST(TrainConfigTest, WorldSizeCountsGpusOrCpuRanks) {
  v1::TrainConfig c = DefaultTrainConfig();
  EXPECT_EQ(WorldSize(c), 1u);
  c.set_cpu_ranks(3);
  EXPECT_EQ(WorldSize(c), 3u);
  c.set_batch_size(12);  // 4 rows a rank
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
  c.set_gpus(2);
  EXPECT_EQ(WorldSize(c), 2u);
  EXPECT_NE(ValidateTrainConfig(c).message().find("cpu_ranks: 3 is for CPU jobs"),
            std::string::npos);
  c.set_gpus(0);
  c.set_cpu_ranks(257);
  EXPECT_NE(ValidateTrainConfig(c).message().find("cpu_ranks: 257 is more than the limit of 256"),
            std::string::npos);
}

// Settings no run survives: NaN and infinities (which range checks alone let through, since
// every comparison with NaN is false) and sizes of 2^32 - 1.
TEST(TrainConfigTest, NonFiniteNumbersAndAbsurdSizesAreRefusedByName) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_weight_decay(std::nan(""));
  EXPECT_EQ(ValidateTrainConfig(c).message(), "weight_decay: nan is not a finite number");
  c = DefaultTrainConfig();
  c.set_grad_clip(std::numeric_limits<double>::infinity());
  EXPECT_EQ(ValidateTrainConfig(c).message(), "grad_clip: inf is not a finite number");
  c = DefaultTrainConfig();
  c.set_min_lr_ratio(std::nan(""));
  EXPECT_EQ(ValidateTrainConfig(c).message(), "min_lr_ratio: nan is not a finite number");
  // A negative one is named with its value, as a sweep file's reader needs it.
  c = DefaultTrainConfig();
  c.set_weight_decay(-0.1);
  EXPECT_EQ(ValidateTrainConfig(c).message(), "weight_decay: -0.1 is below 0");
  c = DefaultTrainConfig();
  c.set_grad_clip(-1);
  EXPECT_EQ(ValidateTrainConfig(c).message(), "grad_clip: -1 is below 0");
  c = DefaultTrainConfig();
  c.set_steps(4294967295u);
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "steps: 4294967295 is more than the limit of 100000000");
  c = DefaultTrainConfig();
  c.set_batch_size(4294967295u);
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "batch_size: 4294967295 is more than the limit of 1048576");
}

// Each rank takes an even share of the batch, in micro-batches capped at it; a config whose
// batch does not split so is refused when the sweep is checked, not when its ranks start.
TEST(TrainConfigTest, EachRankTakesAnEvenShareInMicroBatchesCappedAtIt) {
  v1::TrainConfig config = DefaultTrainConfig();
  config.set_batch_size(12);
  config.set_micro_batch_size(2);
  EXPECT_EQ(*MicroBatchPerRank(config, 2), 2u);
  config.set_micro_batch_size(12);
  EXPECT_EQ(*MicroBatchPerRank(config, 3), 4u);  // capped at the 4 rows of a rank
  config.set_micro_batch_size(0);
  EXPECT_EQ(*MicroBatchPerRank(config, 3), 4u);  // 0: the rank's whole share
  EXPECT_EQ(MicroBatchPerRank(config, 5).status().message(),
            "batch_size: 12 does not split evenly over the job's 5 ranks");
  config.set_micro_batch_size(4);
  EXPECT_EQ(MicroBatchPerRank(config, 2).status().message(),
            "micro_batch_size: 4 does not divide the 6 rows of each of 2 ranks");
  config.set_micro_batch_size(5);
  EXPECT_EQ(MicroBatchPerRank(config, 1).status().message(),
            "micro_batch_size: 5 does not divide batch_size 12");
  config.set_micro_batch_size(2);
  config.set_gpus(5);
  EXPECT_EQ(ValidateTrainConfig(config).message(),
            "batch_size: 12 does not split evenly over the job's 5 ranks");
}

TEST(TrainConfigTest, LoopSettingsAreCheckedByName) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_batch_size(16);
  c.set_micro_batch_size(5);
  EXPECT_EQ(ValidateTrainConfig(c).message(), "micro_batch_size: 5 does not divide batch_size 16");
  c.set_micro_batch_size(4);
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
  ASSERT_TRUE(SetTrainField(c, "lr_schedule", "linear").ok());
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "lr_schedule: unknown schedule 'linear' (known: cosine, wsd)");
  c = DefaultTrainConfig();
  c.set_decay_fraction(1.5);
  EXPECT_EQ(ValidateTrainConfig(c).message(), "decay_fraction: 1.5 is outside [0, 1]");
  c = DefaultTrainConfig();
  c.set_divergence_factor(0.5);
  EXPECT_EQ(ValidateTrainConfig(c).message(), "divergence_factor: 0.5 must be 0 (off) or above 1");
  c.set_divergence_factor(2);
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
  c = DefaultTrainConfig();
  c.set_nonfinite("ignore");
  EXPECT_NE(ValidateTrainConfig(c).message().find("nonfinite: unknown policy 'ignore'"),
            std::string::npos);
  c = DefaultTrainConfig();
  ASSERT_TRUE(SetTrainField(c, "optimizer_sharding", "zero3").ok());
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "optimizer_sharding: unknown sharding 'zero3' (known: auto, zero1, none)");
  ASSERT_TRUE(SetTrainField(c, "optimizer_sharding", "none").ok());
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
}

TEST(TrainConfigTest, OffloadedCheckpointsNeedCheckpointingAndExistingLayers) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_model("qwen3-0.6b");
  ASSERT_TRUE(SetTrainField(c, "checkpoint_offload_layers", "16").ok());
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "checkpoint_offload_layers: 16 needs activation_checkpointing: true (it moves the "
            "checkpoints)");
  c.set_activation_checkpointing(true);
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
  c.set_checkpoint_offload_layers(29);
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "checkpoint_offload_layers: 29 is more than qwen3-0.6b's 28 layers");
}

TEST(TrainConfigTest, BooleanSettingsReadTrueAndFalse) {
  v1::TrainConfig c = DefaultTrainConfig();
  ASSERT_TRUE(SetTrainField(c, "activation_checkpointing", "true").ok());
  EXPECT_TRUE(c.activation_checkpointing());
  EXPECT_EQ(GetTrainField(c, "activation_checkpointing"), "true");
  EXPECT_EQ(SetTrainField(c, "activation_checkpointing", "maybe").message(),
            "activation_checkpointing: 'maybe' is not true or false");
}

TEST(TrainConfigTest, ZeroLoopSettingsMeanTheDefaults) {
  v1::TrainConfig old;  // resolved before the loop settings existed
  old.set_batch_size(8);
  const v1::TrainConfig c = WithLoopDefaults(old);
  EXPECT_EQ(c.micro_batch_size(), 8u);
  EXPECT_EQ(c.loss_chunk_tokens(), 4096u);
  EXPECT_EQ(c.lr_schedule(), "cosine");
  EXPECT_DOUBLE_EQ(c.decay_fraction(), 0.2);
  EXPECT_EQ(c.nonfinite(), "fail");
  EXPECT_EQ(c.keep_checkpoints(), 2u);
  EXPECT_EQ(c.divergence_evals(), 3u);
  EXPECT_EQ(c.divergence_factor(), 0);  // off
  EXPECT_EQ(c.grad_bucket_mb(), 100u);
}

// Arguments at their declared defaults, and a dense config's attention_args, which dense never
// reads, leave the config that identifies a job; every other argument stays.
TEST(TrainConfigTest, ArgumentsAtTheirDefaultsOrUnreadLeaveTheConfig) {
  v1::TrainConfig nsa = DefaultTrainConfig();
  nsa.set_attention("nsa");
  (*nsa.mutable_attention_args())["window"] = 512;  // the default
  (*nsa.mutable_attention_args())["block_size"] = 16;
  (*nsa.mutable_attention_args())["paper_selection"] = 0;  // false, the default
  (*nsa.mutable_optimizer_args())["beta2"] = 0.95;         // adamw's default
  (*nsa.mutable_optimizer_args())["beta1"] = 0.8;
  const v1::TrainConfig c = WithoutExplicitDefaults(nsa);
  ASSERT_EQ(c.attention_args().size(), 1u);
  EXPECT_EQ(c.attention_args().at("block_size"), 16);
  ASSERT_EQ(c.optimizer_args().size(), 1u);
  EXPECT_EQ(c.optimizer_args().at("beta1"), 0.8);

  v1::TrainConfig dense = nsa;
  dense.set_attention("dense");
  EXPECT_TRUE(WithoutExplicitDefaults(dense).attention_args().empty());
  // Normalizing twice changes nothing: a stored config normalized again is what it was.
  EXPECT_EQ(WithoutExplicitDefaults(c).SerializeAsString(), c.SerializeAsString());
}

// NSA's compression kernel and stride are read only under learned_compression: without it they
// leave the config, whatever they are; with it, a kernel off its default stays.
TEST(TrainConfigTest, ArgumentsReadOnlyUnderASwitchLeaveTheConfigWhileItIsOff) {
  v1::TrainConfig nsa = DefaultTrainConfig();
  nsa.set_attention("nsa");
  (*nsa.mutable_attention_args())["compression_kernel"] = 64;
  (*nsa.mutable_attention_args())["compression_stride"] = 32;
  EXPECT_TRUE(WithoutExplicitDefaults(nsa).attention_args().empty());
  (*nsa.mutable_attention_args())["learned_compression"] = 0;  // off, written
  EXPECT_TRUE(WithoutExplicitDefaults(nsa).attention_args().empty());

  (*nsa.mutable_attention_args())["learned_compression"] = 1;
  (*nsa.mutable_attention_args())["compression_stride"] = 16;  // the default
  const v1::TrainConfig learned = WithoutExplicitDefaults(nsa);
  ASSERT_EQ(learned.attention_args().size(), 2u);
  EXPECT_EQ(learned.attention_args().at("learned_compression"), 1);
  EXPECT_EQ(learned.attention_args().at("compression_kernel"), 64);
}

// soap's shampoo_beta defaults to -1, which the optimizer reads as "beta2": -1 written is the
// default and leaves; a value equal to beta2 trains the same but is kept, since the table's
// default is compared as declared, not resolved (typed_args.h, EraseDefaultArgs).
TEST(TrainConfigTest, ADefaultThatStandsForAnotherArgumentIsComparedAsDeclared) {
  v1::TrainConfig soap = DefaultTrainConfig();
  soap.set_optimizer("soap");
  (*soap.mutable_optimizer_args())["shampoo_beta"] = -1;
  (*soap.mutable_optimizer_args())["beta2"] = 0.95;  // soap's default
  EXPECT_TRUE(WithoutExplicitDefaults(soap).optimizer_args().empty());
  (*soap.mutable_optimizer_args())["shampoo_beta"] = 0.95;
  const v1::TrainConfig kept = WithoutExplicitDefaults(soap);
  ASSERT_EQ(kept.optimizer_args().size(), 1u);
  EXPECT_EQ(kept.optimizer_args().at("shampoo_beta"), 0.95);
  // The optimizer reads every argument left out as its declared default.
  EXPECT_EQ(OptimizerArgOr(kept, "beta2"), 0.95);
}

// Every bad key of an argument map is reported, a line each in the order of their keys, so that
// one round of edits fixes them all.
TEST(TrainConfigTest, EveryBadArgumentIsReported) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_attention("nsa");
  (*c.mutable_attention_args())["windw"] = 64;
  (*c.mutable_attention_args())["blok_size"] = 16;
  (*c.mutable_optimizer_args())["beta_2"] = 0.9;
  (*c.mutable_optimizer_args())["eps"] = -1;
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "optimizer_args.beta_2: adamw has no argument beta_2 (did you mean beta2?)\n"
            "optimizer_args.eps: -1 is outside [0, inf) for adamw\n"
            "attention_args.blok_size: nsa has no argument blok_size (did you mean block_size?)\n"
            "attention_args.windw: nsa has no argument windw (did you mean window?)");
}

// A sweep that writes 0 where 0 stands for a default would run the default under a label that
// says 0: refused, with the default named.
TEST(TrainConfigTest, AZeroThatMeansTheDefaultIsRefused) {
  v1::TrainConfig c = DefaultTrainConfig();
  EXPECT_EQ(SetTrainField(c, "decay_fraction", "0").message(),
            "decay_fraction: 0 would mean the default, 0.2, not zero; leave the setting out for "
            "the default (a constant rate after warmup: lr_schedule cosine, min_lr_ratio 1)");
  EXPECT_EQ(SetTrainField(c, "keep_checkpoints", "0").message(),
            "keep_checkpoints: 0 would mean the default, 2, not zero; leave the setting out for "
            "the default");
  EXPECT_EQ(SetTrainField(c, "grad_bucket_mb", "0").message(),
            "grad_bucket_mb: 0 would mean the default, 100, not zero; leave the setting out for "
            "the default");
  for (const char* name :
       {"micro_batch_size", "loss_chunk_tokens", "divergence_evals", "grad_bucket_mb"}) {
    EXPECT_THAT(SetTrainField(c, name, "0").message(),
                ::testing::HasSubstr(": 0 would mean the default, "))
        << name;
  }
  // Where 0 is a value of its own, it stays one.
  for (const char* name : {"weight_decay", "warmup_steps", "eval_every", "checkpoint_every",
                           "divergence_factor", "min_lr_ratio", "seed"}) {
    EXPECT_TRUE(SetTrainField(c, name, "0").ok()) << name;
  }
  EXPECT_TRUE(SetTrainField(c, "decay_fraction", "0.1").ok());
  EXPECT_EQ(SetTrainField(c, "steps", "-5").message(), "steps: -5 is negative");
  // A number past the field's bits is too large, not malformed: 32 and 64 bits, and a suffix.
  EXPECT_EQ(SetTrainField(c, "batch_size", "99999999999").message(),
            "batch_size: 99999999999 is more than the field holds (at most 4294967295)");
  EXPECT_EQ(SetTrainField(c, "batch_size", "8192M").message(),
            "batch_size: 8192M is more than the field holds (at most 4294967295)");
  EXPECT_EQ(SetTrainField(c, "seed", "99999999999999999999").message(),
            "seed: 99999999999999999999 is more than the field holds (at most "
            "18446744073709551615)");
  EXPECT_EQ(SetTrainField(c, "steps", "0x40").message(), "steps: '0x40' is not a whole number");
}

}  // namespace
}  // namespace ablate
