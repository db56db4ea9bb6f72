/// Shape arithmetic every reader shares: the element count of a shape, checked.
package enum Shape {
    /// `unit` times the product of `dimensions`; nil when a dimension is negative or the product
    /// overflows `Int` (a hostile header or pickle can declare any sizes).
    package static func elementCount(_ dimensions: [Int], times unit: Int = 1) -> Int? {
        guard unit >= 0 else { return nil }
        var n = unit
        for d in dimensions {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            n = p
        }
        return n
    }
}
