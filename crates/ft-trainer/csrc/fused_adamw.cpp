// AdamW through libtorch's fused kernel (`_fused_adamw_`, what `adamw_torch_fused` runs) and
// the gradients' global norm through `_foreach_norm` (what `clip_grad_norm_` runs): tch 0.22's
// generated API leaves out both, and without them an update is a dozen launches per tensor.
//
// Tensors cross as tch's `C_tensor`, a heap-allocated `at::Tensor`. Each function returns
// null, or an error message from `strdup` that the caller frees with `ft_free_error`.
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

namespace {

std::vector<at::Tensor> flattened(at::Tensor* const* tensors, size_t n) {
  std::vector<at::Tensor> list;
  list.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    list.push_back(tensors[i]->reshape({-1}));
  }
  return list;
}

std::optional<at::Tensor> optional(const at::Tensor* tensor) {
  if (tensor == nullptr) {
    return std::nullopt;
  }
  return *tensor;
}

char* message(const std::exception& error) { return strdup(error.what()); }

}  // namespace

extern "C" {

// `*out`: the L2 norm of the `n` gradients together (shape [1], f32).
char* ft_total_norm(at::Tensor* const* grads, size_t n, at::Tensor** out) {
  try {
    auto norms = at::_foreach_norm(flattened(grads, n), 2);
    *out = new at::Tensor(at::linalg_vector_norm(at::stack(norms), 2).reshape({1}));
    return nullptr;
  } catch (const std::exception& error) {
    return message(error);
  }
}

// One weight-decay group's AdamW step. The `n` values are concatenated into a new flat
// buffer, returned in `*out`, which the fused kernel updates in place, with the flat moments
// (as long as the values together). The gradients are divided by `grad_scale` when given, in
// place: the caller's are overwritten. When `found_inf` holds 1 the kernel changes nothing. `step` (shape [1], f32) is the step count
// after this step, shared by every parameter.
char* ft_fused_adamw(at::Tensor* const* values, at::Tensor* const* grads, size_t n,
                     at::Tensor* exp_avg, at::Tensor* exp_avg_sq, at::Tensor* step, double lr,
                     double beta1, double beta2, double weight_decay, double eps,
                     const at::Tensor* grad_scale, const at::Tensor* found_inf,
                     at::Tensor** out) {
  try {
    std::vector<int64_t> sizes;
    sizes.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      sizes.push_back(values[i]->numel());
    }
    auto updated = at::cat(flattened(values, n));
    auto params = updated.split_with_sizes(sizes);
    auto exp_avgs = exp_avg->split_with_sizes(sizes);
    auto exp_avg_sqs = exp_avg_sq->split_with_sizes(sizes);
    std::vector<at::Tensor> steps(n, *step);
    at::_fused_adamw_(params, flattened(grads, n), exp_avgs, exp_avg_sqs, {}, steps, lr, beta1, beta2,
                      weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false,
                      optional(grad_scale), optional(found_inf));
    *out = new at::Tensor(std::move(updated));
    return nullptr;
  } catch (const std::exception& error) {
    return message(error);
  }
}

void ft_free_error(char* error) { std::free(error); }

}  // extern "C"
