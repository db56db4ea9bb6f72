import Testing
@testable import TorchportCore

@Suite("SHA-256")
struct SHA256Tests {
    @Test("Matches the FIPS 180-4 test vectors, across block boundaries and split updates")
    func vectors() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(twoBlocks) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var split = SHA256()
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        split.update(Array(million[0..<333_333]))
        split.update(Array(million[333_333...]))
        let digest = split.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(digest == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

@Suite("SHA-256 with the CPU's SHA instructions (where the CPU has them: elsewhere it would compare software with software)",
       .enabled(if: SHA256.hardwareAvailable))
struct SHA256HardwareTests {
    @Test("Hardware and software rounds agree for every length 0...300 and split updates")
    func hardwareMatchesSoftware() {
        var bytes: [UInt8] = []
        var x: UInt32 = 12345
        for _ in 0..<4099 {
            x = x &* 1_664_525 &+ 1_013_904_223
            bytes.append(UInt8(truncatingIfNeeded: x >> 24))
        }
        for n in Array(0...300) + [1000, 4095, 4099] {
            var hw = SHA256(), sw = SHA256(useHardware: false)
            hw.update(Array(bytes[0..<n]))
            sw.update(Array(bytes[0..<n]))
            #expect(hw.finalize() == sw.finalize(), "length \(n)")
        }
        var split = SHA256()
        for chunk in stride(from: 0, to: 4099, by: 97) { split.update(Array(bytes[chunk..<min(chunk + 97, 4099)])) }
        var whole = SHA256(useHardware: false)
        whole.update(bytes)
        #expect(split.finalize() == whole.finalize())
    }
}
