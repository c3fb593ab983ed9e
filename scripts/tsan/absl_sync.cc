// Tells ThreadSanitizer about Abseil's locks, for sanitize.sh's TSan run (LD_PRELOADed there).
//
// Debian's Abseil is not built with TSan: its Mutex, CondVar and Notification synchronize
// through atomics and futexes in uninstrumented code, so TSan sees no happens-before edge
// between two critical sections of one absl::Mutex and reports every guarded member as a race.
// This library interposes the exported entry points (our code and gRPC call them through the
// PLT), calls the real ones through dlsym(RTLD_NEXT), and annotates acquire and release on the
// lock's address. Conditions (absl::Condition) are evaluated inside the library, in whichever
// thread holds the lock at the time, without an edge TSan can see; their reads are ignored,
// since a Condition only reads what the lock guards.
//
// The symbols are those of Debian's libabsl 20220623 (inline namespace debian3); a different
// Abseil needs its names here.
#include <dlfcn.h>

#include <cstdint>

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void AnnotateIgnoreReadsBegin(const char* file, int line);
void AnnotateIgnoreReadsEnd(const char* file, int line);
}

namespace {

// Abseil's by-value time types: an int64 and a uint32 (Duration), or a Duration (Time).
struct Duration {
  int64_t hi;
  uint32_t lo;
};

template <typename F>
F Real(const char* name) {
  static_assert(sizeof(F) == sizeof(void*));
  void* symbol = dlsym(RTLD_NEXT, name);
  if (symbol == nullptr) __builtin_trap();  // the Abseil this was written for is not loaded
  return reinterpret_cast<F>(symbol);
}

struct IgnoreReads {
  IgnoreReads() { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~IgnoreReads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
};

}  // namespace

// Each wrapper: `name` the mangled symbol, `ret` its result, `params`/`args` its parameters
// after `self`; `before` and `after` the annotations around the real call.
#define ABLATE_WRAP(name, ret, params, args, before, after)           \
  extern "C" ret name(void* self params) {                            \
    static const auto real = Real<ret (*)(void* self params)>(#name); \
    before;                                                           \
    ret result = [&] {                                                \
      IgnoreReads ignore;                                             \
      return real(self args);                                         \
    }();                                                              \
    after;                                                            \
    return result;                                                    \
  }
#define ABLATE_WRAP_VOID(name, params, args, before, after)            \
  extern "C" void name(void* self params) {                            \
    static const auto real = Real<void (*)(void* self params)>(#name); \
    before;                                                            \
    {                                                                  \
      IgnoreReads ignore;                                              \
      real(self args);                                                 \
    }                                                                  \
    after;                                                             \
  }
#define COMMA ,

// Mutex: acquire after taking it, release before giving it up (Await gives it up meanwhile).
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex4LockEv, , , , __tsan_acquire(self))
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex10ReaderLockEv, , , , __tsan_acquire(self))
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex6UnlockEv, , , __tsan_release(self), )
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex12ReaderUnlockEv, , , __tsan_release(self), )
ABLATE_WRAP(_ZN4absl7debian35Mutex7TryLockEv, bool, , , , if (result) __tsan_acquire(self))
ABLATE_WRAP(_ZN4absl7debian35Mutex13ReaderTryLockEv, bool, , , , if (result) __tsan_acquire(self))
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, COMMA const void* c, COMMA c, ,
                 __tsan_acquire(self))
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE, COMMA const void* c,
                 COMMA c, , __tsan_acquire(self))
ABLATE_WRAP(_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE, bool,
            COMMA const void* c COMMA Duration d, COMMA c COMMA d, , __tsan_acquire(self))
ABLATE_WRAP(_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE, bool,
            COMMA const void* c COMMA Duration t, COMMA c COMMA t, , __tsan_acquire(self))
ABLATE_WRAP(_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE, bool,
            COMMA const void* c COMMA Duration d, COMMA c COMMA d, , __tsan_acquire(self))
ABLATE_WRAP_VOID(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, COMMA const void* c, COMMA c,
                 __tsan_release(self), __tsan_acquire(self))
ABLATE_WRAP(_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE, bool,
            COMMA const void* c COMMA Duration d, COMMA c COMMA d, __tsan_release(self),
            __tsan_acquire(self))
ABLATE_WRAP(_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE, bool,
            COMMA const void* c COMMA Duration t, COMMA c COMMA t, __tsan_release(self),
            __tsan_acquire(self))

// CondVar: the Mutex it waits with is given up meanwhile.
ABLATE_WRAP_VOID(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, COMMA void* mu, COMMA mu,
                 __tsan_release(mu), __tsan_acquire(mu))
ABLATE_WRAP(_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE, bool,
            COMMA void* mu COMMA Duration d, COMMA mu COMMA d, __tsan_release(mu),
            __tsan_acquire(mu))
ABLATE_WRAP(_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE, bool,
            COMMA void* mu COMMA Duration t, COMMA mu COMMA t, __tsan_release(mu),
            __tsan_acquire(mu))

// Notification: what happened before Notify() happens before a wait that returns.
ABLATE_WRAP_VOID(_ZN4absl7debian312Notification6NotifyEv, , , __tsan_release(self), )
ABLATE_WRAP_VOID(_ZNK4absl7debian312Notification19WaitForNotificationEv, , , , __tsan_acquire(self))
ABLATE_WRAP(_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE, bool,
            COMMA Duration d, COMMA d, , __tsan_acquire(self))
ABLATE_WRAP(_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE, bool,
            COMMA Duration t, COMMA t, , __tsan_acquire(self))
