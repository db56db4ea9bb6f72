import TorchportCore
// Verification: the last stage of the pipeline. A golden file written by real PyTorch holds an
// input batch and the logits PyTorch computed for it (`Golden`); Torchport's logits for the same
// input are compared with them sample by sample (`Verifier`), under a stated tolerance
// (`Criterion`), and the result is a report (`VerificationReport`) that renders as a table or JSON
// and maps onto the CLI's exit code (`ExitStatus`). See docs/verification.md.

/// The exit-code contract of `torchport verify` (and of anything that verifies):
///
/// | code | meaning |
/// |------|---------|
/// | 0    | every sample is within the criterion: parity with PyTorch holds |
/// | 1    | a numerical mismatch: the files were read, and at least one sample failed |
/// | 2    | an unusable file: the golden (or checkpoint) could not be read or has the wrong shape |
///
/// Codes are `Int32`, as `exit(3)` and swift-argument-parser's `ExitCode` take them.
public enum ExitStatus {
    /// 0: every sample is within the criterion.
    public static let passed: Int32 = 0
    /// 1: the files were read and at least one sample failed.
    public static let mismatch: Int32 = 1
    /// 2: the golden or checkpoint could not be read, or has the wrong shape.
    public static let unusableFile: Int32 = 2
}
