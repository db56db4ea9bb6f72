import TorchportCore
// The native format: see docs/safetensors.md.
//
// - `SafeTensorsFile` reads (memory map, full validation, zero-copy tensor views).
// - `SafeTensorsWriter` writes (Python-compatible order and JSON, so files match
//   `safetensors.torch.save_file` byte for byte; `writeAtomically` for temp file + rename).
// - `SafeTensorsError` is every failure, with a stable `code` and file / key / offset context.
// - `HeaderJSONParser` is the strict header parser (duplicates, depth, surrogates, integers).
