import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import TorchportCore

/// Which implementation runs a ``ResNetModel``'s forward pass.
public enum InferenceEngine: String, Sendable, CaseIterable, Codable {
    /// NCHW, im2col + OpenBLAS sgemm per convolution, BatchNorm applied after each one. Runs on
    /// every CPU; the reference the packed engine is tested against.
    case reference
    /// Torchport's own kernels (AVX-512, or AVX2 + FMA): bordered NHWC maps, weights packed at bind
    /// time with the BatchNorm folded in, direct convolutions with bias, residual add and ReLU
    /// fused, buffers planned once per input size. Needs AVX-512 or AVX2 + FMA (see
    /// ``InferenceEngine/best`` and ``InferenceEngine/packedISA``).
    case packed

    /// Whether this CPU can run the engine (the packed one: with the instruction set
    /// ``packedISA`` names, so not where `TORCHPORT_ISA` forces `reference` or one the CPU lacks).
    public var isAvailable: Bool {
        switch self {
        case .reference: true
        case .packed: PackedNet.isaAvailable
        }
    }

    /// The fastest engine this CPU runs: ``packed`` with AVX-512 or AVX2 + FMA, else ``reference``
    /// (also when `TORCHPORT_ISA=reference` is set in the environment).
    public static var best: InferenceEngine { PackedNet.isaAvailable ? .packed : .reference }

    /// The instruction set the ``packed`` engine runs with in this process: `"avx512"`, `"avx2"`,
    /// or `"reference"` when it cannot run (``isAvailable`` is false). The best the CPU has,
    /// unless the environment variable `TORCHPORT_ISA` (`avx512`, `avx2` or `reference`, read
    /// once) forces one; forcing one the CPU lacks makes the packed engine unavailable.
    public static var packedISA: String { String(cString: tp_isa_name(tp_isa_selected())) }
}

/// One convolution of the packed engine: its plan and packed weights (64-byte aligned, owned).
final class PackedConv: @unchecked Sendable {
    /// The convolution's geometry and name (its weights dropped: they live packed here).
    let conv: Conv2d
    let desc: tp_conv
    private let weights: UnsafeMutablePointer<Float>
    private let bias: UnsafeMutablePointer<Float>
    let weightBytes: Int

    /// Packs `conv` (BatchNorm folded), choosing the loop order for `inputBytes` of input per
    /// image, as Winograd F(2x2, 3x3) when `winograd` asks and the shape allows; nil when the
    /// kernels cannot run it. `isa` (`TP_ISA_AVX512`, `TP_ISA_AVX2`; 0: the process's, see
    /// ``InferenceEngine/packedISA``) picks the micro-kernels.
    init?(_ conv: Conv2d, inputBytes: Int, winograd: Bool = false, isa: Int32 = 0) {
        var d = tp_conv()
        d.isa = isa
        d.cin = Int32(conv.inChannels); d.cout = Int32(conv.outChannels); d.kernel = Int32(conv.kernel)
        d.stride = Int32(conv.stride); d.pad = Int32(conv.padding); d.groups = Int32(conv.groups)
        guard tp_conv_plan(&d, Int64(inputBytes), winograd ? 1 : 0) != 0 else { return nil }
        if !PackedNet.direct { d.direct = 0 }
        let count = Int(tp_conv_packed_count(&d)), biasCount = Int(d.blocks) * 16 * Int(d.nv)
        let (packed, packedBias) = (alignedFloats(count), alignedFloats(biasCount))
        conv.weight.withUnsafeBufferPointer { w in
            conv.bn.scale.withUnsafeBufferPointer { s in
                conv.bn.shift.withUnsafeBufferPointer { t in
                    tp_conv_pack(&d, w.baseAddress, s.baseAddress, t.baseAddress, packed, packedBias)
                }
            }
        }
        d.weight = UnsafePointer(packed)
        d.bias = UnsafePointer(packedBias)
        (weights, bias) = (packed, packedBias)
        desc = d
        self.conv = conv.withoutWeights()
        weightBytes = (count + biasCount) * 4
    }

    deinit {
        weights.deallocate()
        bias.deallocate()
    }
}

private func alignedFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(1, count))
}

/// A ResNet bound for the packed engine: the packed convolutions in execution order and, per input
/// size, a plan of where every activation lives in one arena (allocated once, reused by every
/// forward pass of that size: no allocation in the steady state).
final class PackedNet: @unchecked Sendable {
    static let kernelsAvailable = tp_kernels_available() != 0
    /// The instruction set a packed net bound in this task uses (`TP_ISA_AVX512`, `TP_ISA_AVX2`),
    /// nil for the process's (``InferenceEngine/packedISA``). Tests bind the same model once per
    /// instruction set the CPU runs with it; a task-local value, so tests running in parallel
    /// do not see each other's.
    @TaskLocal static var forcedISA: Int32?
    /// Whether the instruction set a net bound here would use (``forcedISA``, else the process's)
    /// runs on this CPU.
    static var isaAvailable: Bool { forcedISA.map { tp_isa_available($0) != 0 } ?? kernelsAvailable }
    /// Whether 3x3 stride-1 convolutions of wide maps use Winograd F(2x2, 3x3) (2.25x fewer
    /// multiplications); `TORCHPORT_WINOGRAD=0` in the environment turns it off, for comparisons.
    static let winograd = getenv("TORCHPORT_WINOGRAD").map { String(cString: $0) != "0" } ?? true
    /// Whether the direct kernel reads the input map in place (else every tile is packed into a
    /// panel first); `TORCHPORT_DIRECT=0` turns it off, for comparisons.
    static let direct = getenv("TORCHPORT_DIRECT").map { String(cString: $0) != "0" } ?? true

    /// One block: indices into `convs` of its main path (the last takes the residual) and of
    /// its projection.
    struct BlockPlan { let main: [Int], down: Int? }

    let convs: [PackedConv]
    let stem: Int
    let blocks: [BlockPlan]
    /// Arenas by input size, each used by one forward pass at a time.
    private let workspaces = Mutex<[Geometry: [Workspace]]>([:])

    /// Packs every convolution of `model`. Inputs of any size run; `height` x `width` only sets
    /// each convolution's loop order (blocks outside when its weights outweigh its input at that
    /// size). nil when the kernels are unavailable or cannot run a convolution.
    init?(_ model: ResNetModel, height: Int = 224, width: Int = 224) {
        let isa = Self.forcedISA ?? tp_isa_selected()
        guard tp_isa_available(isa) != 0 else { return nil }
        var convs: [PackedConv] = []
        var blocks: [BlockPlan] = []
        func add(_ c: Conv2d, _ h: Int, _ w: Int) -> Int? {
            // Winograd for the 3x3 stride-1 convolutions of maps 14 wide and more (at 7x7, its 2x2
            // tiles waste a third of the work, and the transformed weights, 16/9 as large, would
            // have to stream from memory: direct is faster there).
            let (_, ow) = c.outputSize(h, w)
            let winograd = Self.winograd && c.kernel == 3 && c.stride == 1 && c.groups == 1 && ow >= 14
            guard let p = PackedConv(c, inputBytes: c.inChannels * h * w * 4, winograd: winograd, isa: isa) else { return nil }
            convs.append(p)
            return convs.count - 1
        }
        guard let s = add(model.conv1, height, width) else { return nil }
        stem = s
        var (h, w) = model.conv1.outputSize(height, width)
        (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1)
        for block in model.layers.joined() {
            var down: Int?
            if let d = block.downsample {
                guard let i = add(d, h, w) else { return nil }
                down = i
            }
            var main: [Int] = []
            for c in block.mainPath {
                guard let i = add(c, h, w) else { return nil }
                main.append(i)
                (h, w) = c.outputSize(h, w)
            }
            blocks.append(BlockPlan(main: main, down: down))
        }
        self.convs = convs
        self.blocks = blocks
    }

    var weightBytes: Int { convs.reduce(0) { $0 + $1.weightBytes } }

    /// The layer4 feature map of `input` (NCHW), in NCHW, computed on `executor`.
    func featureMap(_ input: FeatureMap, executor: Executor) -> FeatureMap {
        withWorkspace(for: input, executor: executor) { ws in
            let last = ws.run(self, input, executor: executor)
            var out = FeatureMap(n: Int(last.n), c: Int(last.c), h: Int(last.h), w: Int(last.w))
            var map = last
            out.data.withUnsafeMutableBufferPointer { tp_to_nchw(&map, $0.baseAddress) }
            return out
        }
    }

    /// Every step's output of a forward pass of `input`, named after the torchvision module it
    /// equals (see ``TracedOutput``): the stem (conv1 + bn1 + ReLU: `relu`), `maxpool`, each
    /// block's inner convolutions with their BatchNorm and fused ReLU (`layer1.0.bn1` + relu), the
    /// projection (`layer1.0.downsample.1`), the block (`layer1.0`) and the stage (`layer1`).
    func trace(_ input: FeatureMap, executor: Executor) -> [TracedOutput] {
        withWorkspace(for: input, executor: executor) { ws in
            var out: [TracedOutput] = []
            _ = ws.run(self, input, executor: executor) { step, map in
                var m = map
                var values = [Float](repeating: 0, count: Int(m.n) * Int(m.c) * Int(m.h) * Int(m.w))
                values.withUnsafeMutableBufferPointer { tp_to_nchw(&m, $0.baseAddress) }
                let shape = [Int(m.n), Int(m.c), Int(m.h), Int(m.w)]
                switch step {
                case .input: break
                case .maxPool: out.append(TracedOutput(module: "maxpool", shape: shape, values: values))
                case .conv(let ci, _, _, let residual, let relu):
                    let name = self.convs[ci].conv.name
                    /// `layer1.0.conv2` -> `layer1.0.bn2`.
                    func bn(_ conv: String) -> String {
                        guard let r = conv.range(of: ".conv", options: .backwards) else { return conv }
                        return String(conv[..<r.lowerBound] + ".bn" + conv[r.upperBound...])
                    }
                    if name == "conv1" {
                        out.append(TracedOutput(module: "relu", shape: shape, values: values, covers: ["conv1", "bn1", "relu"]))
                    } else if residual != nil, let block = name.range(of: ".conv", options: .backwards) {
                        let p = String(name[..<block.lowerBound])
                        out.append(TracedOutput(module: p, shape: shape, values: values, covers: [name, bn(name), p]))
                    } else if name.hasSuffix(".downsample.0") {
                        // The projection's BatchNorm, and the `downsample` Sequential that ends with it.
                        let d = String(name.dropLast(2))
                        out.append(TracedOutput(module: d + ".1", shape: shape, values: values, covers: [name, d + ".1"]))
                        out.append(TracedOutput(module: d, shape: shape, values: values))
                    } else {
                        out.append(TracedOutput(module: bn(name), appliesReLU: relu, shape: shape, values: values,
                                                covers: [name, bn(name)]))
                    }
                }
            }
            return out
        }
    }

    /// Pooled features `[n, C]`, computed on `executor`.
    func features(_ input: FeatureMap, executor: Executor) -> [Float] {
        withWorkspace(for: input, executor: executor) { ws in
            var last = ws.run(self, input, executor: executor)
            return Profiler.timed("avgpool") {
                var out = [Float](repeating: 0, count: Int(last.n) * Int(last.c))
                out.withUnsafeMutableBufferPointer { tp_global_average(&last, $0.baseAddress) }
                return out
            }
        }
    }

    /// Bytes of the activation arena for inputs of this size on `threads` threads, and of the
    /// largest activation.
    func arenaBytes(n: Int, h: Int, w: Int, threads: Int) -> (arena: Int, largest: Int) {
        let plan = Workspace.plan(self, Geometry(n: n, h: h, w: w, threads: threads))
        return (plan.arenaBytes, plan.largest)
    }

    /// Runs `body` with a workspace planned for `input`'s size and `executor`'s threads: one of
    /// those kept from earlier passes, or a new one (kept afterwards). Passes running at the same
    /// time (on several executors, or sharing one) each get their own.
    private func withWorkspace<R>(for input: FeatureMap, executor: Executor, _ body: (Workspace) -> R) -> R {
        let key = Geometry(n: input.n, h: input.h, w: input.w, threads: executor.threads)
        let ws = workspaces.withLock { $0[key]?.popLast() } ?? Workspace(self, key)
        defer { workspaces.withLock { $0[key, default: []].append(ws) } }
        return body(ws)
    }
}

/// What a workspace is planned for: the input size and the number of threads (a panel each).
struct Geometry: Hashable { let n: Int, h: Int, w: Int, threads: Int }

/// The activations of one input size: where each lives in one arena (largest first, each at the
/// lowest offset clear of those live at the same time), so that the arena holds little more
/// than the largest live set.
final class Workspace: @unchecked Sendable {
    /// Activation `i`: shape, border and byte offset in the arena.
    struct Slot {
        var n: Int, h: Int, w: Int, c: Int, border: Int, offset: Int = 0
        /// Pixel stride: 16 floats more than the channels from 512 channels on, so that a tile's
        /// pixels (and their cache lines) do not fall 2 or 4 KiB apart into the same L1 sets.
        var cs: Int { c >= 512 ? c + 16 : c }
        var bytes: Int { n * (h + 2 * border) * (w + 2 * border) * cs * 4 }
    }
    /// Every step of a forward pass, over activation indices.
    enum Step {
        case input(dst: Int)
        case conv(Int, src: Int, dst: Int, residual: Int?, relu: Bool)
        case maxPool(src: Int, dst: Int)
    }

    struct Plan {
        var slots: [Slot]
        var steps: [Step]
        var output: Int
        var arenaBytes: Int
        var largest: Int
        /// Floats of one tile's panel, for the largest reduction (a thread's share of `panels`).
        var panelFloats: Int
        /// Threads the work is split over (one panel each).
        var threads: Int
        /// Bytes of `panels`: a panel per thread, or all tiles of a group of images, whichever is larger.
        var scratchBytes: Int
        /// For convolutions with blocks outside that pack panels: how many images share one pass
        /// over the weights (as many as fit in `maxPanelBytes` of packed tiles, at least one); the
        /// others (the direct kernel's, no panels) run the whole batch in one pass.
        var imagesPerPass: [Int: Int]
    }

    let plan: Plan
    private let arena: UnsafeMutableRawPointer
    /// Packed input tiles: one panel per thread, or every tile of an image for convolutions that
    /// loop over blocks outside (`blocks_outer`).
    private let panels: UnsafeMutablePointer<Float>

    init(_ net: PackedNet, _ g: Geometry) {
        plan = Self.plan(net, g)
        arena = UnsafeMutableRawPointer.allocate(byteCount: max(64, plan.arenaBytes), alignment: 64)
        panels = UnsafeMutableRawPointer.allocate(byteCount: max(64, plan.scratchBytes), alignment: 64)
            .bindMemory(to: Float.self, capacity: max(16, plan.scratchBytes / 4))
    }

    deinit {
        arena.deallocate()
        panels.deallocate()
    }

    /// The most packed input tiles kept for one pass over a convolution's weights (several images
    /// share a pass when they fit: a batch reads late-stage weights once, not once per image).
    static let maxPanelBytes = 8 << 20

    /// Plans the activations of a forward pass: shapes, steps, then arena offsets by first fit
    /// over their lifetimes. The residual output is written over the identity (in place).
    static func plan(_ net: PackedNet, _ g: Geometry) -> Plan {
        var slots: [Slot] = []
        var steps: [Step] = []
        func slot(_ c: Int, _ h: Int, _ w: Int, border: Int) -> Int {
            slots.append(Slot(n: g.n, h: h, w: w, c: c, border: border))
            return slots.count - 1
        }
        func out(_ conv: PackedConv, _ src: Int) -> (Int, Int, Int) {
            let (oh, ow) = conv.conv.outputSize(slots[src].h, slots[src].w)
            return (conv.conv.outChannels, oh, ow)
        }
        let stem = net.convs[net.stem]
        let image = slot(3, g.h, g.w, border: max(1, Int(stem.desc.pad)))
        steps.append(.input(dst: image))
        var (c, h, w) = out(stem, image)
        let stemOut = slot(c, h, w, border: 1)
        steps.append(.conv(net.stem, src: image, dst: stemOut, residual: nil, relu: true))
        let pooled = slot(c, (h - 1) / 2 + 1, (w - 1) / 2 + 1, border: 1)
        steps.append(.maxPool(src: stemOut, dst: pooled))
        var x = pooled
        for b in net.blocks {
            var y = x
            for ci in b.main.dropLast() {
                (c, h, w) = out(net.convs[ci], y)
                let next = slot(c, h, w, border: 1)
                steps.append(.conv(ci, src: y, dst: next, residual: nil, relu: true))
                y = next
            }
            // The projection after the inner convolutions: the first one's (wide) output is gone
            // by then, which keeps the live set small (ResNet-50: 1.8x the largest activation).
            var identity = x
            if let down = b.down {
                (c, h, w) = out(net.convs[down], x)
                identity = slot(c, h, w, border: 1)
                steps.append(.conv(down, src: x, dst: identity, residual: nil, relu: false))
            }
            // The block's output overwrites its identity (each element is read, then written).
            if let last = b.main.last { steps.append(.conv(last, src: y, dst: identity, residual: identity, relu: true)) }
            x = identity
        }
        // Lifetimes: first and last step that touches each slot.
        var first = [Int](repeating: Int.max, count: slots.count), lastUse = [Int](repeating: -1, count: slots.count)
        func touch(_ s: Int, _ i: Int) { first[s] = min(first[s], i); lastUse[s] = max(lastUse[s], i) }
        for (i, step) in steps.enumerated() {
            switch step {
            case .input(let d): touch(d, i)
            case .conv(_, let s, let d, let r, _): touch(s, i); touch(d, i); if let r { touch(r, i) }
            case .maxPool(let s, let d): touch(s, i); touch(d, i)
            }
        }
        lastUse[x] = steps.count  // the output is read after the last step
        // Largest first, each at the lowest offset clear of the placed activations whose lifetimes
        // overlap its own (greedy by size, as memory planners of inference engines do).
        var arenaBytes = 0
        var placed: [Int] = []
        let bySize = slots.indices.filter { first[$0] != Int.max }.sorted {
            slots[$0].bytes != slots[$1].bytes ? slots[$0].bytes > slots[$1].bytes : first[$0] < first[$1]
        }
        for s in bySize {
            let size = (slots[s].bytes + 63) / 64 * 64
            let busy = placed.filter { o in first[o] <= lastUse[s] && first[s] <= lastUse[o] }
                .map { (slots[$0].offset, (slots[$0].bytes + 63) / 64 * 64) }.sorted { $0.0 < $1.0 }
            var offset = 0
            for (o, n) in busy where offset + size > o && o + n > offset {
                offset = o + n
            }
            slots[s].offset = offset
            placed.append(s)
            arenaBytes = max(arenaBytes, offset + size)
        }
        let largest = slots.map { $0.n * $0.h * $0.w * $0.c * 4 }.max() ?? 0
        // Panels, for the convolutions that pack them: per thread, or all tiles of the images of a
        // pass for `blocks_outer`.
        var panelFloats = 16, scratch = 16
        var imagesPerPass: [Int: Int] = [:]
        func shape(_ s: Slot) -> tp_map {
            tp_map(data: nil, n: Int32(s.n), h: Int32(s.h), w: Int32(s.w), c: Int32(s.c), border: Int32(s.border), cs: Int32(s.cs))
        }
        for step in steps {
            guard case .conv(let ci, let src, let d, _, _) = step else { continue }
            var desc = net.convs[ci].desc
            var (input, out) = (shape(slots[src]), shape(slots[d]))
            // Convolutions the direct kernel runs in place need no panels.
            guard tp_conv_needs_panels(&desc, &input, &out) != 0 else { continue }
            let one = Int(tp_conv_panel_floats(&desc))
            panelFloats = max(panelFloats, (one + 15) / 16 * 16)
            if desc.blocks_outer != 0 {
                let perImage = one * Int(tp_conv_tiles(&desc, &out))
                let images = max(1, min(g.n, maxPanelBytes / 4 / perImage))
                imagesPerPass[ci] = images
                scratch = max(scratch, perImage * images)
            }
        }
        scratch = max(scratch, panelFloats * g.threads)
        return Plan(slots: slots, steps: steps, output: x, arenaBytes: arenaBytes, largest: largest,
                    panelFloats: panelFloats, threads: g.threads, scratchBytes: scratch * 4, imagesPerPass: imagesPerPass)
    }

    private func map(_ i: Int) -> tp_map {
        let s = plan.slots[i]
        return tp_map(data: (arena + s.offset).assumingMemoryBound(to: Float.self), n: Int32(s.n), h: Int32(s.h),
                      w: Int32(s.w), c: Int32(s.c), border: Int32(s.border), cs: Int32(s.cs))
    }

    /// Runs the steps on `executor` (whose thread count the plan was made for); returns the output
    /// map (valid until the next run on this workspace). `observe`, when given, sees each step's
    /// output right after the step (``PackedNet/trace(_:executor:)``).
    func run(_ net: PackedNet, _ input: FeatureMap, executor: Executor,
             observe: ((Step, tp_map) -> Void)? = nil) -> tp_map {
        let threads = plan.threads
        for step in plan.steps {
            defer {
                if let observe {
                    switch step {
                    case .input: break
                    case .conv(_, _, let d, _, _), .maxPool(_, let d): observe(step, map(d))
                    }
                }
            }
            switch step {
            case .input(let d):
                Profiler.timed("input (NCHW to NHWC)") {
                    // Every buffer's border must be zero; slots share the arena, so clear each
                    // destination's border ring before it is written (its interior is overwritten).
                    clearBorder(d)
                    let m = map(d)
                    input.data.withUnsafeBufferPointer { x in
                        executor.forEach(splitting: Int(m.n) * Int(m.h), threads: threads) { _, rows in
                            var o = m
                            tp_from_nchw(x.baseAddress, &o, Int64(rows.lowerBound), Int64(rows.upperBound))
                        }
                    }
                }
            case .conv(let ci, let s, let d, let r, let relu):
                let conv = net.convs[ci], x = plan.slots[s]
                Profiler.timed(conv.conv.name + (conv.desc.winograd != 0 ? " *" : ""),
                               flops: conv.conv.flops(x.h, x.w) * x.n) {
                    run(conv, index: ci, src: s, dst: d, residual: r, relu: relu, executor: executor)
                }
            case .maxPool(let s, let d):
                Profiler.timed("maxpool") {
                    clearBorder(d)
                    let src = map(s), dst = map(d)
                    executor.forEach(splitting: Int(dst.n) * Int(dst.h), threads: threads) { _, rows in
                        var (i, o) = (src, dst)
                        tp_maxpool3s2(&i, &o, Int64(rows.lowerBound), Int64(rows.upperBound))
                    }
                }
            }
        }
        return map(plan.output)
    }

    /// Convolution `index` of the net from slot `s` into slot `d` (with the residual slot `r`).
    private func run(_ conv: PackedConv, index ci: Int, src s: Int, dst d: Int, residual r: Int?, relu: Bool, executor: Executor) {
        let threads = plan.threads
        if r != d { clearBorder(d) }
        let desc = conv.desc, src = map(s), dst = map(d), res = r.map { map($0) }
        let tiles = withUnsafePointer(to: desc) { c in withUnsafePointer(to: dst) { tp_conv_tiles(c, $0) } }
        let panels = self.panels
        if desc.blocks_outer != 0 {
            // Per group of images: pack the tiles once (convolutions that need panels), then split
            // the blocks (their weights fetched once for the group). Without panels, the whole
            // batch is one group.
            let packs = plan.imagesPerPass[ci]
            let group = Int64(packs ?? Int(dst.n))
            for n0 in stride(from: Int64(0), to: Int64(dst.n), by: Int(group)) {
                let n1 = min(Int64(dst.n), n0 + group)
                if packs != nil {
                    executor.forEach(splitting: Int((n1 - n0) * tiles), threads: threads) { _, items in
                        var (c, i, o) = (desc, src, dst)
                        tp_conv_pack_tiles(&c, &i, &o, n0, Int64(items.lowerBound), Int64(items.upperBound), panels)
                    }
                }
                executor.forEach(splitting: Int(desc.blocks), threads: threads) { _, blocks in
                    var (c, i, o) = (desc, src, dst)
                    let (b0, b1) = (Int64(blocks.lowerBound), Int64(blocks.upperBound))
                    if var res { tp_conv_run_blocks(&c, &i, &o, &res, relu ? 1 : 0, n0, n1, panels, b0, b1) }
                    else { tp_conv_run_blocks(&c, &i, &o, nil, relu ? 1 : 0, n0, n1, panels, b0, b1) }
                }
            }
        } else {
            let panelFloats = plan.panelFloats
            executor.forEach(splitting: Int(tiles) * Int(dst.n), threads: threads) { t, items in
                let (lo, hi) = (Int64(items.lowerBound), Int64(items.upperBound))
                var (c, i, o) = (desc, src, dst)
                let panel = panels + t * panelFloats
                if var res { tp_conv_run(&c, &i, &o, &res, relu ? 1 : 0, lo, hi, panel) }
                else { tp_conv_run(&c, &i, &o, nil, relu ? 1 : 0, lo, hi, panel) }
            }
        }
    }

    /// Zeroes the border ring of slot `i` (rows above and below, columns left and right).
    private func clearBorder(_ i: Int) {
        let s = plan.slots[i]
        guard s.border > 0 else { return }
        let base = (arena + s.offset).assumingMemoryBound(to: Float.self)
        let wp = s.w + 2 * s.border, hp = s.h + 2 * s.border, rowFloats = wp * s.cs
        for n in 0..<s.n {
            let image = base + n * hp * rowFloats
            image.update(repeating: 0, count: s.border * rowFloats)
            (image + (s.h + s.border) * rowFloats).update(repeating: 0, count: s.border * rowFloats)
            for y in s.border..<(s.h + s.border) {
                let row = image + y * rowFloats
                row.update(repeating: 0, count: s.border * s.cs)
                (row + (s.w + s.border) * s.cs).update(repeating: 0, count: s.border * s.cs)
            }
        }
    }
}
