/// Differential privacy for federated rounds, pure and free of I/O like `TesseraSecAgg`.
///
/// - Clipping: a site's whole update is scaled to L2 norm at most C; adaptive clipping moves C
///   towards a target quantile of the sites' update norms (Andrew et al. 2021).
/// - Central DP (user-level DP-FedAvg, McMahan et al. 2018): Gaussian noise N(0, σ²C²) on the
///   sum of clipped updates, divided by the fixed expected cohort size.
/// - Distributed DP: each site adds its share of integer noise after rotation and rounding, so
///   the sum that secure aggregation reveals carries the whole noise.
/// - A Rényi-DP accountant that composes rounds and converts to (ε, δ).
public enum TesseraPrivacy {}
