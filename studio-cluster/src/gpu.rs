//! NVIDIA GPU VM sizes: acs-engine's NC/NV/ND lists plus the sizes Azure sells today.
//!
//! acs-engine installed NVIDIA drivers on agent pools whose `vmSize` was in its list (K80, M60,
//! P40, P100, V100). Azure has since retired the K80, M60, P40 and P100 sizes (NC, NV, ND v1,
//! NCv2) and added T4, A10, A100, H100 and H200 sizes. [`lookup`] finds a size in this table
//! (case-insensitive, `_Promo` suffix ignored); retired sizes name a current size with the same
//! number of GPUs ([`GpuSize::successor`]) that [`generate`](crate::generate) can use instead.
//!
//! ```
//! use studio_cluster::gpu;
//!
//! let nc6 = gpu::lookup("standard_nc6").expect("a GPU size");
//! assert_eq!((nc6.gpu, nc6.gpus, nc6.retired), ("K80", 1, true));
//! assert_eq!(nc6.successor, Some("Standard_NC4as_T4_v3"));
//! assert!(gpu::lookup("Standard_D2_v2").is_none());
//! ```

/// One NVIDIA GPU VM size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuSize {
    /// The size as Azure spells it, e.g. `Standard_NC4as_T4_v3`.
    pub name: &'static str,
    /// The GPU model, e.g. `T4`, `A100 80GB`.
    pub gpu: &'static str,
    /// GPUs per VM (a partial GPU counts as 1).
    pub gpus: u8,
    /// Azure no longer creates VMs of this size.
    pub retired: bool,
    /// For a retired size: a current size with the same number of GPUs.
    pub successor: Option<&'static str>,
}

const fn current(name: &'static str, gpu: &'static str, gpus: u8) -> GpuSize {
    GpuSize {
        name,
        gpu,
        gpus,
        retired: false,
        successor: None,
    }
}

const fn retired(name: &'static str, gpu: &'static str, gpus: u8) -> GpuSize {
    let successor = match gpus {
        1 => "Standard_NC4as_T4_v3",
        2 => "Standard_NC48ads_A100_v4",
        4 => "Standard_NC64as_T4_v3",
        _ => "Standard_ND96asr_v4",
    };
    GpuSize {
        name,
        gpu,
        gpus,
        retired: true,
        successor: Some(successor),
    }
}

/// Every NVIDIA size the toolkit knows, oldest family first.
pub const SIZES: &[GpuSize] = &[
    // acs-engine's list. NC (K80), NV (M60), ND (P40) and NCv2 (P100) were retired in 2023.
    retired("Standard_NC6", "K80", 1),
    retired("Standard_NC12", "K80", 2),
    retired("Standard_NC24", "K80", 4),
    retired("Standard_NC24r", "K80", 4),
    retired("Standard_NV6", "M60", 1),
    retired("Standard_NV12", "M60", 2),
    retired("Standard_NV24", "M60", 4),
    retired("Standard_NV24r", "M60", 4),
    retired("Standard_ND6s", "P40", 1),
    retired("Standard_ND12s", "P40", 2),
    retired("Standard_ND24s", "P40", 4),
    retired("Standard_ND24rs", "P40", 4),
    retired("Standard_NC6s_v2", "P100", 1),
    retired("Standard_NC12s_v2", "P100", 2),
    retired("Standard_NC24s_v2", "P100", 4),
    retired("Standard_NC24rs_v2", "P100", 4),
    // NCv3 and NDv2 (V100), NVv3 (M60).
    current("Standard_NC6s_v3", "V100", 1),
    current("Standard_NC12s_v3", "V100", 2),
    current("Standard_NC24s_v3", "V100", 4),
    current("Standard_NC24rs_v3", "V100", 4),
    current("Standard_ND40rs_v2", "V100 32GB", 8),
    current("Standard_NV12s_v3", "M60", 1),
    current("Standard_NV24s_v3", "M60", 2),
    current("Standard_NV48s_v3", "M60", 4),
    // NCasT4_v3 (T4).
    current("Standard_NC4as_T4_v3", "T4", 1),
    current("Standard_NC8as_T4_v3", "T4", 1),
    current("Standard_NC16as_T4_v3", "T4", 1),
    current("Standard_NC64as_T4_v3", "T4", 4),
    // NVadsA10_v5 (partial to two A10) and NCads_A10_v4.
    current("Standard_NV6ads_A10_v5", "A10 (1/6)", 1),
    current("Standard_NV12ads_A10_v5", "A10 (1/3)", 1),
    current("Standard_NV18ads_A10_v5", "A10 (1/2)", 1),
    current("Standard_NV36ads_A10_v5", "A10", 1),
    current("Standard_NV36adms_A10_v5", "A10", 1),
    current("Standard_NV72ads_A10_v5", "A10", 2),
    current("Standard_NC8ads_A10_v4", "A10", 1),
    current("Standard_NC16ads_A10_v4", "A10", 1),
    current("Standard_NC32ads_A10_v4", "A10", 2),
    // NC A100 v4 (PCIe A100 80GB), ND A100 v4 (SXM A100 40GB / 80GB).
    current("Standard_NC24ads_A100_v4", "A100 80GB", 1),
    current("Standard_NC48ads_A100_v4", "A100 80GB", 2),
    current("Standard_NC96ads_A100_v4", "A100 80GB", 4),
    current("Standard_ND96asr_v4", "A100 40GB", 8),
    current("Standard_ND96amsr_A100_v4", "A100 80GB", 8),
    // NC H100 v5, ND H100 v5, ND H200 v5.
    current("Standard_NC40ads_H100_v5", "H100 NVL", 1),
    current("Standard_NC80adis_H100_v5", "H100 NVL", 2),
    current("Standard_ND96isr_H100_v5", "H100", 8),
    current("Standard_ND96isr_H200_v5", "H200", 8),
];

/// The GPU size named `vm_size` (case-insensitive; a `_Promo` suffix is ignored).
pub fn lookup(vm_size: &str) -> Option<&'static GpuSize> {
    let trimmed = vm_size.trim();
    let base = strip_suffix_ignore_case(trimmed, "_promo").unwrap_or(trimmed);
    SIZES.iter().find(|s| s.name.eq_ignore_ascii_case(base))
}

/// Whether `vm_size` has NVIDIA GPUs (any size in [`SIZES`]).
pub fn is_nvidia(vm_size: &str) -> bool {
    lookup(vm_size).is_some()
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_retired_size_names_a_current_successor_with_as_many_gpus() {
        for size in SIZES.iter().filter(|s| s.retired) {
            let next = lookup(size.successor.unwrap()).unwrap();
            assert!(!next.retired, "{}", size.name);
            assert_eq!(next.gpus, size.gpus, "{}", size.name);
        }
        for size in SIZES.iter().filter(|s| !s.retired) {
            assert!(size.successor.is_none(), "{}", size.name);
        }
    }

    #[test]
    fn names_are_unique_and_lookups_ignore_case_and_promo() {
        for (i, a) in SIZES.iter().enumerate() {
            assert!(
                SIZES[i + 1..]
                    .iter()
                    .all(|b| !a.name.eq_ignore_ascii_case(b.name))
            );
        }
        assert_eq!(lookup("STANDARD_NC6_PROMO").unwrap().name, "Standard_NC6");
        assert_eq!(lookup("standard_nd96isr_h100_v5").unwrap().gpu, "H100");
        assert!(is_nvidia("Standard_NC24ads_A100_v4"));
        assert!(!is_nvidia("Standard_D2_v2"));
        assert!(!is_nvidia("_promo"));
    }
}
