import Testing
@testable import Images
import TorchportCore

@Suite("Resampling, cropping and preprocessing follow PIL and torchvision")
struct PreprocessingTests {
    func gradient(width: Int, height: Int) throws -> RGBImage {
        var px = [UInt8]()
        for y in 0..<height {
            for x in 0..<width { px += [UInt8((x * 7 + y * 3) % 256), UInt8((x * y) % 256), UInt8(255 - (x + y) % 256)] }
        }
        return try RGBImage(width: width, height: height, pixels: px)
    }

    @Test("A constant image stays constant under every filter, up- and downscaling",
          arguments: Interpolation.allCases)
    func constant(_ interpolation: Interpolation) throws {
        let image = try RGBImage(width: 37, height: 23, filledWith: 173)
        for (w, h) in [(11, 7), (100, 61), (37, 5), (3, 23)] {
            let out = try image.resized(width: w, height: h, interpolation: interpolation)
            #expect(out.width == w && out.height == h)
            #expect(out.pixels.allSatisfy { $0 == 173 }, "\(interpolation) to \(w)x\(h)")
        }
    }

    @Test("Box downscaling by 2 averages 2x2 blocks (rounded half up)")
    func boxAverage() throws {
        let image = try RGBImage(width: 2, height: 2, pixels: [0, 10, 255, 1, 20, 255, 2, 30, 0, 4, 41, 0])
        let out = try image.resized(width: 1, height: 1, interpolation: .box)
        // The horizontal pass rounds to 8 bits first (half up): R rows 0.5 -> 1 and 3, then 2;
        // G rows 15 and 35.5 -> 36, then 25.5 -> 26; B rows 255 and 0, then 127.5 -> 128.
        #expect(out.pixels == [2, 26, 128])
    }

    @Test("Identity resize returns the image unchanged; resizing is separable per axis")
    func identity() throws {
        let image = try gradient(width: 40, height: 30)
        #expect(try image.resized(width: 40, height: 30) == image)
        let wide = try image.resized(width: 80, height: 30)
        #expect(wide.height == 30 && wide.width == 80)
        let tall = try image.resized(width: 40, height: 90, interpolation: .bicubic)
        #expect(tall.height == 90 && tall.width == 40)
    }

    @Test("torchvision's Resize(int) size rule: shorter side to the size, longer side rounded down")
    func resizedSize() throws {
        let p = Preprocessing.imageNet
        #expect(p.resizedSize(width: 451, height: 300) == (384, 256))  // int(256 * 451 / 300) = 384
        #expect(p.resizedSize(width: 300, height: 451) == (256, 384))
        #expect(p.resizedSize(width: 512, height: 512) == (256, 256))
        #expect(p.resizedSize(width: 640, height: 427) == (383, 256))  // 383.7 -> 383
        #expect(Preprocessing(resizeSize: nil).resizedSize(width: 5, height: 7) == (5, 7))
        #expect(p.outputSize(width: 10, height: 1000) == (224, 224))
        #expect(Preprocessing(resizeSize: 232, cropSize: nil).outputSize(width: 640, height: 427) == (347, 232))
    }

    @Test("CenterCrop rounds half to even, like Python's round(); small images are zero-padded")
    func centerCrop() throws {
        let image = try gradient(width: 341, height: 257)
        let c = try image.centerCropped(width: 224, height: 224)
        // left = round(117 / 2) = round(58.5) = 58 (even); top = round(33 / 2) = round(16.5) = 16.
        #expect(try c == image.cropped(x: 58, y: 16, width: 224, height: 224))
        let d = try gradient(width: 227, height: 229).centerCropped(width: 224, height: 224)
        // left = round(1.5) = 2, top = round(2.5) = 2.
        #expect(try d == gradient(width: 227, height: 229).cropped(x: 2, y: 2, width: 224, height: 224))
        let small = try gradient(width: 3, height: 2)
        let padded = try small.centerCropped(width: 6, height: 5)
        #expect(padded.width == 6 && padded.height == 5)
        // Padding: left (6-3)/2 = 1, right 2; top (5-2)/2 = 1, bottom 2.
        #expect(padded[1, 1] == small[0, 0])
        #expect(padded[0, 0] == (0, 0, 0))
        #expect(padded[5, 4] == (0, 0, 0))
    }

    @Test("ToTensor divides by 255; Normalize subtracts the mean and divides by the std in float32")
    func normalise() throws {
        let image = try RGBImage(width: 1, height: 1, pixels: [255, 0, 128])
        let p = Preprocessing(resizeSize: nil, cropSize: nil)
        #expect(try p.unitPixels(image) == [1, 0, Float(128) / 255])
        let t = try p.tensor(image)
        #expect(t[0] == (Float(1) - Float(0.485)) / Float(0.229))
        #expect(t[1] == (Float(0) - Float(0.456)) / Float(0.224))
        #expect(t[2] == (Float(128) / 255 - Float(0.406)) / Float(0.225))
    }

    @Test("Planar layout: all of R, then G, then B")
    func planar() throws {
        let image = try RGBImage(width: 2, height: 1, pixels: [255, 0, 0, 0, 255, 0])
        #expect(image.planarUnitFloats() == [1, 0, 0, 1, 0, 0])
    }

    @Test("Invalid configurations are explained")
    func validation() throws {
        #expect(Preprocessing.imageNet.validationProblem == nil)
        #expect(Preprocessing(resizeSize: 0).validationProblem != nil)
        #expect(Preprocessing(cropSize: -1).validationProblem != nil)
        #expect(Preprocessing(mean: [0.5]).validationProblem != nil)
        #expect(Preprocessing(std: [1, 0, 1]).validationProblem != nil)
    }
}

@Suite("Image operations refuse bad arguments with a typed error, never a trap")
struct ImageArgumentTests {
    @Test("Wrong sample counts, empty resizes, crops outside the image and negative padding throw invalidArgument")
    func refusals() throws {
        func kind(_ body: () throws -> Void) -> ImageError.Kind? {
            do { try body(); return nil } catch let e as ImageError { return e.kind } catch { return nil }
        }
        #expect(kind { _ = try RGBImage(width: 2, height: 2, pixels: [0, 1, 2]) } == .invalidArgument)
        #expect(kind { _ = try RGBImage(width: -1, height: 2, filledWith: 0) } == .invalidArgument)
        #expect(kind { _ = try RGBImage(width: Int.max, height: 2, filledWith: 0) } == .invalidArgument)
        let image = try RGBImage(width: 4, height: 3, filledWith: 9)
        #expect(kind { _ = try image.resized(width: 0, height: 3) } == .invalidArgument)
        #expect(kind { _ = try RGBImage(width: 0, height: 0, pixels: []).resized(width: 2, height: 2) } == .invalidArgument)
        #expect(kind { _ = try image.cropped(x: 2, y: 0, width: 3, height: 3) } == .invalidArgument)
        #expect(kind { _ = try image.cropped(x: Int.max, y: 0, width: 1, height: 1) } == .invalidArgument)
        #expect(kind { _ = try image.centerCropped(width: 0, height: 2) } == .invalidArgument)
        #expect(kind { _ = try image.padded(left: -1, top: 0, right: 0, bottom: 0) } == .invalidArgument)
        #expect(try image.cropped(x: 1, y: 1, width: 3, height: 2).pixels == [UInt8](repeating: 9, count: 18))
        var broken = Preprocessing.imageNet
        broken.std = [0, 1, 1]
        #expect(broken.validationProblem != nil)
        #expect(kind { _ = try broken.tensor(image) } == .invalidArgument)
    }
}

