/// Torchport's version: `torchport --version`, and `converter_version` in every converted file.
/// The consumer check (Tests/Consumer/run.sh) tags its clone with it.
public let torchportVersion = "0.1.0"
