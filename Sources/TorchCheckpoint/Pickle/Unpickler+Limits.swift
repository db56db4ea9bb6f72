import TorchportCore
/// Resource bounds of the reader. Each default is far above what real checkpoints need (a
/// resnet152 state dict uses about 6,000 memo entries, 40,000 ops and a MARK depth of 4) and far
/// below what would exhaust this machine. A file exceeding one is refused with
/// ``CheckpointError/Kind/limitExceeded(_:limit:)``.
public struct ReaderLimits: Sendable, Equatable {
    /// Nested MARKs open at once, and the nesting depth of a tensor's path.
    public var maxDepth: Int = 1_000
    /// Distinct memo entries (PUT, BINPUT, LONG_BINPUT, MEMOIZE).
    public var maxMemoEntries: Int = 10_000_000
    /// Opcodes executed per pickle.
    public var maxOps: Int = 100_000_000
    /// Values on the unpickler's stack at once.
    public var maxStackSize: Int = 10_000_000
    /// Logical elements of one tensor (a zero-stride view may claim far more than it stores).
    public var maxElements: Int = 1 << 32
    /// Declared size of one compressed zip entry, inflated.
    public var maxInflatedEntryBytes: Int = 1 << 32
    /// All compressed zip entries of one archive, inflated, together: a small file of many
    /// deflated entries cannot make the reader hold more than this.
    public var maxInflatedTotalBytes: Int = 1 << 32
    /// Entries in a zip central directory.
    public var maxEntries: Int = 1_000_000
    /// Total bytes of all tensor names (a tensor reached through many deep paths).
    public var maxNameBytes: Int = 64 << 20

    /// The default limits.
    public init() {}
}

/// How the reader treats a file.
public struct ReaderOptions: Sendable {
    /// The resource bounds the reader enforces.
    public var limits = ReaderLimits()
    /// When true, globals outside the allowlists are kept as inert records instead of refusing the
    /// file. Nothing is ever called either way; this only decides whether such files load.
    public var allowUnknownGlobals = false
    /// Reading a `torch.distributed.checkpoint` `.metadata` pickle: its dataclasses
    /// (``Unpickler/distributedMetadataGlobals``) are inert records, and only there.
    var distributedMetadata = false

    /// Creates options; by default, default limits and unknown globals refused.
    public init(limits: ReaderLimits = ReaderLimits(), allowUnknownGlobals: Bool = false) {
        self.limits = limits
        self.allowUnknownGlobals = allowUnknownGlobals
    }
}
