import TorchportCore
// MARK: - The allowlists
//
// Two lists decide what a global means; anything else refuses the file (or, when the caller asks,
// becomes an inert class). Interpreted globals are implemented in Swift by `Unpickler+Reduce`;
// inert classes only ever become records. No global is ever looked up or called as code.

extension Unpickler {
    static let interpreted: [String: GlobalRole] = {
        var m: [String: GlobalRole] = [
            "torch._utils._rebuild_tensor": .rebuildTensor,
            "torch._utils._rebuild_tensor_v2": .rebuildTensorV2,
            "torch._utils._rebuild_tensor_v3": .rebuildTensorV3,
            "torch._utils._rebuild_parameter": .rebuildParameter,
            "torch._utils._rebuild_parameter_with_state": .rebuildParameterWithState,
            "torch._tensor._rebuild_from_type_v2": .rebuildFromTypeV2,
            "torch.Tensor": .tensorType,
            "torch._tensor.Tensor": .tensorType,
            "torch.nn.parameter.Parameter": .tensorType,
            "torch.nn.Parameter": .tensorType,
            "collections.OrderedDict": .orderedDict,
            "torch.Size": .torchSize,
            "torch.device": .torchDevice,
            "_codecs.encode": .codecsEncode,
            "copyreg._reconstructor": .reconstructor,
            "copy_reg._reconstructor": .reconstructor,
            "copyreg.__newobj__": .newObject,
            "copy_reg.__newobj__": .newObject,
        ]
        for name in ["build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
                     "build_genericlist", "build_intlist_ivalue", "restore_type_tag"] {
            m["torch.jit._pickle.\(name)"] = .passThrough
        }
        for builtins in ["builtins", "__builtin__"] {
            m["\(builtins).set"] = .set
            m["\(builtins).frozenset"] = .frozenset
            m["\(builtins).bytearray"] = .bytearray
            m["\(builtins).slice"] = .slice
        }
        for (name, dtype) in DType.storageClasses {
            m["torch.\(name)"] = .storageType(dtype)
            m["torch.storage.\(name)"] = .storageType(dtype)
        }
        for (name, dtype) in DType.torchNames { m["torch.\(name)"] = .dtype(dtype) }
        return m
    }()

    static let inertClasses: Set<String> = {
        var s: Set<String> = ["argparse.Namespace", "torch.torch_version.TorchVersion"]
        for np in ["numpy.core.multiarray", "numpy._core.multiarray"] {
            s.insert("\(np).scalar")
            s.insert("\(np)._reconstruct")
        }
        s.insert("numpy.dtype")
        s.insert("numpy.ndarray")
        return s
    }()

    /// Packages whose module classes a whole-model pickle names: `torch.nn.modules.*` (layers,
    /// containers), `torchvision.models.*` (the networks and their blocks), `torchvision.ops.*`
    /// (`Conv2dNormActivation`, `FrozenBatchNorm2d`, ...).
    static let frameworkModulePrefixes = ["torch.nn.modules.", "torchvision.models.", "torchvision.ops."]

    /// A class (a capitalised plain identifier, never a dotted attribute path or a function such as
    /// `torchvision.models.resnet50`) in a module under ``frameworkModulePrefixes`` whose parts are
    /// plain identifiers.
    static func isFrameworkModuleClass(module: String, name: String) -> Bool {
        guard frameworkModulePrefixes.contains(where: { module.hasPrefix($0) }),
              let first = name.unicodeScalars.first, first.properties.isUppercase, first.isASCII else { return false }
        let identifier: (Substring) -> Bool = { part in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        return identifier(Substring(name)) && module.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(identifier)
    }

    /// The globals of a `torch.distributed.checkpoint` `.metadata` pickle (torch 2.x), allowed
    /// only while one is read (``DistributedCheckpoint``): its dataclasses and enum as inert
    /// records, `pathlib` paths (`StorageMeta.checkpoint_id`) as records, and
    /// `torch.serialization._get_layout('torch.strided')` as its argument, a string.
    static let distributedMetadataGlobals: [String: GlobalRole] = {
        var m: [String: GlobalRole] = [
            "torch.distributed.checkpoint.filesystem._StorageInfo": .inertClass,
            "torch.serialization._get_layout": .passThrough,
            "pathlib.PosixPath": .inertClass, "pathlib.WindowsPath": .inertClass, "pathlib.PurePosixPath": .inertClass,
        ]
        for name in ["Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata",
                     "TensorProperties", "MetadataIndex", "StorageMeta", "_MEM_FORMAT_ENCODING"] {
            m["torch.distributed.checkpoint.metadata.\(name)"] = .inertClass
        }
        return m
    }()

    /// Classifies `module.name`, or throws `disallowedGlobal` unless unknown globals are allowed.
    func classify(module: String, name: String) throws -> GlobalRole {
        for part in [module, name] {
            if part.isEmpty || part.contains(where: { $0 == "\n" || $0 == "\0" || $0 == " " }) {
                throw error(.invalidGlobal("\(module.debugDescription) \(name.debugDescription)"))
            }
        }
        if let role = Self.allowlistRole(module: module, name: name) { return role }
        if options.distributedMetadata, let role = Self.distributedMetadataGlobals["\(module).\(name)"] { return role }
        if options.allowUnknownGlobals { return .unknown }
        throw error(.disallowedGlobal(module: module, name: name), key: "\(module).\(name)")
    }

    /// What the allowlists make of `module.name`: an interpreted role, `.inertClass`, or nil for a
    /// global on neither list (shared with the scanner, which must classify exactly as the reader).
    static func allowlistRole(module: String, name: String) -> GlobalRole? {
        let qualified = "\(module).\(name)"
        if let role = interpreted[qualified] { return role }
        if inertClasses.contains(qualified) { return .inertClass }
        if isFrameworkModuleClass(module: module, name: name) { return .moduleClass }
        // TorchScript's own classes: `__torch__.torchvision.models.resnet.ResNet`, plain identifiers only.
        if module == "__torch__" || module.hasPrefix("__torch__."),
           (module + "." + name).allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) {
            return .inertClass
        }
        return nil
    }
}
