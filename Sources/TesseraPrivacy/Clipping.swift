/// Flat L2 clipping of a whole update: the sensitivity every DP mechanism here assumes.
public enum Clipping {
    /// The L2 norm of `values`, summed in `Double`.
    public static func norm(_ values: [Float]) -> Double {
        var sum = 0.0
        for value in values { sum += Double(value) * Double(value) }
        return sum.squareRoot()
    }

    /// Scales `update` in place so that its L2 norm is at most `clipNorm` and returns the norm it
    /// had before. An update with a non-finite coordinate is left unchanged and its norm is
    /// reported as infinite: callers refuse it rather than clip it to an arbitrary direction.
    @discardableResult
    public static func clip(_ update: inout [Float], to clipNorm: Double) -> Double {
        precondition(clipNorm > 0 && clipNorm.isFinite, "the clip norm is validated before it reaches here")
        let before = norm(update)
        guard before.isFinite else { return .infinity }
        guard before > clipNorm else { return before }
        let scale = Float(clipNorm / before)
        for index in update.indices { update[index] *= scale }
        // Float rounding can leave the product a hair above the bound; one more step down fixes it.
        if norm(update) > clipNorm {
            let shrink = Float(clipNorm / norm(update)).nextDown
            for index in update.indices { update[index] *= shrink }
        }
        return before
    }
}
