/// Differential privacy for federated rounds, pure and free of I/O like `TesseraSecAgg`.
///
/// - Clipping: a site's whole update is scaled to L2 norm at most C; adaptive clipping
///   (``AdaptiveClipping``) moves C towards a target quantile of the sites' update norms
///   (Andrew et al. 2021), from a noisy count of the sites within C.
/// - Central DP (user-level DP-FedAvg, McMahan et al. 2018): Gaussian noise N(0, σ²C²) on the
///   sum of clipped updates (``GaussianNoise``), divided by the fixed expected cohort size.
/// - Distributed DP (``DistributedSkellam``): each site adds its share of integer noise after
///   rotation and rounding, so the sum that secure aggregation reveals carries the whole noise and
///   the coordinator never sees a less-noised value.
/// - A Rényi-DP accountant that composes rounds and converts to (ε, δ).
///
/// ## Why Skellam for distributed DP
///
/// Secure aggregation adds integer vectors, so the noise must be integer and exact in the ring.
/// The distributed discrete Gaussian (Kairouz, Liu, Steinke 2021) is not closed under sums: the
/// sum of the sites' discrete Gaussians is only close to a discrete Gaussian, with an extra
/// divergence term that grows as the per-site share shrinks, and exact sampling needs rejection
/// loops over Bernoulli(exp(−x)) trials per coordinate. The Skellam distribution (Agarwal,
/// Kairouz, Liu 2021) is closed under sums — m survivors each adding Sk(μ/t) give exactly
/// Sk(m·μ/t) — has a tight RDP bound that approaches the Gaussian's as μ grows, and costs two
/// Poisson draws per coordinate (inversion or PTRS, constant time in μ). Both mechanisms share the
/// rotation and the conditional rounding.
///
/// ## The ring, wrap-around and dropouts
///
/// The ring is secure aggregation's: 32-bit words added mod 2^32. The scale γ is chosen so that
/// the sum over the largest cohort — rotated signal, rounding and noise — stays within ±2^31 but
/// for about 2·10⁻¹⁴ per coordinate (8 standard deviations), while rounding inflates the
/// sensitivity by at most 0.1%. A coordinate that does wrap decodes to a wrong value: utility is
/// lost, privacy is not, since the wrapped sum is a function of the noised sum (post-processing).
/// The noise is calibrated for the minimum number of survivors t the round tolerates: each site
/// adds Sk(μ/t), so any m ≥ t survivors carry at least Sk(μ) and dropouts never leave the sum
/// under-noised (a larger cohort only adds noise, which the ring is sized for); a sum of fewer
/// than t inputs is refused at decode.
public enum TesseraPrivacy {}
