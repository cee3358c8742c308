//! `--backend`: which burn backend and device a command runs on.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::tensor::Device;

/// A backend and device, as `--backend` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (`flex`).
    Flex,
    /// ndarray, on the CPU (`ndarray`).
    NdArray,
    /// libtorch on the CPU (`tch-cpu`).
    TchCpu,
    /// libtorch on CUDA device N (`tch-cuda[:N]`); without N, device 0, or the local rank's
    /// device when several processes train together.
    TchCuda(Option<usize>),
    /// wgpu adapter N, or the default adapter (`wgpu[:N]`); without N and with several
    /// processes, the local rank's adapter.
    Wgpu(Option<usize>),
    /// burn's CUDA backend on device N (`cuda[:N]`), chosen as for `tch-cuda`.
    Cuda(Option<usize>),
}

impl FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let (name, index) = match text.split_once(':') {
            Some((name, index)) => match index.parse::<usize>() {
                Ok(index) => (name, Some(index)),
                Err(_) => bail!("`{text}`: the device index after `:` must be a number"),
            },
            None => (text, None),
        };
        Ok(match (name, index) {
            ("flex", None) => Backend::Flex,
            ("ndarray", None) => Backend::NdArray,
            ("tch-cpu", None) => Backend::TchCpu,
            ("tch-cuda", index) => Backend::TchCuda(index),
            ("wgpu", index) => Backend::Wgpu(index),
            ("cuda", index) => Backend::Cuda(index),
            _ => bail!(
                "unknown backend `{text}`; expected {}",
                bench_report::BACKEND_CHOICES
            ),
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Flex => write!(f, "flex"),
            Backend::NdArray => write!(f, "ndarray"),
            Backend::TchCpu => write!(f, "tch-cpu"),
            Backend::TchCuda(index) => write!(f, "tch-cuda{}", Index(*index)),
            Backend::Wgpu(index) => write!(f, "wgpu{}", Index(*index)),
            Backend::Cuda(index) => write!(f, "cuda{}", Index(*index)),
        }
    }
}

/// `:N`, or nothing.
struct Index(Option<usize>);

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, ":{index}"),
            None => Ok(()),
        }
    }
}

impl Backend {
    /// The cargo feature of `bert-ft` that compiles this backend in, from the table
    /// `cargo xtask` reads ([`bench_report::BACKENDS`]).
    pub fn feature(self) -> &'static str {
        // Every name `FromStr` takes is in the table (`every_backend_is_in_the_feature_table`).
        bench_report::backend_feature(&self.to_string()).unwrap_or("an unknown feature")
    }

    /// The backend one process of several uses: a GPU backend given without an index takes
    /// the device of the process's rank on its machine, as `torchrun` hands out
    /// `LOCAL_RANK`. CPU backends and explicit indices are kept.
    pub fn for_local_rank(self, local_rank: usize) -> Backend {
        match self {
            Backend::TchCuda(None) => Backend::TchCuda(Some(local_rank)),
            Backend::Wgpu(None) => Backend::Wgpu(Some(local_rank)),
            Backend::Cuda(None) => Backend::Cuda(Some(local_rank)),
            other => other,
        }
    }

    /// Whether the backend's tensors live in memory this process allocates through its
    /// global allocator (flex, ndarray), rather than memory the backend manages itself
    /// (libtorch, the GPU drivers).
    pub fn allocates_on_the_heap(self) -> bool {
        matches!(self, Backend::Flex | Backend::NdArray)
    }

    /// The device, or an error naming the missing feature or device. Never falls back to
    /// another device.
    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex | Backend::NdArray | Backend::TchCpu => self.cpu_device(),
            Backend::TchCuda(index) => self.tch_cuda_device(index.unwrap_or(0)),
            Backend::Wgpu(index) => self.wgpu_device(index),
            Backend::Cuda(index) => self.cuda_device(index.unwrap_or(0)),
        }
    }

    /// The error for a backend this binary was built without.
    fn not_compiled(self) -> anyhow::Error {
        anyhow::anyhow!(
            "backend `{self}` is not compiled into this binary; rebuild with `--features {}` \
             (cargo xtask does this from --backend)",
            self.feature()
        )
    }

    /// flex, ndarray or libtorch on the CPU: there is one device.
    #[allow(unreachable_code, deprecated)]
    fn cpu_device(self) -> Result<Device> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Backend::NdArray => Ok(Device::ndarray()),
            #[cfg(feature = "tch")]
            Backend::TchCpu => Ok(Device::libtorch()),
            _ => Err(self.not_compiled()),
        }
    }

    /// libtorch's CUDA device `index`, where libtorch sees it.
    fn tch_cuda_device(self, index: usize) -> Result<Device> {
        #[cfg(feature = "tch")]
        {
            let count = Device::enumerate(burn::tensor::DeviceType::LibTorch).len();
            if index >= count {
                bail!("no CUDA device {index} for libtorch: it sees {count} CUDA device(s)");
            }
            #[allow(deprecated)]
            return Ok(Device::libtorch_cuda(index));
        }
        #[allow(unreachable_code)]
        {
            let _ = index;
            Err(self.not_compiled())
        }
    }

    /// wgpu's adapter `index`, or its default adapter.
    fn wgpu_device(self, index: Option<usize>) -> Result<Device> {
        #[cfg(feature = "wgpu")]
        {
            let adapters = Device::enumerate(burn::tensor::DeviceType::Wgpu);
            if adapters.is_empty() {
                bail!(
                    "no wgpu adapter found (no GPU driver; on Linux without a GPU install \
                     mesa-vulkan-drivers for the lavapipe CPU device)"
                );
            }
            return match index {
                None => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
                Some(i) => adapters.get(i).cloned().ok_or_else(|| {
                    anyhow::anyhow!("no wgpu adapter {i}: found {}", adapters.len())
                }),
            };
        }
        #[allow(unreachable_code)]
        {
            let _ = index;
            Err(self.not_compiled())
        }
    }

    /// burn's CUDA device `index`.
    fn cuda_device(self, index: usize) -> Result<Device> {
        #[cfg(feature = "cuda")]
        {
            let count = Device::enumerate(burn::tensor::DeviceType::Cuda).len();
            if index >= count {
                bail!("no CUDA device {index}: found {count}");
            }
            return Ok(Device::cuda(index));
        }
        #[allow(unreachable_code)]
        {
            let _ = index;
            Err(self.not_compiled())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for name in [
            "flex",
            "ndarray",
            "tch-cpu",
            "tch-cuda:1",
            "tch-cuda",
            "wgpu",
            "wgpu:0",
            "cuda:0",
            "cuda",
        ] {
            assert_eq!(name.parse::<Backend>().unwrap().to_string(), name);
        }
        assert_eq!(
            "tch-cuda".parse::<Backend>().unwrap(),
            Backend::TchCuda(None)
        );
        assert!("tpu".parse::<Backend>().is_err());
        assert!("wgpu:x".parse::<Backend>().is_err());
        assert!("flex:1".parse::<Backend>().is_err());
    }

    #[test]
    fn every_backend_is_in_the_feature_table() {
        for (name, feature) in bench_report::BACKENDS {
            let backend = name.parse::<Backend>().unwrap();
            assert_eq!(backend.feature(), feature, "{name}");
        }
        assert_eq!(Backend::TchCuda(Some(2)).feature(), "tch");
    }

    #[test]
    fn each_process_takes_the_gpu_of_its_local_rank_unless_told() {
        let local = |name: &str| name.parse::<Backend>().unwrap().for_local_rank(3);
        assert_eq!(local("tch-cuda"), Backend::TchCuda(Some(3)));
        assert_eq!(local("cuda"), Backend::Cuda(Some(3)));
        assert_eq!(local("wgpu"), Backend::Wgpu(Some(3)));
        assert_eq!(local("tch-cuda:1"), Backend::TchCuda(Some(1)));
        assert_eq!(local("flex"), Backend::Flex);
    }

    #[test]
    fn flex_is_always_available_in_default_builds() {
        #[cfg(feature = "flex")]
        assert!(Backend::Flex.device().is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_backend_not_compiled_in_names_its_feature() {
        let err = Backend::Cuda(None).device().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    /// These machines have no NVIDIA GPU: asking for one is an error, not a CPU fallback.
    #[cfg(feature = "tch")]
    #[test]
    fn an_absent_cuda_device_is_an_error_naming_it() {
        if burn::tensor::Device::enumerate(burn::tensor::DeviceType::LibTorch).is_empty() {
            let err = Backend::TchCuda(None).device().unwrap_err().to_string();
            assert!(err.contains("no CUDA device 0"), "{err}");
        }
        let err = Backend::TchCuda(Some(7)).device().unwrap_err().to_string();
        assert!(err.contains("no CUDA device 7"), "{err}");
    }
}
