//! Which CPU a figure was measured on.
//!
//! Speed ratios against PyTorch move with the CPU (the same code ran 1.25× the Hugging Face
//! Trainer on AMD EPYC and below it on Intel Xeon), and a VM's model name may say no more than
//! "Intel(R) Xeon(R) Processor". So results are keyed by vendor, family and model, and carry
//! the SIMD features the kernels choose between and the thread count.

use serde::{Deserialize, Serialize};

/// The SIMD features worth reporting: those that decide which kernels run.
const SIMD_FLAGS: [&str; 19] = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512cd",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "bf16",
];

/// A CPU as `/proc/cpuinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuIdentity {
    /// `vendor_id`, such as `GenuineIntel` or `AuthenticAMD`.
    pub vendor: String,
    /// `cpu family`, where reported.
    #[serde(default)]
    pub family: Option<u32>,
    /// `model`, where reported.
    #[serde(default)]
    pub model: Option<u32>,
    /// `model name`.
    pub model_name: String,
    /// The SIMD features among those kernels choose between, in a fixed order.
    pub simd: Vec<String>,
    /// Logical CPUs this process may run on.
    pub threads: usize,
}

impl CpuIdentity {
    /// This machine's CPU.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::parse(&cpuinfo, threads)
    }

    /// The CPU that the text of `/proc/cpuinfo` describes (its first processor).
    pub fn parse(cpuinfo: &str, threads: usize) -> Self {
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let flags = field("flags")
            .or_else(|| field("Features"))
            .unwrap_or_default();
        let present: Vec<&str> = flags.split_whitespace().collect();
        Self {
            vendor: field("vendor_id")
                .or_else(|| field("CPU implementer").map(|id| format!("implementer {id}")))
                .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            family: field("cpu family").and_then(|v| v.parse().ok()),
            model: field("model").and_then(|v| v.parse().ok()),
            model_name: field("model name").unwrap_or_else(|| "unknown".to_string()),
            simd: SIMD_FLAGS
                .iter()
                .filter(|flag| present.contains(flag))
                .map(|flag| flag.to_string())
                .collect(),
            threads,
        }
    }

    /// The key results are filed under: one CPU kind, whatever its VM calls it.
    pub fn key(&self) -> String {
        match (self.family, self.model) {
            (Some(family), Some(model)) => {
                format!("{} family {family} model {model}", self.vendor)
            }
            _ => format!("{} {}", self.vendor, self.model_name),
        }
    }

    /// A heading for this CPU's tables.
    pub fn title(&self) -> String {
        match (self.family, self.model) {
            (Some(family), Some(model)) => format!(
                "{} ({}, family {family}, model {model})",
                self.model_name, self.vendor
            ),
            _ => format!("{} ({})", self.model_name, self.vendor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XEON: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
        model\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n\
        flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile\n\
        processor\t: 1\nvendor_id\t: GenuineIntel\n";

    #[test]
    fn a_vm_xeon_is_keyed_by_family_and_model() {
        let cpu = CpuIdentity::parse(XEON, 2);
        assert_eq!(cpu.key(), "GenuineIntel family 6 model 207");
        assert_eq!(
            cpu.simd,
            [
                "sse4_2",
                "avx",
                "avx2",
                "fma",
                "avx512f",
                "avx512bw",
                "avx512_bf16",
                "amx_tile",
                "amx_bf16"
            ]
        );
        assert_eq!(cpu.threads, 2);
        assert!(
            cpu.title()
                .starts_with("Intel(R) Xeon(R) Processor (GenuineIntel")
        );
    }

    #[test]
    fn another_cpu_gets_another_key() {
        let amd = XEON
            .replace("GenuineIntel", "AuthenticAMD")
            .replace("cpu family\t: 6", "cpu family\t: 25");
        assert_ne!(
            CpuIdentity::parse(&amd, 2).key(),
            CpuIdentity::parse(XEON, 2).key()
        );
        let unknown = CpuIdentity::parse("", 1);
        assert_eq!(unknown.family, None);
        assert!(unknown.key().ends_with("unknown"));
    }
}
