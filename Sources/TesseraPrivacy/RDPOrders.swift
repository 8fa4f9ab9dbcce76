/// The Rényi orders the accountant tracks. RDP converts to (ε, δ) at any one order, so the grid
/// only has to contain the best order for the budgets people use: fine steps where small ε is
/// decided (orders below 11), unit steps up to 63 and two large orders for very small noise.
public enum RDPOrders {
    /// 1.1, 1.2, …, 10.9, then 12, 13, …, 63, then 128, 256.
    ///
    /// Built from integers divided by ten so that 2.0, 3.0, … are exactly integral and take the
    /// integer-order formulas.
    public static let standard: [Double] =
        (11...109).map { Double($0) / 10 } + (12...63).map { Double($0) } + [128, 256]
}
