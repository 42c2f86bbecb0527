#include "runtime/runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace dsocr {

Runtime::Runtime(const RuntimeOptions& opts) : tuning_(opts.tuning.value_or(Tuning{})) {
  tuning_.check();  // before the device is touched: a bad knob is a usage mistake
  dev_ = select_device(opts.device);
  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, reinterpret_cast<cl_context_properties>(dev_.platform), 0};
  cl_context c = clCreateContext(props, 1, &dev_.device, nullptr, nullptr, &err);
  check_cl(err, "clCreateContext", dev_.label());
  ctx_ = cl::Context(c);
  profile_csv_ = opts.profile_csv;
  if (profile_csv_.empty())
    if (const char* p = std::getenv("DSOCR_PROFILE"); p && *p) profile_csv_ = p;
  profiling_ = !profile_csv_.empty() || opts.timing;
  cl_command_queue q = clCreateCommandQueue(c, dev_.device, profiling_ ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  check_cl(err, "clCreateCommandQueue", dev_.label());
  queue_ = cl::CommandQueue(q);
  programs_ = std::make_unique<ProgramCache>(ctx_, dev_);
  fail_alloc_at_ = opts.fail_alloc_at;
  if (const char* f = std::getenv("DSOCR_FAIL_ALLOC"); f && *f && fail_alloc_at_ == 0) {
    char* end = nullptr;
    fail_alloc_at_ = std::strtoull(f, &end, 10);
    if (*end || fail_alloc_at_ == 0) throw Error(fmt::format("DSOCR_FAIL_ALLOC='{}': expected a positive integer", f));
  }
  // Up to an eighth of the device's memory (at most 1 GiB) of freed buffers is kept for reuse.
  pool_ = std::make_shared<BufferPool>(tuning_.pool, std::min<uint64_t>(dev_.global_mem / 8, uint64_t(1) << 30));
}

Runtime::~Runtime() {
  try {
    queue_.finish();
    write_profile();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsocr: while releasing the device: %s\n", e.what());
  }
}

std::string Runtime::memory_summary() const {
  const MemoryStats& m = pool_->stats;
  return fmt::format(
      "device memory: {:.1f} MiB live, {:.1f} MiB cached for reuse, {:.1f} MiB peak live, {:.1f} MiB peak held, {} "
      "allocations ({} reused)",
      m.current / 1048576.0, m.cached / 1048576.0, m.peak / 1048576.0, m.peak_held / 1048576.0, m.allocations,
      m.reused);
}

namespace {

// 512 bytes, 12.5 KiB, 3.0 MiB, 1.25 GiB: small allocations stay legible in error messages.
std::string bytes_str(uint64_t b) {
  if (b < 1024) return fmt::format("{} bytes", b);
  if (b < (1u << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  if (b < (1u << 30)) return fmt::format("{:.1f} MiB", b / 1048576.0);
  return fmt::format("{:.2f} GiB", b / 1073741824.0);
}

}  // namespace

std::shared_ptr<Buffer> Runtime::alloc(size_t bytes, const std::string& what) {
  if (bytes == 0) bytes = 4;  // OpenCL forbids empty buffers
  auto oom = [&](const std::string& why) {
    return OutOfDeviceMemory(fmt::format(
        "out of device memory allocating {}{} on {}: {} (held {}, device total {}, largest single allocation {})",
        what.empty() ? "an unnamed buffer of " : what + ", ", bytes_str(bytes), dev_.label(), why,
        bytes_str(pool_->stats.current), bytes_str(dev_.global_mem), bytes_str(dev_.max_alloc)));
  };
  if (bytes > dev_.max_alloc) throw oom("larger than the device's maximum allocation");
  const bool inject = fail_alloc_at_ != 0 && ++alloc_calls_ == fail_alloc_at_;
  MemoryStats& m = pool_->stats;
  size_t got = 0;
  if (!inject)
    if (cl_mem reuse = pool_->take(bytes, got)) return std::make_shared<Buffer>(cl::Buffer(reuse), bytes, got, pool_);
  if (m.current + m.cached + bytes > dev_.global_mem) pool_->drain();
  if (m.current + bytes > dev_.global_mem) throw oom("exceeds the device's global memory");
  auto create = [&](cl_int& err) -> cl_mem {
    if (inject) {
      err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
      return nullptr;
    }
    return clCreateBuffer(ctx_(), CL_MEM_READ_WRITE, bytes, nullptr, &err);
  };
  cl_int err = CL_SUCCESS;
  cl_mem mem = create(err);
  auto failed = [](cl_int e) {
    return e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES || e == CL_OUT_OF_HOST_MEMORY ||
           e == CL_INVALID_BUFFER_SIZE;
  };
  if (failed(err) && m.cached > 0) {  // the cache may hold what the driver needs: release it, try again
    pool_->drain();
    mem = create(err);
  }
  if (failed(err))
    throw oom(inject ? fmt::format("{} (injected: allocation #{}, DSOCR_FAIL_ALLOC)", cl_error_name(err), alloc_calls_)
                     : std::string(cl_error_name(err)));
  check_cl(err, "clCreateBuffer", what);
  return std::make_shared<Buffer>(cl::Buffer(mem), bytes, bytes, pool_);
}

Tensor Runtime::empty(const Shape& shape, DType dtype, const std::string& what) {
  for (auto d : shape)
    if (d < 0) throw Error(fmt::format("negative dimension in shape {} for {}", shape_str(shape), what));
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.buffer = alloc(t.bytes(), what);
  return t;
}

Tensor Runtime::upload(const void* data, const Shape& shape, DType dtype, const std::string& what) {
  Tensor t = empty(shape, dtype, what);
  write(t, data, t.bytes());
  return t;
}

void Runtime::write(Tensor& t, const void* data, size_t bytes, size_t off) {
  if (bytes == 0) return;
  if (off + bytes > t.buffer->bytes())
    throw Error(fmt::format("write of {} bytes at {} past the end of a {}-byte buffer", bytes, off, t.buffer->bytes()));
  check_cl(clEnqueueWriteBuffer(queue_(), t.mem()(), CL_TRUE, off, bytes, data, 0, nullptr, nullptr),
           "clEnqueueWriteBuffer");
}

void Runtime::read(const Tensor& t, void* dst, size_t bytes, size_t off) {
  if (bytes == 0) return;
  if (off + bytes > t.buffer->bytes())
    throw Error(fmt::format("read of {} bytes at {} past the end of a {}-byte buffer", bytes, off, t.buffer->bytes()));
  check_cl(clEnqueueReadBuffer(queue_(), t.mem()(), CL_TRUE, off, bytes, dst, 0, nullptr, nullptr),
           "clEnqueueReadBuffer");
}

std::vector<float> Runtime::read_f32(const Tensor& t) {
  if (t.dtype != DType::f32) throw Error(fmt::format("read_f32 of a {} tensor", dtype_name(t.dtype)));
  std::vector<float> v(t.numel());
  read(t, v.data(), t.bytes());
  return v;
}

std::vector<int32_t> Runtime::read_i32(const Tensor& t) {
  if (t.dtype != DType::i32) throw Error(fmt::format("read_i32 of a {} tensor", dtype_name(t.dtype)));
  std::vector<int32_t> v(t.numel());
  read(t, v.data(), t.bytes());
  return v;
}

void Runtime::fill_zero(Tensor& t) {
  cl_uint zero = 0;
  size_t bytes = round_up(t.bytes(), 4);
  if (bytes > t.buffer->bytes()) bytes = t.buffer->bytes() / 4 * 4;
  check_cl(clEnqueueFillBuffer(queue_(), t.mem()(), &zero, sizeof(zero), 0, bytes, 0, nullptr, nullptr),
           "clEnqueueFillBuffer");
  ++launches_;
}

void Runtime::copy(const Tensor& src, Tensor& dst, size_t bytes, size_t src_off, size_t dst_off) {
  if (bytes == 0) return;
  if (src_off + bytes > src.buffer->bytes() || dst_off + bytes > dst.buffer->bytes())
    throw Error(fmt::format("copy of {} bytes out of bounds (src {} at {}, dst {} at {})", bytes, src.buffer->bytes(),
                            src_off, dst.buffer->bytes(), dst_off));
  cl_event ev = nullptr;
  check_cl(clEnqueueCopyBuffer(queue_(), src.mem()(), dst.mem()(), src_off, dst_off, bytes, 0, nullptr,
                               profiling_ ? &ev : nullptr),
           "clEnqueueCopyBuffer");
  ++launches_;
  record_event("copy_buffer", ev);
}

Tensor Runtime::clone(const Tensor& src, const std::string& what) {
  Tensor t = empty(src.shape, src.dtype, what);
  copy(src, t, src.bytes());
  return t;
}

Kernel& Runtime::kernel(const std::string& file, const std::string& name, const Defines& defines) {
  std::string key = file + "\n" + ProgramCache::options_for(defines) + "\n" + name;
  if (auto it = kernels_.find(key); it != kernels_.end()) return it->second;
  const cl::Program& prog = programs_->get(file, defines);
  cl_int err = CL_SUCCESS;
  cl_kernel k = clCreateKernel(prog(), name.c_str(), &err);
  check_cl(err, "clCreateKernel", fmt::format("kernel {} in kernels/{}", name, file));
  return kernels_.emplace(key, Kernel{cl::Kernel(k), name}).first->second;
}

Kernel* Runtime::try_kernel(const std::string& file, const std::string& name, const Defines& defines) {
  const std::string options = ProgramCache::options_for(defines);
  const std::string key = file + "\n" + options + "\n" + name;
  if (unusable_.count(key)) return nullptr;
  std::string why;
  Kernel* k = nullptr;
  try {
    k = &kernel(file, name, defines);
    // CL_KERNEL_WORK_GROUP_SIZE is not consulted: Mesa 22's rusticl reports 32 for kernels that
    // run with 128 work-items (every golden passes there), so it would refuse working variants.
    cl_ulong local = 0;
    check_cl(clGetKernelWorkGroupInfo(k->k(), dev_.device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof(local), &local, nullptr),
             "clGetKernelWorkGroupInfo", name);
    if (local > dev_.local_mem)
      why = fmt::format("it needs {} bytes of local memory, the device has {}", local, dev_.local_mem);
  } catch (const Error& e) {
    std::string msg = e.what();
    why = msg.substr(0, msg.find('\n'));
  }
  if (why.empty()) return k;
  unusable_[key] = true;
  kernels_.erase(key);
  notes_.push_back(fmt::format("kernels/{} {} with {} is not usable on {} ({}); falling back to a smaller variant",
                               file, name, options, dev_.label(), why));
  return nullptr;
}

void Runtime::set_arg(Kernel& k, cl_uint i, const Tensor& t) {
  cl_mem m = t.mem()();
  if (cl_int err = clSetKernelArg(k.k(), i, sizeof(cl_mem), &m); err != CL_SUCCESS)
    check_cl(err, "clSetKernelArg", fmt::format("{} arg {}", k.name, i));  // message built only on failure
}

void Runtime::set_arg(Kernel& k, cl_uint i, const cl::LocalSpaceArg& l) {
  if (cl_int err = clSetKernelArg(k.k(), i, l.size_, nullptr); err != CL_SUCCESS)
    check_cl(err, "clSetKernelArg", fmt::format("{} local arg {}", k.name, i));
}

void Runtime::enqueue(Kernel& k, const cl::NDRange& global, const cl::NDRange& local) {
  cl_uint dims = static_cast<cl_uint>(global.dimensions());
  for (cl_uint d = 0; d < dims; ++d)
    if (global[d] == 0) return;  // empty launch: nothing to do
  cl_event ev = nullptr;
  ++launches_;
  cl_int err = clEnqueueNDRangeKernel(queue_(), k.k(), dims, nullptr, global,
                                      local.dimensions() ? (const size_t*)local : nullptr, 0, nullptr,
                                      profiling_ ? &ev : nullptr);
  if (err != CL_SUCCESS) {
    std::string g, l;
    for (cl_uint d = 0; d < dims; ++d) g += fmt::format("{}{}", d ? "x" : "", global[d]);
    for (cl_uint d = 0; d < local.dimensions(); ++d) l += fmt::format("{}{}", d ? "x" : "", local[d]);
    check_cl(err, "clEnqueueNDRangeKernel", fmt::format("{} global {} local {}", k.name, g, l.empty() ? "auto" : l));
  }
  if (profiling_) {
    std::string g;
    for (cl_uint d = 0; d < dims; ++d) g += fmt::format("{}{}", d ? "x" : "", global[d]);
    records_.push_back({k.name, cl::Event(ev), g});
  }
}

void Runtime::record_event(const std::string& name, cl_event ev) {
  if (profiling_ && ev)
    records_.push_back({name, cl::Event(ev), ""});
  else if (ev)
    clReleaseEvent(ev);
}

void Runtime::finish() { check_cl(queue_.finish(), "clFinish"); }

void Runtime::flush() { check_cl(queue_.flush(), "clFlush"); }

std::vector<LaunchTiming> Runtime::take_timings() {
  std::vector<LaunchTiming> out;
  if (!profiling_) return out;
  finish();
  for (auto& r : records_) {
    cl_ulong s = 0, e = 0;
    clGetEventProfilingInfo(r.ev(), CL_PROFILING_COMMAND_START, sizeof(s), &s, nullptr);
    clGetEventProfilingInfo(r.ev(), CL_PROFILING_COMMAND_END, sizeof(e), &e, nullptr);
    out.push_back({r.name, e > s ? (e - s) / 1000.0 : 0.0});
  }
  records_.clear();
  return out;
}

cl::Event Runtime::marker() {
  cl_event ev = nullptr;
  check_cl(clEnqueueMarkerWithWaitList(queue_(), 0, nullptr, &ev), "clEnqueueMarkerWithWaitList");
  return cl::Event(ev);
}

double Runtime::elapsed_us(const cl::Event& from, const cl::Event& to) {
  cl_ulong a = 0, b = 0;
  check_cl(clGetEventProfilingInfo(from(), CL_PROFILING_COMMAND_END, sizeof(a), &a, nullptr),
           "clGetEventProfilingInfo");
  check_cl(clGetEventProfilingInfo(to(), CL_PROFILING_COMMAND_END, sizeof(b), &b, nullptr), "clGetEventProfilingInfo");
  return b > a ? (b - a) / 1000.0 : 0.0;
}

void Runtime::write_profile() {
  if (!profiling_ || profile_csv_.empty() || records_.empty()) return;
  finish();
  bool exists = std::ifstream(profile_csv_).good();
  std::ofstream out(profile_csv_, std::ios::app);
  if (!out) throw Error("cannot write the profile to " + profile_csv_);
  if (!exists) out << "kernel,global,queued_ns,start_ns,end_ns,duration_us\n";
  for (auto& r : records_) {
    cl_ulong q = 0, s = 0, e = 0;
    clGetEventProfilingInfo(r.ev(), CL_PROFILING_COMMAND_QUEUED, sizeof(q), &q, nullptr);
    clGetEventProfilingInfo(r.ev(), CL_PROFILING_COMMAND_START, sizeof(s), &s, nullptr);
    clGetEventProfilingInfo(r.ev(), CL_PROFILING_COMMAND_END, sizeof(e), &e, nullptr);
    out << fmt::format("{},{},{},{},{},{:.3f}\n", r.name, r.dims, q, s, e, (e - s) / 1000.0);
  }
  records_.clear();
}

}  // namespace dsocr
