//! The one list of methods. Each line gives a method's enum variant, command-line name, the
//! encoder sharing it needs, whether it takes one backward pass per task, where its options
//! live, and how it is built; [`MethodKind`] (with `ALL`, `name`, parsing), [`BaselineConfig`]
//! (`[baselines.<name>]`), [`build`](crate::build) and the options part of a run's fingerprint
//! ([`options_json`]) are generated from it.
//!
//! Three groups, by where a method's options live:
//! - `plain`: none (Joint, PCGrad, …);
//! - `mtcool`: `[mtcool]` ([`MtCoolConfig`]), shared by MT-COOL and its ablations;
//! - `configured`: `[baselines.<name>]`, one serde struct per method, whose `Default` is the
//!   authors' setting.

use mtcool_models::{MultiTaskModel, Sharing};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::gradient_method::GradientMethod;
use crate::joint::Joint;
use crate::method::Method;
use crate::methods::*;
use crate::mtcool::{MtCool, MtCoolConfig, Variant};
use crate::weighting_method::WeightedLoss;
use crate::MethodOptions;

/// Where a method's options live in an experiment config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsAt {
    /// It has none.
    Nowhere,
    /// `[mtcool]`.
    MtCool,
    /// `[baselines.<name>]`.
    Baselines,
}

/// What the registry says of one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// The method.
    pub kind: MethodKind,
    /// Its command-line and results name.
    pub name: &'static str,
    /// The encoder sharing it trains.
    pub sharing: Sharing,
    /// Whether a step takes one backward pass per task (the gradient aggregators).
    pub per_task_gradients: bool,
    /// Where its options live.
    pub options: OptionsAt,
}

type Built = Result<Box<dyn Method>>;

macro_rules! registry {
    (
        plain {
            $( $(#[$pdoc:meta])* $pv:ident = $pn:literal, $ps:ident, grads = $pg:literal,
               |$pm:ident, $po:ident| $pb:expr; )*
        }
        mtcool {
            $( $(#[$mdoc:meta])* $mv:ident = $mn:literal,
               |$mm:ident, $mc:ident, $mo:ident| $mb:expr; )*
        }
        configured {
            $( $(#[$cdoc:meta])* $cv:ident = $cn:literal, $cs:ident, grads = $cg:literal,
               $cf:ident: $ct:ty, |$cm:ident, $cc:ident, $co:ident| $cb:expr; )*
        }
    ) => {
        /// The methods this crate implements, by their command-line names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MethodKind {
            $( $(#[$pdoc])* $pv, )*
            $( $(#[$mdoc])* $mv, )*
            $( $(#[$cdoc])* $cv, )*
        }

        /// Every method's line of the registry, in registry order.
        pub const REGISTRY: &[MethodInfo] = &[
            $( MethodInfo {
                kind: MethodKind::$pv,
                name: $pn,
                sharing: Sharing::$ps,
                per_task_gradients: $pg,
                options: OptionsAt::Nowhere,
            }, )*
            $( MethodInfo {
                kind: MethodKind::$mv,
                name: $mn,
                sharing: Sharing::Partitioned,
                per_task_gradients: false,
                options: OptionsAt::MtCool,
            }, )*
            $( MethodInfo {
                kind: MethodKind::$cv,
                name: $cn,
                sharing: Sharing::$cs,
                per_task_gradients: $cg,
                options: OptionsAt::Baselines,
            }, )*
        ];

        impl MethodKind {
            /// Every method, in registry order.
            pub const ALL: [MethodKind; REGISTRY.len()] = [
                $( MethodKind::$pv, )* $( MethodKind::$mv, )* $( MethodKind::$cv, )*
            ];
        }

        /// The baselines' options, one `[baselines.<name>]` table per method that has any;
        /// a missing table or key takes the authors' default.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct BaselineConfig {
            $(
                #[doc = concat!("`[baselines.", $cn, "]`.")]
                #[serde(rename = $cn)]
                pub $cf: $ct,
            )*
        }

        /// The options of `kind` as JSON, for run fingerprints: `[mtcool]` for MT-COOL and
        /// its ablations, the method's own `[baselines.<name>]` table, or empty for a method
        /// without options (so that changing one method's options leaves the other methods'
        /// runs valid).
        pub fn options_json(
            kind: MethodKind,
            mtcool: &MtCoolConfig,
            baselines: &BaselineConfig,
        ) -> String {
            match kind {
                $( MethodKind::$pv => String::new(), )*
                $( MethodKind::$mv => json(mtcool), )*
                $( MethodKind::$cv => json(&baselines.$cf), )*
            }
        }

        /// Builds `kind` for `model` from `options` (the sharing is checked by the caller).
        pub(crate) fn build_kind(
            kind: MethodKind,
            model: &dyn MultiTaskModel,
            options: &MethodOptions,
        ) -> Built {
            match kind {
                $( MethodKind::$pv => {
                    let ($pm, $po) = (model, options.optimizer);
                    $pb
                } )*
                $( MethodKind::$mv => {
                    let ($mm, $mc, $mo) = (model, options.mtcool, options.optimizer);
                    $mb
                } )*
                $( MethodKind::$cv => {
                    let ($cm, $cc, $co) = (model, &options.baselines.$cf, options.optimizer);
                    $cb
                } )*
            }
        }
    };
}

/// A config as JSON (every config serialises infallibly).
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A loss weighting as a method.
fn weighting<W: crate::Weighting + 'static>(
    w: W,
    model: &dyn MultiTaskModel,
    opt: crate::OptimizerConfig,
) -> Built {
    Ok(Box::new(WeightedLoss::new(w, model, opt)))
}

/// A three-sample rule as a method.
fn sampled<R: crate::sampled_method::SampledRule + 'static>(
    r: R,
    model: &dyn MultiTaskModel,
    opt: crate::OptimizerConfig,
) -> Built {
    Ok(Box::new(crate::sampled_method::SampledMethod::new(
        r, model, opt,
    )))
}

/// A gradient aggregator as a method.
fn aggregator<A: crate::Aggregator + 'static>(
    a: A,
    model: &dyn MultiTaskModel,
    opt: crate::OptimizerConfig,
) -> Built {
    Ok(Box::new(GradientMethod::new(a, model, opt)))
}

fn device(model: &dyn MultiTaskModel) -> candle_core::Device {
    model_device(model)
}

registry! {
    plain {
        /// One full network per task, each trained on its own loss.
        Independent = "independent", Independent, grads = false,
            |m, o| Ok(Box::new(Joint::new("independent", m, o)));
        /// One shared encoder trained on the sum of the task losses.
        Joint = "joint", Shared, grads = false,
            |m, o| Ok(Box::new(Joint::new("joint", m, o)));
        /// Projecting conflicting gradients (Yu et al., 2020).
        PcGrad = "pcgrad", Shared, grads = true, |m, o| aggregator(pcgrad::PcGrad, m, o);
        /// Random loss weighting (Lin et al., 2022).
        Rlw = "rlw", Shared, grads = false, |m, o| weighting(rlw::Rlw::new(m.num_tasks()), m, o);
        /// Geometric mean of the losses (Chennupati et al., 2019).
        Gls = "gls", Shared, grads = false, |m, o| weighting(gls::Gls, m, o);
        /// Conflict-free inverse gradients (Liu et al., 2024).
        ConFig = "con-fig", Shared, grads = true, |m, o| aggregator(con_fig::ConFig, m, o);
    }
    mtcool {
        /// MT-COOL's alternating per-task updates without noise, KL term or clamp.
        Vanilla = "vanilla", |m, c, o| Ok(Box::new(MtCool::new(m, Variant::Vanilla, c, o)?));
        /// MT-COOL without the similarity (KL) term.
        WoReg = "wo-reg", |m, c, o| Ok(Box::new(MtCool::new(m, Variant::WithoutReg, c, o)?));
        /// MT-COOL.
        MtCool = "mtcool", |m, c, o| Ok(Box::new(MtCool::new(m, Variant::Full, c, o)?));
    }
    configured {
        /// Σ_i w_i L_i with weights from the config.
        Fixed = "fixed", Shared, grads = false, fixed: fixed::FixedConfig,
            |m, c, o| weighting(fixed::Fixed::new(c, m.num_tasks())?, m, o);
        /// Learned homoscedastic-uncertainty weights (Kendall et al., 2018).
        Uncertainty = "uncertainty", Shared, grads = false,
            uncertainty: uncertainty::UncertaintyConfig,
            |m, c, o| weighting(uncertainty::Uncertainty::new(c, m.num_tasks(), &device(m))?, m, o);
        /// Multiple-gradient descent, min-norm point (Sener & Koltun, 2018).
        Mgda = "mgda", Shared, grads = true, mgda: mgda::MgdaConfig,
            |m, c, o| aggregator(mgda::Mgda::new(c), m, o);
        /// Gradient sign dropout (Chen et al., 2020).
        GradDrop = "graddrop", Shared, grads = true, graddrop: graddrop::GradDropConfig,
            |m, c, o| Ok(Box::new(graddrop::GradDrop::new(c, m, o)?));
        /// Conflict-averse gradient descent (Liu et al., 2021).
        CaGrad = "cagrad", Shared, grads = true, cagrad: cagrad::CagradConfig,
            |m, c, o| aggregator(cagrad::CaGrad::new(c)?, m, o);
        /// Dynamic weight average (Liu et al., 2019).
        Dwa = "dwa", Shared, grads = false, dwa: dwa::DwaConfig,
            |m, c, o| weighting(dwa::Dwa::new(c, m.num_tasks()), m, o);
        /// Impartial multi-task learning (Liu et al., 2021).
        Imtl = "imtl", Shared, grads = true, imtl: imtl::ImtlConfig,
            |m, c, o| aggregator(imtl::Imtl::new(c, m.num_tasks(), &device(m))?, m, o);
        /// Nash bargaining weights (Navon et al., 2022).
        NashMtl = "nash-mtl", Shared, grads = true, nash_mtl: nash::NashConfig,
            |m, c, o| aggregator(nash::NashMtl::new(c)?, m, o);
        /// Aligned gradients (Senushkin et al., 2023).
        AlignedMtl = "aligned-mtl", Shared, grads = true, aligned_mtl: aligned::AlignedConfig,
            |m, c, o| aggregator(aligned::AlignedMtl::new(c, m.num_tasks())?, m, o);
        /// Fast adaptive multitask optimisation (Liu et al., 2023).
        Famo = "famo", Shared, grads = false, famo: famo::FamoConfig,
            |m, c, o| weighting(famo::Famo::new(c, m.num_tasks()), m, o);
        /// Unconflicting projection of gradients (Quinton & Rey, 2024).
        UpGrad = "upgrad", Shared, grads = true, upgrad: upgrad::DualConeConfig,
            |m, c, o| aggregator(upgrad::DualCone::new(upgrad::DualConeRule::UpGrad, c)?, m, o);
        /// The mean gradient projected onto the dual cone (Quinton & Rey, 2024).
        DualProj = "dualproj", Shared, grads = true, dualproj: upgrad::DualConeConfig,
            |m, c, o| aggregator(upgrad::DualCone::new(upgrad::DualConeRule::DualProj, c)?, m, o);
        /// α-fair resource allocation (Ban & Ji, 2024).
        FairGrad = "fairgrad", Shared, grads = true, fairgrad: fairgrad::FairGradConfig,
            |m, c, o| aggregator(fairgrad::FairGrad::new(c)?, m, o);
        /// Gradient Vaccine (Wang et al., 2021).
        GradVac = "gradvac", Shared, grads = true, gradvac: gradvac::GradVacConfig,
            |m, c, o| aggregator(gradvac::GradVac::new(c, m.num_tasks())?, m, o);
        /// Smooth Tchebycheff scalarisation (Lin et al., 2024).
        Stch = "stch", Shared, grads = false, stch: stch::StchConfig,
            |m, c, o| weighting(stch::Stch::new(c, m.num_tasks())?, m, o);
        /// Gradient normalisation (Chen et al., 2018).
        GradNorm = "gradnorm", Shared, grads = true, gradnorm: gradnorm::GradNormConfig,
            |m, c, o| aggregator(gradnorm::GradNorm::new(c, m.num_tasks(), &device(m))?, m, o);
        /// Excess-risk weighting (He et al., 2024).
        ExcessMtl = "excess-mtl", Shared, grads = true, excess_mtl: excess_mtl::ExcessMtlConfig,
            |m, c, o| aggregator(excess_mtl::ExcessMtl::new(c, m.num_tasks())?, m, o);
        /// Dual-balancing (Lin et al., 2023).
        DbMtl = "db-mtl", Shared, grads = true, db_mtl: db_mtl::DbMtlConfig,
            |m, c, o| aggregator(db_mtl::DbMtl::new(c)?, m, o);
        /// Gradient tracking with MGDA-like weights (Fernando et al., 2023).
        Moco = "moco", Shared, grads = true, moco: moco::MocoConfig,
            |m, c, o| aggregator(moco::Moco::new(c, m.num_tasks())?, m, o);
        /// Direction-oriented multi-objective gradient (Xiao et al., 2023).
        SdmGrad = "sdmgrad", Shared, grads = true, sdmgrad: sdmgrad::SdmGradConfig,
            |m, c, o| sampled(sdmgrad::SdmGrad::new(c, m.num_tasks())?, m, o);
        /// Multi-objective gradient with double sampling (Chen et al., 2023).
        MoDo = "modo", Shared, grads = true, modo: modo::MoDoConfig,
            |m, c, o| sampled(modo::MoDo::new(c, m.num_tasks())?, m, o);
    }
}

impl MethodKind {
    /// Its line of the registry.
    pub fn info(self) -> &'static MethodInfo {
        // The registry lists every variant once, in declaration order.
        &REGISTRY[self as usize]
    }

    /// The method's command-line name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The encoder sharing the method trains.
    pub fn sharing(self) -> Sharing {
        self.info().sharing
    }

    /// Whether the method has options of its own (`[mtcool]` or `[baselines.<name>]`).
    pub fn has_options(self) -> bool {
        self.info().options != OptionsAt::Nowhere
    }

    /// Whether a step takes one backward pass per task.
    pub fn per_task_gradients(self) -> bool {
        self.info().per_task_gradients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_lists_every_variant_once_in_declaration_order() {
        for (i, info) in REGISTRY.iter().enumerate() {
            assert_eq!(info.kind as usize, i, "{}", info.name);
            assert_eq!(MethodKind::ALL[i], info.kind);
        }
        let mut names: Vec<&str> = REGISTRY.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len(), "names are unique");
    }

    #[test]
    fn options_json_is_each_methods_own_table() {
        let mut baselines = BaselineConfig::default();
        let before = options_json(MethodKind::CaGrad, &MtCoolConfig::default(), &baselines);
        baselines.mgda = mgda::MgdaConfig::default();
        baselines.cagrad.c = 0.9;
        let after = options_json(MethodKind::CaGrad, &MtCoolConfig::default(), &baselines);
        assert_ne!(before, after);
        assert!(after.contains("0.9"), "{after}");
        let mgda = options_json(MethodKind::Mgda, &MtCoolConfig::default(), &baselines);
        assert_eq!(
            mgda,
            serde_json::to_string(&baselines.mgda).unwrap_or_default()
        );
        assert_eq!(
            options_json(MethodKind::PcGrad, &MtCoolConfig::default(), &baselines),
            ""
        );
        let toml = toml::to_string(&baselines).unwrap_or_default();
        assert!(
            toml.contains("[nash-mtl]") && toml.contains("[aligned-mtl]"),
            "{toml}"
        );
    }
}
