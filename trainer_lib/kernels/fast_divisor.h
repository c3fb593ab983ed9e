// Division by a divisor fixed at launch as a multiply and a shift (Granlund and Montgomery, 1994,
// "Division by Invariant Integers using Multiplication", section 4; the form CUTLASS's
// FastDivmod uses). A kernel that maps a flat row to its (b, h, t) divides each row by sizes it
// does not know at compile time: a 32-bit division by a runtime value is a few dozen
// instructions, and in the NSA gate's backward (nsa_gate.cu) they were most of a memory-bound
// kernel's issue slots.
//
// Header-only, host and device, so that a CPU test checks it and the launcher builds it.
#ifndef ABLATE_TRAINER_LIB_KERNELS_FAST_DIVISOR_H_
#define ABLATE_TRAINER_LIB_KERNELS_FAST_DIVISOR_H_

#include <cstdint>

#if defined(__CUDACC__)
#define ABLATE_HOST_DEVICE __host__ __device__
#else
#define ABLATE_HOST_DEVICE
#endif

namespace ablate::kernels {

// n / d and n % d for 0 <= n < 2^31 and 1 <= d < 2^31: with p = 31 + ceil(log2 d) and
// m = ceil(2^p / d) (below 2^32), n / d = floor(n m / 2^p), exact for every such n (the paper's
// Theorem 4.2 with N = 31 bits of dividend). d = 1 takes m = 0 and returns n.
class FastDivisor {
 public:
  FastDivisor() = default;
  explicit FastDivisor(uint32_t d) : divisor_(d) {
    if (d <= 1) return;
    int log2_ceil = 0;
    while ((uint64_t{1} << log2_ceil) < d) ++log2_ceil;
    const int p = 31 + log2_ceil;
    multiplier_ = static_cast<uint32_t>(((uint64_t{1} << p) + d - 1) / d);
    shift_ = static_cast<uint32_t>(p - 32);
  }

  ABLATE_HOST_DEVICE uint32_t Divide(uint32_t n) const {
    if (multiplier_ == 0) return n;
#if defined(__CUDA_ARCH__)
    return __umulhi(n, multiplier_) >> shift_;
#else
    return static_cast<uint32_t>((uint64_t{n} * multiplier_) >> 32) >> shift_;
#endif
  }
  // *remainder = n - (n / d) d; returns n / d.
  ABLATE_HOST_DEVICE uint32_t DivMod(uint32_t n, uint32_t* remainder) const {
    const uint32_t q = Divide(n);
    *remainder = n - q * divisor_;
    return q;
  }
  ABLATE_HOST_DEVICE uint32_t divisor() const { return divisor_; }

 private:
  uint32_t divisor_ = 1;
  uint32_t multiplier_ = 0;
  uint32_t shift_ = 0;
};

}  // namespace ablate::kernels

#undef ABLATE_HOST_DEVICE

#endif  // ABLATE_TRAINER_LIB_KERNELS_FAST_DIVISOR_H_
