#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The layout a file of weights came in: the three containers `torch.save` and `torch.jit.save`
/// write, and safetensors.
public enum WeightsFormat: String, Sendable, Codable, CaseIterable {
    /// `torch.save` since torch 1.6: a zip of `data.pkl`, `data/<key>` storages, `byteorder`, ...
    case zip
    /// `torch.save` before 1.6 (and `_use_new_zipfile_serialization=False`): one pickle stream.
    case legacy
    /// `torch.jit.save`: a zip whose `data.pkl` holds `__torch__.*` objects; only data is read.
    case torchScript = "torchscript"
    /// A `.safetensors` file: an 8-byte header length, a JSON header, the data.
    case safetensors
    /// Hugging Face's sharded layout: a `*.index.json` (`weight_map`: tensor -> shard file) beside
    /// its shards (`.safetensors`, or `torch.save` `.bin` files).
    case sharded
    /// A `torch.distributed.checkpoint` folder: `.metadata` and `__<rank>_<n>.distcp` files.
    case distributed = "distributed-checkpoint"

    /// The one detector of a file's format by content (never by extension): whether its first
    /// bytes start a safetensors file (an 8-byte header length that fits the file, then `{`); if not, the checkpoint reader
    /// tells zip, TorchScript and legacy apart (it needs the zip directory to). Never blocks: what
    /// is not a regular file (a FIFO, a device) is not a safetensors file.
    public static func isSafeTensors(path: String) -> Bool {
        guard let (fd, st) = try? FileBytes.openRegularFile(path) else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 9)
        guard pread(fd, &head, 9, 0) == 9 else { return false }
        return SafeTensorsSignature.matches(head, fileSize: Int(st.st_size))
    }
}

/// Where a model's weights came from: the file and its format.
public struct WeightsSource: Sendable, Equatable {
    /// The file.
    public let url: URL
    /// Its format, as detected from its content.
    public let format: WeightsFormat

    /// The weights of `url`, in `format`.
    public init(url: URL, format: WeightsFormat) {
        self.url = url
        self.format = format
    }

    /// The file's path, for messages.
    public var file: String { url.path }
}
