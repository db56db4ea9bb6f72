import Testing
@testable import Verification
import TorchportCore

/// The measurements behind the default `rtol = 1e-5` (docs/verification.md cites them): how much
/// float32 rounding moves results when sums are taken in another order, against how much real
/// mistakes move them.
@Suite("Why rtol = 1e-5: float32 reordering against real mistakes")
struct ToleranceBudgetTests {
    @Test("1e-5 of a logit is between 84 and 168 float32 ulps of it")
    func ulps() throws {
        for x: Float in [1, 1.5, 1.999, 0.537, 12.3, 96] {
            let ulps = 1e-5 * Double(x) / Double(x.ulp)
            #expect(ulps >= 83.88 && ulps <= 167.78, "\(x): \(ulps) ulps")
        }
        #expect(1e-5 * Double(1 / Float(1).ulp) == 1e-5 * 0x1p23)   // 83.886 ulps at a power of two
    }

    /// Sums of `terms` in float32: in order, in reverse, with 8 interleaved accumulators (how SIMD
    /// kernels sum), and pairwise (how blocked GEMMs and torch's reductions do).
    static func float32Sums(_ terms: [Float]) -> [Float] {
        var forward: Float = 0
        for t in terms { forward += t }
        var reverse: Float = 0
        for t in terms.reversed() { reverse += t }
        var lanes = [Float](repeating: 0, count: 8)
        for (i, t) in terms.enumerated() { lanes[i % 8] += t }
        let strided = lanes.reduce(0, +)
        func pairwise(_ s: ArraySlice<Float>) -> Float {
            if s.count <= 8 { return s.reduce(0, +) }
            let mid = s.startIndex + s.count / 2
            return pairwise(s[..<mid]) + pairwise(s[mid...])
        }
        return [forward, reverse, strided, pairwise(terms[...])]
    }

    @Test("A 3x3x512 convolution's dot product summed in four float32 orders differs by under 1e-6 of its magnitude")
    func reorderedDotProducts() throws {
        var rng = SeededFloats(seed: 1)
        var worst = 0.0
        for _ in 0..<32 {
            let terms = zip(rng.array(4608), rng.array(4608)).map { $0 * $1 }
            let magnitude = terms.reduce(0.0) { $0 + abs(Double($1)) }
            let sums = Self.float32Sums(terms)
            for a in sums { for b in sums { worst = max(worst, abs(Double(a) - Double(b)) / magnitude) } }
        }
        #expect(worst > 0)          // the order does matter in float32...
        #expect(worst < 1e-6)       // ...by less than a tenth of the tolerance, per layer
    }

    /// Features -> BatchNorm (eval) -> ReLU -> linear 512 -> 1000: logits `batch x 1000`.
    struct Head {
        var mean: [Float], variance: [Float], gamma: [Float], beta: [Float], weight: [Float], bias: [Float]
        let channels = 512, classes = 1000

        init(seed: UInt64) {
            var rng = SeededFloats(seed: seed)
            mean = rng.array(channels, scale: 0.5)
            variance = rng.array(channels).map { 0.05 + abs($0) }   // 0.05 ... 1.05
            gamma = rng.array(channels).map { 1 + 0.2 * $0 }
            beta = rng.array(channels, scale: 0.1)
            weight = rng.array(classes * channels, scale: 0.1)
            bias = rng.array(classes, scale: 0.1)
        }

        func callAsFunction(_ x: [Float], batch: Int, eps: Float = 1e-5, reversed: Bool = false) -> [Float] {
            var out = [Float](repeating: 0, count: batch * classes)
            for n in 0..<batch {
                let h = (0..<channels).map { c in
                    max(0, (x[n * channels + c] - mean[c]) / (variance[c] + eps).squareRoot() * gamma[c] + beta[c])
                }
                for k in 0..<classes {
                    let terms = (0..<channels).map { weight[k * channels + $0] * h[$0] }
                    out[n * classes + k] = (reversed ? ToleranceBudgetTests.float32Sums(terms)[2]
                                                     : ToleranceBudgetTests.float32Sums(terms)[0]) + bias[k]
                }
            }
            return out
        }
    }

    @Test("A classifier head summed in another float32 order passes with a wide margin; BatchNorm's epsilon read as 1e-3 fails")
    func headReorderedAndEpsilon() throws {
        let head = Head(seed: 2)
        var rng = SeededFloats(seed: 3)
        let x = rng.array(4 * 512, scale: 2)
        let reference = head(x, batch: 4)
        let reordered = head(x, batch: 4, reversed: true)
        let wrongEpsilon = head(x, batch: 4, eps: 1e-3)

        let same = try Verifier.compare(computed: reordered, reference: reference, batch: 4, classes: 1000, criterion: .default)
        #expect(same.passed)
        #expect(same.maxRelError < 1e-6)
        #expect(same.minCosine > 0.999_999_9)

        let epsilon = try Verifier.compare(computed: wrongEpsilon, reference: reference, batch: 4, classes: 1000, criterion: .default)
        #expect(!epsilon.passed)
        #expect(epsilon.maxRelError > 1e-3)           // over 100x the tolerance
        #expect(epsilon.minCosine > 0.9999)           // though the cosine barely notices
    }

    @Test("BatchNorm's epsilon read as 1e-3 instead of 1e-5 rescales a unit-variance channel by 4.9e-4, one of variance 0.05 by 1e-2")
    func epsilonAlone() throws {
        let change = ((1 + 1e-5) / (1 + 1e-3)).squareRoot() - 1
        #expect(abs(change + 4.946e-4) < 1e-7)
        let lowVariance = ((0.05 + 1e-5) / (0.05 + 1e-3)).squareRoot() - 1
        #expect(abs(lowVariance + 9.753e-3) < 1e-6)
    }

    @Test("A 3x3 kernel read transposed changes a convolution's output by a large fraction of its scale")
    func transposedKernel() throws {
        var rng = SeededFloats(seed: 4)
        let (cin, cout, size) = (8, 8, 10)
        let image = rng.array(cin * size * size)
        let kernel = rng.array(cout * cin * 9)
        let transposed = (0..<kernel.count).map { i -> Float in
            let (oc, rest) = i.quotientAndRemainder(dividingBy: 9)
            let (r, c) = rest.quotientAndRemainder(dividingBy: 3)
            return kernel[oc * 9 + c * 3 + r]
        }
        func conv(_ w: [Float]) -> [Float] {   // valid 3x3 convolution, cin -> cout: N = cout rows
            let out = size - 2
            var y = [Float](repeating: 0, count: cout * out * out)
            for o in 0..<cout { for i in 0..<out { for j in 0..<out {
                var s: Float = 0
                for ci in 0..<cin { for r in 0..<3 { for c in 0..<3 {
                    s += w[((o * cin + ci) * 3 + r) * 3 + c] * image[(ci * size + i + r) * size + j + c]
                } } }
                y[(o * out + i) * out + j] = s
            } } }
            return y
        }
        let report = try Verifier.compare(computed: conv(transposed), reference: conv(kernel), batch: cout, classes: 64,
                                      criterion: .default)
        #expect(!report.passed)
        #expect(report.maxRelError > 0.3)
    }
}
