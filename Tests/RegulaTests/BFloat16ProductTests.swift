import Foundation
import Regula
import RegulaABI
import RegulaTestSupport
import Testing

/// The services table's bfloat16-to-bfloat16 product (`gemm_bf16_bf16`, oneDNN), called through its pointer as
/// a rule calls it, against a float64 triple loop of the same bfloat16 inputs.
struct BFloat16ProductTests {
    /// float64 to bfloat16 bits through float32, to nearest with ties to even, as torch casts.
    static func bits(_ value: Double) -> UInt16 {
        let raw = Float(value).bitPattern
        return UInt16((raw &+ 0x7FFF &+ ((raw >> 16) & 1)) >> 16)
    }
    static func value(_ bits: UInt16) -> Double { Double(Float(bitPattern: UInt32(bits) << 16)) }

    /// Runs `p` through the table with its operands rounded to bfloat16: the status, the words and C after it.
    static func run(_ p: BLASServiceTests.Product, nullA: Bool = false) -> (status: regula_status, words: String, c: [UInt16]) {
        let gemm = HostServices.table.pointee.gemm_bf16_bf16!
        let (a, b) = (p.a.map(bits), p.b.map(bits))
        var c = p.c.map(bits)
        let (status, words) = withMessage { message in
            c.withUnsafeMutableBufferPointer { c in
                gemm(regula_transpose(p.ta ? REGULA_TRANSPOSE : REGULA_NO_TRANSPOSE),
                     regula_transpose(p.tb ? REGULA_TRANSPOSE : REGULA_NO_TRANSPOSE), p.m, p.n, p.k, Float(p.alpha),
                     nullA ? nil : a, p.lda, b, p.ldb, Float(p.beta), c.baseAddress, p.ldc, message)
            }
        }
        return (status, words, c)
    }

    /// Each element within one bfloat16 rounding (half an ulp: 2⁻⁸ relative at most) of the exact result of the rounded
    /// inputs, plus float32 summation error; C's padding past each row untouched.
    static func expectAgreement(_ p: BLASServiceTests.Product, _ c: [UInt16], sourceLocation: SourceLocation = #_sourceLocation) {
        let (values, scales) = p.expected(inputs: { value(bits($0)) }, output: { value(bits($0)) })
        let original = p.c.map(bits)
        var wrong: [String] = []
        for i in 0..<p.m {
            for j in 0..<p.ldc {
                let index = i * p.ldc + j
                if j >= p.n {
                    if c[index] != original[index] { wrong.append("padding [\(i), \(j)] written") }
                } else if !(abs(value(c[index]) - values[index]) <= 0x1p-8 * abs(values[index]) + 1e-6 * scales[index]) {
                    wrong.append("[\(i), \(j)]: \(value(c[index])), exactly \(values[index])")
                }
            }
        }
        #expect(wrong == [], sourceLocation: sourceLocation)
    }

    static let products: [BLASServiceTests.Product] = [false, true].flatMap { ta in
        [false, true].map { tb in .init(ta: ta, tb: tb, m: 37, n: 29, k: 41, alpha: 1.5, beta: -0.5, padding: 3, seed: 21) }
    }

    @Test(arguments: products)
    func agreesWithTheDefinitionForEveryTransposeAndStride(product: BLASServiceTests.Product) {
        let (status, words, c) = Self.run(product)
        #expect(status == REGULA_OK, "\(words)")
        Self.expectAgreement(product, c)
    }

    /// The float32 sum is rounded to the nearest bfloat16, ties to the even one.
    @Test func roundsTheSumToNearestEven() {
        // 1 + 2⁻⁸ lies halfway between the bfloat16 numbers 1 and 1 + 2⁻⁷: the tie goes to the even one, 1.
        // 1 + 1.5·2⁻⁸ is nearer 1 + 2⁻⁷.
        var p = BLASServiceTests.Product(ta: false, tb: false, m: 1, n: 2, k: 2, alpha: 1, beta: 0, padding: 0, seed: 1)
        (p.a, p.b, p.c) = ([1, 0x1p-8], [1, 1, 1, 1.5], [0, 0])
        let (status, words, c) = Self.run(p)
        #expect(status == REGULA_OK, "\(words)")
        #expect(c.map(Self.value) == [1, 1 + 0x1p-7])
    }

    @Test func aZeroBetaOverwritesCWithoutReadingIt() {
        var product = BLASServiceTests.Product(ta: false, tb: true, m: 8, n: 5, k: 6, alpha: -2, beta: 0, padding: 0, seed: 3)
        product.c = [Double](repeating: .nan, count: product.c.count)
        let (status, words, c) = Self.run(product)
        #expect(status == REGULA_OK, "\(words)")
        Self.expectAgreement(product, c)
    }

    @Test func badArgumentsAreRefusedInWordsAndCIsNotWritten() {
        let good = BLASServiceTests.Product(ta: false, tb: false, m: 2, n: 3, k: 4, alpha: 1, beta: 1, padding: 0, seed: 9)
        var narrow = good
        narrow.lda = 3
        for (product, nullA, words) in [(good, true, "gemm_bf16_bf16: A is NULL; a 2 x 4 product needs it"),
                                        (narrow, false, "gemm_bf16_bf16: the row stride of A, 3, is smaller than its stored rows "
                                            + "of 4 elements (A is stored 2 x 4); allowed: 4 or more")] {
            let (status, said, c) = Self.run(product, nullA: nullA)
            #expect(status == REGULA_ERROR_INVALID_ARGUMENT)
            #expect(said == words)
            #expect(c == product.c.map(Self.bits), "C was written")
        }
    }

    /// Without oneDNN (a child process, since a process loads it once) every call fails with words a rule can
    /// pass on, writing nothing.
    @Test func aMissingOneDNNIsNamedAndNothingIsWritten() async throws {
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) {
            setenv("REGULA_DNNL_LIBRARY", "/nonexistent/libdnnl.so.2", 1)
            let product = BLASServiceTests.Product(ta: false, tb: false, m: 2, n: 3, k: 4, alpha: 1, beta: 1, padding: 0, seed: 9)
            let (status, words, c) = BFloat16ProductTests.run(product)
            let unchanged = c == product.c.map(BFloat16ProductTests.bits)
            FileHandle.standardError.write(Data("\(status) \(unchanged ? "unchanged" : "written") \(words)".utf8))
            exit(0)
        }
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self)
                == "4 unchanged bfloat16 products need oneDNN (libdnnl.so.2, Debian package libdnnl2); it could not be loaded: "
                + "/nonexistent/libdnnl.so.2: cannot open shared object file: No such file or directory (named by "
                + "REGULA_DNNL_LIBRARY; unset it to load the system's)")
    }
}
