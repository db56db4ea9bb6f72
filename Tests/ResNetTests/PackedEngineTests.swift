import CKernels
import Foundation
import Testing
import TorchCheckpoint
import TorchportCore
import _TestSupport
@testable import ResNet
import StateDict

/// The instruction sets this CPU runs the packed kernels with, best first.
let packedISAs: [Int32] = [TP_ISA_AVX512, TP_ISA_AVX2].filter { tp_isa_available($0) != 0 }

/// The packed engine (Torchport's AVX-512 and AVX2 + FMA kernels) against the reference engine
/// (im2col + OpenBLAS) and against torch's goldens, once per instruction set this CPU runs
/// (whatever TORCHPORT_ISA says: the convolution descriptor, or the task-local
/// `PackedNet.forcedISA` when binding a model, carries the instruction set, so the tests stay
/// parallel). Skipped where the CPU has neither.
@Suite("Packed engine", .enabled(if: !packedISAs.isEmpty))
struct PackedEngineTests {
    /// The instruction sets this CPU runs the packed kernels with.
    static var isas: [Int32] { packedISAs }

    static func name(_ isa: Int32) -> String { String(cString: tp_isa_name(isa)) }

    @Test("The instruction sets: AVX2 wherever AVX-512 is, the selected one among them, TORCHPORT_ISA honoured")
    func instructionSets() {
        #expect(!Self.isas.isEmpty)
        if tp_isa_available(TP_ISA_AVX512) != 0 { #expect(Self.isas == [TP_ISA_AVX512, TP_ISA_AVX2]) }
        let selected = tp_isa_selected()
        #expect(selected == TP_ISA_NONE || Self.isas.contains(selected))
        #expect(InferenceEngine.packedISA == Self.name(selected))
        #expect(InferenceEngine.packed.isAvailable == (selected != TP_ISA_NONE))
        let forced = ProcessInfo.processInfo.environment["TORCHPORT_ISA"]
        switch forced {
        case "reference": #expect(selected == TP_ISA_NONE)
        case "avx2": #expect(selected == (tp_isa_available(TP_ISA_AVX2) != 0 ? TP_ISA_AVX2 : TP_ISA_NONE))
        case "avx512": #expect(selected == (tp_isa_available(TP_ISA_AVX512) != 0 ? TP_ISA_AVX512 : TP_ISA_NONE))
        default: #expect(selected == Self.isas[0])
        }
        // An instruction set the CPU lacks, or none, plans nothing (the engine never binds it).
        var d = tp_conv()
        d.cin = 16; d.cout = 16; d.kernel = 1; d.stride = 1; d.groups = 1; d.isa = 7
        #expect(tp_conv_plan(&d, 1024, 0) == 0)
        for isa in Self.isas {
            #expect(PackedNet.$forcedISA.withValue(isa) { InferenceEngine.packed.isAvailable })
        }
    }

    /// Deterministic values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    /// Runs `conv` (+ optional residual, ReLU) through the C kernels on bordered NHWC maps, both
    /// ways of looping (blocks inside and outside), and returns NCHW outputs.
    static func packed(_ conv: Conv2d, _ x: FeatureMap, residual: FeatureMap?, relu: Bool, blocksOuter: Bool,
                       winograd: Bool, direct: Bool = true, denseInput: Bool = false, isa: Int32) throws -> FeatureMap {
        let (oh, ow) = conv.outputSize(x.h, x.w)
        let p = try #require(PackedConv(conv, inputBytes: x.imageSize * 4, winograd: winograd, isa: isa))
        #expect(p.desc.isa == isa)
        #expect((p.desc.winograd != 0) == winograd)
        var desc = p.desc
        if desc.groups == 1 { desc.blocks_outer = blocksOuter ? 1 : 0 }
        #expect((desc.direct != 0) == (desc.groups == 1 && !winograd))
        if !direct { desc.direct = 0 }
        func bordered(_ n: Int, _ c: Int, _ h: Int, _ w: Int, border: Int, cs: Int) -> (UnsafeMutablePointer<Float>, tp_map) {
            let count = n * (h + 2 * border) * (w + 2 * border) * cs
            let data = UnsafeMutablePointer<Float>.allocate(capacity: count)
            data.initialize(repeating: 0, count: count)
            return (data, tp_map(data: data, n: Int32(n), h: Int32(h), w: Int32(w), c: Int32(c), border: Int32(border), cs: Int32(cs)))
        }
        // Pixel strides padded (as the engine pads wide maps), or the input's dense (as the stem's
        // 3 channels are: the direct kernel then reads each row of taps as one run).
        var (inData, inMap) = bordered(x.n, x.c, x.h, x.w, border: max(1, conv.padding), cs: denseInput ? x.c : x.c + 3)
        var (outData, outMap) = bordered(x.n, conv.outChannels, oh, ow, border: 1, cs: conv.outChannels + 3)
        defer { inData.deallocate(); outData.deallocate() }
        x.data.withUnsafeBufferPointer { tp_from_nchw($0.baseAddress, &inMap, 0, Int64(x.n * x.h)) }
        if let residual { residual.data.withUnsafeBufferPointer { tp_from_nchw($0.baseAddress, &outMap, 0, Int64(x.n * oh)) } }
        let tiles = tp_conv_tiles(&desc, &outMap)
        let panelFloats = Int(tp_conv_panel_floats(&desc))
        let panels = UnsafeMutableRawPointer.allocate(byteCount: panelFloats * Int(tiles) * x.n * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: panelFloats * Int(tiles) * x.n)
        defer { panels.deallocate() }
        var res = outMap  // the residual is added in place, as the engine does
        if desc.blocks_outer != 0 {
            // All images in one pass; packed and computed in two halves, as two threads would.
            let items = tiles * Int64(x.n), half = Int64(desc.blocks) / 2
            tp_conv_pack_tiles(&desc, &inMap, &outMap, 0, 0, items / 2, panels)
            tp_conv_pack_tiles(&desc, &inMap, &outMap, 0, items / 2, items, panels)
            for (b0, b1) in [(0, half), (half, Int64(desc.blocks))] {
                if residual != nil { tp_conv_run_blocks(&desc, &inMap, &outMap, &res, relu ? 1 : 0, 0, Int64(x.n), panels, b0, b1) }
                else { tp_conv_run_blocks(&desc, &inMap, &outMap, nil, relu ? 1 : 0, 0, Int64(x.n), panels, b0, b1) }
            }
        }
        for n in 0..<Int64(x.n) {
            if desc.blocks_outer == 0 {
                let items = n * tiles..<(n + 1) * tiles
                if residual != nil { tp_conv_run(&desc, &inMap, &outMap, &res, relu ? 1 : 0, items.lowerBound, items.upperBound, panels) }
                else { tp_conv_run(&desc, &inMap, &outMap, nil, relu ? 1 : 0, items.lowerBound, items.upperBound, panels) }
            }
        }
        var out = FeatureMap(n: x.n, c: conv.outChannels, h: oh, w: ow)
        out.data.withUnsafeMutableBufferPointer { tp_to_nchw(&outMap, $0.baseAddress) }
        // The border must still be zero: the next convolution reads it as padding.
        let wp = ow + 2, hp = oh + 2, cs = Int(outMap.cs)
        for n in 0..<x.n {
            for y in 0..<hp {
                for xx in 0..<wp where y == 0 || y == hp - 1 || xx == 0 || xx == wp - 1 {
                    let pixel = outData + ((n * hp + y) * wp + xx) * cs
                    #expect((0..<conv.outChannels).allSatisfy { pixel[$0] == 0 }, "border pixel (\(y), \(xx)) written")
                }
            }
        }
        return out
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let cin: Int, cout: Int, k: Int, stride: Int, groups: Int, h: Int, w: Int, n: Int
        var winograd = false
        var testDescription: String { "\(cin)->\(cout) k\(k) s\(stride) g\(groups) \(n)x\(h)x\(w)" + (winograd ? " winograd" : "") }
    }

    /// Tile shapes: widths 1 to 16 (partial tiles of 14, paired rows at 7 and below), odd heights,
    /// channel counts off multiples of 16, strides, 7x7 and 1x1 kernels, groups, batches.
    static let cases: [Case] = [
        Case(cin: 3, cout: 16, k: 7, stride: 2, groups: 1, h: 23, w: 29, n: 2),
        Case(cin: 16, cout: 32, k: 3, stride: 1, groups: 1, h: 5, w: 7, n: 1),
        Case(cin: 24, cout: 40, k: 3, stride: 1, groups: 1, h: 9, w: 15, n: 2),
        Case(cin: 32, cout: 64, k: 1, stride: 1, groups: 1, h: 3, w: 16, n: 3),
        Case(cin: 64, cout: 48, k: 1, stride: 2, groups: 1, h: 13, w: 13, n: 1),
        Case(cin: 8, cout: 8, k: 3, stride: 2, groups: 1, h: 6, w: 1, n: 2),
        Case(cin: 20, cout: 17, k: 3, stride: 1, groups: 1, h: 4, w: 4, n: 1),
        Case(cin: 64, cout: 64, k: 3, stride: 1, groups: 32, h: 6, w: 10, n: 2),   // 2 channels per group
        Case(cin: 128, cout: 128, k: 3, stride: 2, groups: 4, h: 7, w: 9, n: 1),   // 32 per group
        Case(cin: 96, cout: 96, k: 3, stride: 1, groups: 2, h: 14, w: 14, n: 1),   // 48 per group: blocks inside a group
        Case(cin: 32, cout: 48, k: 3, stride: 2, groups: 1, h: 13, w: 14, n: 2),   // 7x7 output: pairs of rows, strided
        Case(cin: 48, cout: 80, k: 1, stride: 1, groups: 1, h: 7, w: 7, n: 2),
    ] + (1...16).map { Case(cin: 16, cout: 32, k: 3, stride: 1, groups: 1, h: 3, w: $0, n: 1) }
    // Winograd F(2x2, 3x3): even and odd sizes (partial 2x2 tiles), partial groups of 14 tiles,
    // 16 or 32 channels per block, output channels off a multiple of 16.
    + [(16, 32, 14, 14, 1), (32, 64, 15, 9, 2), (16, 16, 5, 30, 1), (48, 40, 1, 1, 1), (64, 64, 28, 28, 1)].map {
        Case(cin: $0.0, cout: $0.1, k: 3, stride: 1, groups: 1, h: $0.2, w: $0.3, n: $0.4, winograd: true)
    }

    @Test("Each convolution matches the reference engine's (BN, residual and ReLU fused)", arguments: cases)
    func convolutionMatchesReference(_ c: Case) throws {
        let cinG = c.cin / c.groups
        let weight = Self.values(c.cout * cinG * c.k * c.k, seed: UInt64(c.cin * 31 + c.w))
        let bn = BatchNorm2d(weight: Self.values(c.cout, seed: 1).map { 1 + $0 / 2 }, bias: Self.values(c.cout, seed: 2),
                             runningMean: Self.values(c.cout, seed: 3), runningVar: Self.values(c.cout, seed: 4).map { 1.5 + $0 })
        let conv = Conv2d(name: "t", weight: weight, shape: [c.cout, cinG, c.k, c.k], stride: c.stride, padding: c.k / 2,
                          groups: c.groups, bn: bn)
        let x = try FeatureMap(n: c.n, c: c.cin, h: c.h, w: c.w, data: Self.values(c.n * c.cin * c.h * c.w, seed: 9))
        let (oh, ow) = conv.outputSize(c.h, c.w)
        let residual = try FeatureMap(n: c.n, c: c.cout, h: oh, w: ow, data: Self.values(c.n * c.cout * oh * ow, seed: 11))
        for (res, relu) in [(nil, false), (residual, true)] as [(FeatureMap?, Bool)] {
            let want = conv(x, residual: res, relu: relu, executor: .shared)
            for isa in Self.isas {
                for outer in [false, true] {
                    // The direct kernel (on padded and dense input), and every tile through a packed panel.
                    for (direct, dense) in [(true, false), (true, true), (false, false)] {
                        let got = try Self.packed(conv, x, residual: res, relu: relu, blocksOuter: outer, winograd: c.winograd,
                                                  direct: direct, denseInput: dense, isa: isa)
                        #expect(got.shape == want.shape)
                        let scale = want.data.map(abs).max() ?? 1
                        let worst = zip(got.data, want.data).map { abs($0 - $1) }.max() ?? .infinity
                        #expect(worst <= 2e-6 * max(scale, 1),
                                "\(Self.name(isa)): max|d| \(worst), scale \(scale), outer \(outer), direct \(direct), dense \(dense)")
                    }
                }
            }
        }
    }

    @Test("Every fixture: the packed engine matches the reference engine and torch", arguments: ModelFixture.all)
    func fixturesMatch(_ f: ModelFixture) throws {
        let checkpoint = try Checkpoint(contentsOf: f.path(f.checkpoint))
        let mapping = try NameMapping.map(checkpoint.tensors)
        let reference = try ResNetModel(mapping: mapping, engine: .reference)
        for isa in Self.isas {
            let packed = try PackedNet.$forcedISA.withValue(isa) { try ResNetModel(mapping: mapping, engine: .packed) }
            try Self.fixtureMatches(f, packed: packed, reference: reference, isa: isa)
        }
    }

    /// One fixture's packed model (bound with instruction set `isa`) against the reference and torch.
    static func fixtureMatches(_ f: ModelFixture, packed: ResNetModel, reference: ResNetModel, isa: Int32) throws {
        // Grouped convolutions run packed when 16 or 32 channels hold whole groups (or lie in one);
        // tiny-resnext's 8 output channels do not, so it stays on the reference engine.
        #expect(packed.engine == (f.name == "tiny-resnext" ? .reference : .packed))
        #expect(reference.engine == .reference)
        #expect(packed.conv1.weight.isEmpty == (packed.engine == .packed))  // the weights are held once
        let golden = try Checkpoint(contentsOf: f.path(f.golden))
        let x = try ModelParityTests.input(golden)
        let got = try packed(x).values, want = try reference(x).values
        #expect(ModelParityTests.relativeError(got, want) <= 2e-6, "\(name(isa))")
        if f.golden_keys.contains("logits") {
            let torch = try #require(golden.tensor(named: "logits")).floats()
            #expect(ModelParityTests.relativeError(got, torch) <= 1e-5, "\(name(isa))")
        }
        // Other sizes than the one the loop orders were chosen for (224): at 232 the last stage is
        // 8 pixels wide (single-row tiles where 224 gives paired rows of 7); 3x3 shrinks to 1x1.
        for (h, w) in [(232, 232), (3, 3)] {
            let y = try FeatureMap(n: 1, c: 3, h: h, w: w, data: values(3 * h * w, seed: UInt64(h)))
            #expect(ModelParityTests.relativeError(try packed(y).values, try reference(y).values) <= 2e-6, "\(name(isa)) \(h)x\(w)")
        }
        // The layer4 feature map (NCHW) agrees too.
        let mapP = try packed.featureMap(x), mapR = try reference.featureMap(x)
        #expect(mapP.shape == mapR.shape)
        #expect(ModelParityTests.relativeError(mapP.data, mapR.data) <= 2e-6)
    }

    @Test("Repeated and concurrent forward passes reuse their workspaces and give identical outputs")
    func steadyState() throws {
        let f = try #require(ModelFixture.all.first { $0.arch.block == "bottleneck" && $0.arch.groups == 1 })
        let mapping = try NameMapping.map(Checkpoint(contentsOf: f.path(f.checkpoint)).tensors)
        for isa in Self.isas {
            let model = try PackedNet.$forcedISA.withValue(isa) { try ResNetModel(mapping: mapping) }
            #expect(model.engine == .packed)
            try Self.steadyState(model)
        }
    }

    static func steadyState(_ model: ResNetModel) throws {
        let x = try FeatureMap(n: 2, c: 3, h: 40, w: 33, data: values(2 * 3 * 40 * 33, seed: 5))
        let first = try model(x)
        #expect(try model(x) == first)
        let results = UnsafeMutableBufferPointer<ModelOutput?>.allocate(capacity: 4)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        nonisolated(unsafe) let out = results
        DispatchQueue.concurrentPerform(iterations: 4) { i in out[i] = try? model(x) }
        #expect(results.allSatisfy { $0 == first })
    }

    @Test("The activation arena: overlapping lifetimes never share bytes, and it stays within twice the largest activation")
    func arenaPlan() throws {
        let f = try #require(ModelFixture.all.first { $0.arch.block == "bottleneck" && $0.arch.groups == 1 })
        let mapping = try NameMapping.map(Checkpoint(contentsOf: f.path(f.checkpoint)).tensors)
        let model = try PackedNet.$forcedISA.withValue(Self.isas[0]) { try ResNetModel(mapping: mapping) }
        let net = try #require(model.packed)
        let plan = Workspace.plan(net, Geometry(n: 3, h: 64, w: 48, threads: 2))
        var first = [Int: Int](), last = [Int: Int]()
        for (i, step) in plan.steps.enumerated() {
            let used: [Int]
            switch step {
            case .input(let d): used = [d]
            case .conv(_, let s, let d, let r, _): used = [s, d] + (r.map { [$0] } ?? [])
            case .maxPool(let s, let d): used = [s, d]
            }
            for u in used { first[u] = min(first[u] ?? i, i); last[u] = max(last[u] ?? i, i) }
        }
        for a in plan.slots.indices {
            for b in plan.slots.indices where b > a {
                guard let fa = first[a], let fb = first[b], let la = last[a], let lb = last[b], fa <= lb, fb <= la else { continue }
                let ra = plan.slots[a].offset..<(plan.slots[a].offset + plan.slots[a].bytes)
                let rb = plan.slots[b].offset..<(plan.slots[b].offset + plan.slots[b].bytes)
                #expect(!ra.overlaps(rb), "activations \(a) and \(b) are live together and overlap")
            }
        }
        #expect(plan.slots.allSatisfy { $0.offset % 64 == 0 && $0.offset + $0.bytes <= plan.arenaBytes })
        #expect(Double(plan.arenaBytes) <= 2.0 * Double(plan.largest))
    }

    @Test("An executor's pool runs every index once, for any count (more than its threads too)")
    func pool() {
        let executor = Executor(threads: 4)
        for n in [1, 2, 3, 4, 7] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
            hits.initialize(repeating: 0)
            defer { hits.deallocate() }
            nonisolated(unsafe) let h = hits
            for _ in 0..<50 { executor.forEach(n) { h[$0] += 1 } }
            #expect(hits.allSatisfy { $0 == 50 }, "n = \(n)")
        }
    }
}
