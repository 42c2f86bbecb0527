// Runtime: one OpenCL device with its context, in-order queue, program cache, memory accounting
// and profiler. No global state: everything dsocr does on a device goes through one of these.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "runtime/cl.h"
#include "runtime/device.h"
#include "runtime/error.h"
#include "runtime/program_cache.h"
#include "runtime/tensor.h"
#include "runtime/tuning.h"

namespace dsocr {

struct RuntimeOptions {
  std::string device;       // spec, see device.h; empty = $DSOCR_DEVICE or default
  std::string profile_csv;  // when set (or $DSOCR_PROFILE), every launch is timed and written here
  bool timing = false;      // time every launch with events (for benchmarks: take_timings())
  // Fault injection for tests: the N-th call of alloc() (1-based, pool reuses included) fails as
  // the driver's clCreateBuffer would (CL_MEM_OBJECT_ALLOCATION_FAILURE). 0 = $DSOCR_FAIL_ALLOC, or off.
  uint64_t fail_alloc_at = 0;
  // The device's performance knobs (runtime/tuning.h). Unset: Tuning's defaults; the environment
  // is not read here (the dsocr command's open_runtime fills it with Tuning::from_env()).
  std::optional<Tuning> tuning;
};

// The device time of one launch (kernel or CLBlast call), from its OpenCL events.
struct LaunchTiming {
  std::string name;
  double us = 0;
};

// A kernel of a built program; launches go through Runtime::launch.
struct Kernel {
  cl::Kernel k;
  std::string name;
};

class Runtime {
 public:
  explicit Runtime(const RuntimeOptions& opts = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const DeviceInfo& device() const { return dev_; }
  const cl::Context& context() const { return ctx_; }
  cl::CommandQueue& queue() { return queue_; }
  ProgramCache& programs() { return *programs_; }
  const MemoryStats& memory() const { return pool_->stats; }
  std::string memory_summary() const;
  // The most bytes live at once while fn runs (what one stage needs); memory().peak keeps its
  // meaning, the most ever.
  template <class Fn>
  uint64_t peak_during(Fn&& fn) {
    MemoryStats& s = pool_->stats;
    const uint64_t before = s.peak;
    s.peak = s.current;
    try {
      fn();
    } catch (...) {
      s.peak = std::max(before, s.peak);
      throw;
    }
    const uint64_t during = s.peak;
    s.peak = std::max(before, during);
    return during;
  }
  // The performance knobs the ops follow (RuntimeOptions::tuning, checked when created).
  const Tuning& tuning() const { return tuning_; }
  // Releases the freed buffers kept for reuse (after loading a model, say). Tuning::pool off keeps none.
  void trim() { pool_->drain(); }

  // --- memory ---------------------------------------------------------------
  // Allocates; throws OutOfDeviceMemory with needed/held/total bytes when it cannot.
  std::shared_ptr<Buffer> alloc(size_t bytes, const std::string& what = {});
  Tensor empty(const Shape& shape, DType dtype = DType::f32, const std::string& what = {});
  Tensor upload(const void* data, const Shape& shape, DType dtype, const std::string& what = {});
  Tensor upload(const std::vector<float>& v, const Shape& shape) { return upload(v.data(), shape, DType::f32); }
  Tensor upload(const std::vector<int32_t>& v, const Shape& shape) { return upload(v.data(), shape, DType::i32); }
  void write(Tensor& t, const void* data, size_t bytes, size_t offset_bytes = 0);
  void read(const Tensor& t, void* dst, size_t bytes, size_t offset_bytes = 0);
  std::vector<float> read_f32(const Tensor& t);
  std::vector<int32_t> read_i32(const Tensor& t);
  void fill_zero(Tensor& t);
  // Device-side copy of src's bytes into dst (offsets in bytes).
  void copy(const Tensor& src, Tensor& dst, size_t bytes, size_t src_off = 0, size_t dst_off = 0);
  Tensor clone(const Tensor& src, const std::string& what = {});

  // --- programs and launches ----------------------------------------------------
  // The kernel `name` of kernels/<file> built with `defines` (memoised; arguments are set
  // afresh by every launch, so one handle serves every call site).
  Kernel& kernel(const std::string& file, const std::string& name, const Defines& defines = {});

  // For a device-tuned variant that an unusual device may not build or fit: like kernel(), but
  // returns nullptr when the program does not build or the kernel needs more local memory than
  // the device has. The failure is
  // remembered (not retried) and described in notes(), so the caller falls back to a smaller,
  // more portable variant.
  Kernel* try_kernel(const std::string& file, const std::string& name, const Defines& defines);
  // What the runtime chose to work around on this device (variants that failed), for the user.
  const std::vector<std::string>& notes() const { return notes_; }

  // The single launch point: sets the arguments in order and enqueues. global must be a multiple
  // of local when local is given (use round_up). Records a profiling event when profiling is on.
  template <typename... Args>
  void launch(Kernel& kernel, const cl::NDRange& global, const cl::NDRange& local, const Args&... args) {
    cl_uint i = 0;
    (set_arg(kernel, i++, args), ...);
    enqueue(kernel, global, local);
  }

  void finish();
  // Device commands enqueued so far: kernel launches, CLBlast calls, buffer copies and fills (a
  // decode step's launch count is its main cost on big GPUs).
  uint64_t launches() const { return launches_; }
  void count_launch() { ++launches_; }
  void flush();  // submits what is queued without waiting (clFlush)
  bool profiling() const { return profiling_; }
  // Records an event produced outside launch() (CLBlast) under a name.
  void record_event(const std::string& name, cl_event ev);
  void write_profile();  // writes and clears the recorded events (no-op when off)
  // Waits for the queue, returns the recorded launches' device times and clears them (timing or
  // profiling on; empty otherwise).
  std::vector<LaunchTiming> take_timings();
  // A marker in the queue (profiling or timing on): the device time between two markers spans
  // everything enqueued between them, CLBlast's internal kernels included.
  cl::Event marker();
  static double elapsed_us(const cl::Event& from, const cl::Event& to);

  // What happened to a stored CLBlast tuning for this device (runtime/gemm_tuning.h; "" if none
  // or not applied). The Runtime applies none itself: whoever creates it calls apply_gemm_tuning
  // when tuning().gemm_tuning says so (apps/runtime_setup.h) and records the outcome here.
  const std::string& gemm_tuning() const { return gemm_tuning_; }
  void set_gemm_tuning(std::string note) { gemm_tuning_ = std::move(note); }

  // State an op keeps for this device between calls (a choice made once, such as the kernel
  // variant that builds): one T per Runtime, default-constructed on first use, freed with it.
  template <typename T>
  T& op_state() {
    std::shared_ptr<void>& p = op_state_[std::type_index(typeid(T))];
    if (!p) p = std::make_shared<T>();
    return *static_cast<T*>(p.get());
  }

  // Capability-driven variants: whether fp16 arithmetic may be used for fast paths.
  bool has_fp16() const { return dev_.fp16; }

 private:
  void set_arg(Kernel& k, cl_uint i, const Tensor& t);
  void set_arg(Kernel& k, cl_uint i, const cl::LocalSpaceArg& l);
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  void set_arg(Kernel& k, cl_uint i, const T& v) {
    check_cl(clSetKernelArg(k.k(), i, sizeof(T), &v), "clSetKernelArg", k.name);
  }
  void enqueue(Kernel& k, const cl::NDRange& global, const cl::NDRange& local);

  DeviceInfo dev_;
  Tuning tuning_;
  cl::Context ctx_;
  cl::CommandQueue queue_;
  std::unique_ptr<ProgramCache> programs_;
  std::shared_ptr<BufferPool> pool_;
  bool profiling_ = false;
  std::string profile_csv_;
  struct Record {
    std::string name;
    cl::Event ev;
    std::string dims;
  };
  std::vector<Record> records_;
  std::map<std::string, Kernel> kernels_;
  std::map<std::string, bool> unusable_;  // try_kernel keys that failed
  std::vector<std::string> notes_;
  std::string gemm_tuning_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> op_state_;
  uint64_t launches_ = 0;
  uint64_t alloc_calls_ = 0, fail_alloc_at_ = 0;
};

inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }
inline size_t ceil_div(size_t n, size_t m) { return (n + m - 1) / m; }

}  // namespace dsocr
