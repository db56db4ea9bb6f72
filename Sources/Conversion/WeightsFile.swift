#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SafeTensors
import TorchCheckpoint

/// Every tensor of a checkpoint or a safetensors file (recognised by content, not extension).
public func readTensors(_ path: String, options: ReaderOptions = .init()) throws -> (tensors: [NamedTensor], format: String) {
    if looksLikeSafeTensors(path: path) {
        return (try SafeTensorsFile(contentsOf: path).tensors, "safetensors")
    }
    let checkpoint = try Checkpoint(contentsOf: path, options: options)
    return (checkpoint.tensors, checkpoint.format.rawValue)
}

/// A safetensors file starts with an 8-byte little-endian header length, then `{`; a checkpoint
/// starts with a zip signature or a pickle opcode, never both.
/// Never blocks: what is not a regular file (a FIFO, a device) is not a safetensors file.
public func looksLikeSafeTensors(path: String) -> Bool {
    guard let (fd, st) = try? FileBytes.openRegularFile(path) else { return false }
    defer { close(fd) }
    var head = [UInt8](repeating: 0, count: 9)
    guard pread(fd, &head, 9, 0) == 9 else { return false }
    return SafeTensorsSignature.matches(head, fileSize: Int(st.st_size))
}
