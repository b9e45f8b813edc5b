import Foundation
import Regula
import RegulaABI
import RegulaTestSupport
import Testing

/// The host services table's GEMMs, called through its function pointers as a rule calls them, against a triple
/// loop written here; their refusals in words; and the words when OpenBLAS cannot be loaded (in a child
/// process, since a process loads it once).
struct BLASServiceTests {
    /// One GEMM's arguments, its operands stored row-major with the given row strides.
    struct Product: CustomTestStringConvertible {
        var ta = false, tb = false
        var m = 0, n = 0, k = 0
        var alpha = 1.0, beta = 0.0
        var a: [Double] = [], b: [Double] = [], c: [Double] = []
        var lda = 0, ldb = 0, ldc = 0

        /// Random operands for an m x k times k x n product, each stored row `padding` elements longer than needed.
        init(ta: Bool, tb: Bool, m: Int, n: Int, k: Int, alpha: Double, beta: Double, padding: Int, seed: UInt64) {
            (self.ta, self.tb, self.m, self.n, self.k, self.alpha, self.beta) = (ta, tb, m, n, k, alpha, beta)
            lda = (ta ? m : k) + padding
            ldb = (tb ? k : n) + padding
            ldc = n + padding
            var random = SeededGenerator(seed: seed)
            let values = { (count: Int) in (0..<count).map { _ in Double.random(in: -1...1, using: &random) } }
            a = values((ta ? k : m) * lda)
            b = values((tb ? n : k) * ldb)
            c = values(m * ldc)
        }

        var testDescription: String { "\(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k)" }

        func opA(_ row: Int, _ column: Int) -> Double { ta ? a[column * lda + row] : a[row * lda + column] }
        func opB(_ row: Int, _ column: Int) -> Double { tb ? b[column * ldb + row] : b[row * ldb + column] }

        /// C after the product, by the definition, with each element's scale (the sum of its terms' magnitudes)
        /// for a relative tolerance; the padding past each row of C is left as it was. `inputs` and `output` round
        /// the values of A and B, and of C, to the element types the GEMM takes them in.
        func expected(inputs rounding: (Double) -> Double, output: (Double) -> Double) -> (values: [Double], scales: [Double]) {
            let c = c.map(output)
            var values = c, scales = [Double](repeating: 0, count: c.count)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, scale = 0.0
                    for l in 0..<k {
                        let term = rounding(opA(i, l)) * rounding(opB(l, j))
                        sum += term
                        scale += abs(term)
                    }
                    let old = beta == 0 ? 0 : beta * c[i * ldc + j]
                    values[i * ldc + j] = alpha * sum + old
                    scales[i * ldc + j] = abs(alpha) * scale + abs(old)
                }
            }
            return (values, scales)
        }
    }

    /// The element types a GEMM of the table computes in: `bfloat16` is `gemm_bf16`'s, bfloat16 A and B with a
    /// float32 C (OpenBLAS's sbgemm where it has one, else oneDNN's matmul).
    enum Precision: CaseIterable, Sendable {
        case float32, float64, bfloat16

        /// The GEMM's name in the table, as its words begin.
        var name: String { ["gemm_f32", "gemm_f64", "gemm_bf16"][Self.allCases.firstIndex(of: self)!] }

        /// float32 summation error of 41 terms is at most about 2.4e-6 of their magnitudes' sum; a C rounded
        /// through bfloat16 (2⁻⁹ ≈ 2e-3) would fail.
        var tolerance: Double { self == .float64 ? 1e-12 : 1e-5 }

        /// A float64 value as this precision stores C.
        func rounded(_ value: Double) -> Double { self == .float64 ? value : Double(Float(value)) }

        /// A float64 value as this precision stores A and B.
        func roundedInput(_ value: Double) -> Double {
            self == .bfloat16 ? BFloat16ProductTests.value(BFloat16ProductTests.bits(value)) : rounded(value)
        }

        /// C after `p`, by the definition, from the operands as this precision stores them.
        func expected(_ p: Product) -> (values: [Double], scales: [Double]) {
            p.expected(inputs: roundedInput, output: rounded)
        }

        /// Runs the product through the table's pointer for this precision: its status, its words and C after it.
        /// `nullA` and `nullC` pass NULL in place of A or C.
        func run(_ p: Product, nullA: Bool = false, nullC: Bool = false) -> (status: regula_status, words: String, c: [Double]) {
            let services = HostServices.table.pointee
            let ta = regula_transpose(p.ta ? REGULA_TRANSPOSE : REGULA_NO_TRANSPOSE)
            let tb = regula_transpose(p.tb ? REGULA_TRANSPOSE : REGULA_NO_TRANSPOSE)
            switch self {
            case .float32:
                return Self.runIntoFloat32(p, ta, tb, nullA: nullA, nullC: nullC, input: Float.init, services.gemm_f32!)
            case .float64:
                var c = p.c
                let (status, words) = withMessage { message in
                    c.withUnsafeMutableBufferPointer { c in
                        services.gemm_f64!(ta, tb, p.m, p.n, p.k, p.alpha, nullA ? nil : p.a, p.lda, p.b, p.ldb, p.beta,
                                           nullC ? nil : c.baseAddress, p.ldc, message)
                    }
                }
                return (status, words, c)
            case .bfloat16:
                return Self.runIntoFloat32(p, ta, tb, nullA: nullA, nullC: nullC, input: BFloat16ProductTests.bits,
                                           services.gemm_bf16!)
            }
        }

        /// `run` for a GEMM with a float32 C and alpha: A and B converted by `input` to the elements it takes.
        private static func runIntoFloat32<Input>(
            _ p: Product, _ ta: regula_transpose, _ tb: regula_transpose, nullA: Bool, nullC: Bool,
            input: (Double) -> Input,
            _ gemm: (regula_transpose, regula_transpose, Int, Int, Int, Float, UnsafePointer<Input>?, Int,
                     UnsafePointer<Input>?, Int, Float, UnsafeMutablePointer<Float>?, Int,
                     UnsafeMutablePointer<regula_message>?) -> regula_status
        ) -> (status: regula_status, words: String, c: [Double]) {
            let (a, b) = (p.a.map(input), p.b.map(input))
            var c = p.c.map(Float.init)
            let (status, words) = withMessage { message in
                c.withUnsafeMutableBufferPointer { c in
                    gemm(ta, tb, p.m, p.n, p.k, Float(p.alpha), nullA ? nil : a, p.lda, b, p.ldb, Float(p.beta),
                         nullC ? nil : c.baseAddress, p.ldc, message)
                }
            }
            return (status, words, c.map(Double.init))
        }
    }

    static let products: [Product] = [false, true].flatMap { ta in
        [false, true].map { tb in Product(ta: ta, tb: tb, m: 37, n: 29, k: 41, alpha: 1.5, beta: -0.5, padding: 3, seed: 15) }
    }

    @Test(arguments: Precision.allCases, products)
    func eachGEMMAgreesWithTheDefinitionForEveryTransposeAndStride(precision: Precision, product: Product) {
        let (status, words, c) = precision.run(product)
        #expect(status == REGULA_OK, "\(words)")
        expectClose(c, precision.expected(product), tolerance: precision.tolerance)
    }

    @Test(arguments: Precision.allCases)
    func aZeroBetaOverwritesCWithoutReadingIt(precision: Precision) {
        var product = Product(ta: false, tb: true, m: 8, n: 5, k: 6, alpha: -2, beta: 0, padding: 0, seed: 3)
        product.c = [Double](repeating: .nan, count: product.c.count)
        let (status, words, c) = precision.run(product)
        #expect(status == REGULA_OK, "\(words)")
        expectClose(c, precision.expected(product), tolerance: precision.tolerance)
    }

    @Test(arguments: Precision.allCases)
    func anEmptyProductIsANoOpAndAnEmptySumScalesC(precision: Precision) {
        // m = 0: nothing to compute, so no pointer is needed (NULL is passed for A and C).
        let empty = Product(ta: false, tb: false, m: 0, n: 4, k: 3, alpha: 1, beta: 2, padding: 0, seed: 1)
        let (status, words, _) = precision.run(empty, nullA: true, nullC: true)
        #expect(status == REGULA_OK, "\(words)")
        let none = precision.run(Product(ta: false, tb: false, m: 0, n: 0, k: 0, alpha: 1, beta: 1, padding: 0, seed: 1))
        #expect(none.0 == REGULA_OK, "\(none.1)")
        // k = 0: C = beta * C.
        var scaled = Product(ta: true, tb: false, m: 3, n: 4, k: 0, alpha: 1, beta: 2, padding: 0, seed: 1)
        scaled.a = [0]
        scaled.b = [0]
        let (scaledStatus, scaledWords, c) = precision.run(scaled)
        #expect(scaledStatus == REGULA_OK, "\(scaledWords)")
        #expect(c == scaled.c.map { precision == .float64 ? $0 * 2 : Double(Float($0) * 2) })
    }

    @Test(arguments: Precision.allCases)
    func badArgumentsAreRefusedInWordsAndCIsNotWritten(precision: Precision) {
        let name = precision.name
        let good = Product(ta: false, tb: false, m: 2, n: 3, k: 4, alpha: 1, beta: 1, padding: 0, seed: 9)
        var narrow = good
        narrow.lda = 3
        var transposedNarrow = good
        transposedNarrow.tb = true
        transposedNarrow.ldb = 3
        var huge = good
        huge.k = Int(Int32.max) + 1
        var wide = good
        (wide.m, wide.n, wide.k, wide.lda, wide.ldb, wide.ldc) = (Int(Int32.max), 1, Int(Int32.max), Int(Int32.max), 1, 1)
        var wideC = good
        (wideC.m, wideC.n, wideC.k, wideC.lda, wideC.ldb, wideC.ldc) = (Int(Int32.max), 1, 1, 1, 1, Int(Int32.max))
        let refusals: [(Product, nullA: Bool, String)] = [
            (good, true, "\(name): A is NULL; a 2 x 4 product needs it"),
            (narrow, false, "\(name): the row stride of A, 3, is smaller than its stored rows of 4 elements (A is stored 2 x 4); allowed: 4 or more"),
            (transposedNarrow, false, "\(name): the row stride of B, 3, is smaller than its stored rows of 4 elements (B is stored 3 x 4, transposed); allowed: 4 or more"),
            (huge, false, "\(name): k = 2147483648 is above 2147483647, the largest size the BLAS takes (its sizes are int)"),
            (wideC, false, "\(name): C (stored 2147483647 x 1, row stride 2147483647) spans more bytes than one object may (PTRDIFF_MAX)"),
        ] + (precision == .bfloat16 ? [] : [  // A of 2-byte bfloat16 elements that wide still fits, just
            (wide, false, "\(name): A (stored 2147483647 x 2147483647, row stride 2147483647) spans more bytes than one object may (PTRDIFF_MAX)"),
        ])
        for (product, nullA, words) in refusals {
            // The checks come before any access, so small arrays stand in for the huge matrices.
            let (status, said, c) = precision.run(product, nullA: nullA)
            #expect(status == REGULA_ERROR_INVALID_ARGUMENT)
            #expect(said == words)
            #expect(c == product.c.map(precision.rounded), "C was written")
        }
    }

    @Test func aTransposeCodeOtherThanTheTwoIsRefused() {
        var c: [Double] = [7]
        let (status, words) = withMessage { message in
            HostServices.table.pointee.gemm_f64!(2, regula_transpose(REGULA_NO_TRANSPOSE), 1, 1, 1, 1, [1], 1, [1], 1, 0, &c, 1, message)
        }
        #expect(status == REGULA_ERROR_INVALID_ARGUMENT)
        #expect(words == "gemm_f64: transpose code 2 for A; allowed: REGULA_NO_TRANSPOSE (0) or REGULA_TRANSPOSE (1)")
        #expect(c == [7])
    }

    @Test func theBLASThreadCountIsSetForEveryLaterCall() throws {
        let before = HostServices.blasThreadCount
        #expect(before >= 1, "\(HostServices.blasLoadError ?? "")")
        defer { try? HostServices.setBLASThreadCount(before) }
        try HostServices.setBLASThreadCount(1)
        #expect(HostServices.blasThreadCount == 1)
        let product = Self.products[3]
        let (status, words, c) = Precision.float64.run(product)
        #expect(status == REGULA_OK, "\(words)")
        expectClose(c, Precision.float64.expected(product), tolerance: Precision.float64.tolerance)
        #expect(throws: HostServiceError.self) { try HostServices.setBLASThreadCount(0) }
        #expect(HostServices.blasThreadCount == 1)
    }

    /// `gemm_bf16` and `gemm_bf16_bf16` on the same shape, alpha and beta are different oneDNN primitives (C's
    /// type is part of the cached key), whichever is made first.
    @Test(arguments: [false, true])
    func theBFloat16GEMMsShareNoPrimitive(floatFirst: Bool) {
        let product = Product(ta: true, tb: true, m: 13 + (floatFirst ? 1 : 0), n: 11, k: 19, alpha: 0.75, beta: 0.5,
                              padding: 1, seed: 16)
        for float in floatFirst ? [true, false] : [false, true] {
            if float {
                let (status, words, c) = Precision.bfloat16.run(product)
                #expect(status == REGULA_OK, "\(words)")
                expectClose(c, Precision.bfloat16.expected(product), tolerance: Precision.bfloat16.tolerance)
            } else {
                let (status, words, c) = BFloat16ProductTests.run(product)
                #expect(status == REGULA_OK, "\(words)")
                BFloat16ProductTests.expectAgreement(product, c)
            }
        }
    }

    /// Without oneDNN and with the system's OpenBLAS (in a child process, since a process loads each once),
    /// `gemm_bf16` fails in words naming both libraries and writes nothing where the BLAS has no `cblas_sbgemm`
    /// (Debian 12's OpenBLAS 0.3.21), and computes with sbgemm where it has one.
    @Test func withoutSbgemmOrOneDNNTheBFloat16GEMMNamesBothAndWritesNothing() async throws {
        let library = try #require(HostServices.blasLibrary, "\(HostServices.blasLoadError ?? "")")
        let handle = try #require(dlopen(library, RTLD_NOW | RTLD_NOLOAD))
        let hasSbgemm = dlsym(handle, "cblas_sbgemm") != nil
        dlclose(handle)
        let said = try await Self.bfloat16GEMMWords(environment: ["REGULA_DNNL_LIBRARY": "/nonexistent/libdnnl.so.2"])
        if hasSbgemm {
            #expect(said == "0 computed ", "\(said)")
        } else {
            #expect(said == "4 unchanged gemm_bf16: the BLAS loaded from \(library) has no cblas_sbgemm, so bfloat16 products "
                    + "need oneDNN (libdnnl.so.2, Debian package libdnnl2); it could not be loaded: /nonexistent/libdnnl.so.2: "
                    + "cannot open shared object file: No such file or directory (named by REGULA_DNNL_LIBRARY; unset it "
                    + "to load the system's)")
        }
    }

    /// Without OpenBLAS and without oneDNN, `gemm_bf16` says why neither loaded and writes nothing.
    @Test func withNeitherLibraryTheBFloat16GEMMNamesBothAndWritesNothing() async throws {
        let said = try await Self.bfloat16GEMMWords(environment: ["REGULA_DNNL_LIBRARY": "/nonexistent/libdnnl.so.2",
                                                                  "REGULA_BLAS_LIBRARY": "/nonexistent/libopenblas.so.0"])
        #expect(said == "4 unchanged gemm_bf16: cannot load OpenBLAS from REGULA_BLAS_LIBRARY=/nonexistent/libopenblas.so.0: "
                + "/nonexistent/libopenblas.so.0: cannot open shared object file: No such file or directory; name OpenBLAS's "
                + "libopenblas there, or unset it to load the system's; without it bfloat16 products need oneDNN "
                + "(libdnnl.so.2, Debian package libdnnl2); it could not be loaded: /nonexistent/libdnnl.so.2: cannot open "
                + "shared object file: No such file or directory (named by REGULA_DNNL_LIBRARY; unset it to load the system's)")
    }

    /// In a child process with `environment` set: `gemm_bf16`'s status, whether C was changed, and its words.
    static func bfloat16GEMMWords(environment: [String: String]) async throws -> String {
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) { [environment] in
            for (name, value) in environment { setenv(name, value, 1) }
            let product = Product(ta: false, tb: true, m: 2, n: 3, k: 4, alpha: 1, beta: 1, padding: 1, seed: 9)
            let (status, words, c) = Precision.bfloat16.run(product)
            let unchanged = c == product.c.map(Precision.bfloat16.rounded)
            FileHandle.standardError.write(Data("\(status) \(unchanged ? "unchanged" : "computed") \(words)".utf8))
            exit(0)
        }
        return String(decoding: result.standardErrorContent, as: UTF8.self)
    }

    @Test func aMissingLibraryFailsEveryGEMMWithTheFileNamed() async throws {
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) {
            setenv("REGULA_BLAS_LIBRARY", "/nonexistent/libopenblas.so.0", 1)
            let services = HostServices.table.pointee
            var c: [Float] = [3]
            let (status, words) = withMessage { message in
                services.gemm_f32!(0, 0, 1, 1, 1, 1, [1], 1, [1], 1, 1, &c, 1, message)
            }
            FileHandle.standardError.write(Data("\(status) \(c) \(words)\n".utf8))
            exit(HostServices.blasThreadCount == 0 && (try? HostServices.setBLASThreadCount(1)) == nil ? 0 : 1)
        }
        let said = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(said.hasPrefix("4 [3.0] gemm_f32: cannot load OpenBLAS from REGULA_BLAS_LIBRARY=/nonexistent/libopenblas.so.0: "
                               + "/nonexistent/libopenblas.so.0: cannot open shared object file"), "\(said)")
        #expect(said.hasSuffix("; name OpenBLAS's libopenblas there, or unset it to load the system's\n"), "\(said)")
    }

    @Test func aLibraryThatIsNotOpenBLASIsRefusedByName() async throws {
        let other = TestPaths.binDirectory.appendingPathComponent("libRegulaRuleSGD.so").path
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) { [other = other as String] in
            setenv("REGULA_BLAS_LIBRARY", other, 1)
            FileHandle.standardError.write(Data((HostServices.blasLoadError ?? "loaded") .utf8))
            exit(0)
        }
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self)
                == "\(other) is not OpenBLAS's libopenblas: it has no symbol cblas_sgemm; install OpenBLAS (Debian or "
                + "Ubuntu: apt-get install libopenblas0), or name its libopenblas in REGULA_BLAS_LIBRARY")
    }

    /// A rule reaches the table through its block: `matrix_square` sets a square matrix parameter to its own
    /// product with itself (through `gemm_f64`), which the test computes by hand.
    @Test func aKernelMultipliesThroughTheBlocksServices() throws {
        let source = PluginSource.plugin(rules: [#"{ RULE("matrix_square"), .dtypes = REGULA_DTYPE_FLOAT64, .kernel = square }"#],
                                         declarations: """
            static regula_status square(const regula_block *block, regula_message *message) {
                size_t n = block->shape[0];
                if (block->rank != 2 || block->shape[1] != n || block->length != block->parameter_length)
                    return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "needs one block of a square matrix");
                double *d = block->update, *p = block->param;
                regula_status status = block->services->gemm_f64(REGULA_NO_TRANSPOSE, REGULA_NO_TRANSPOSE, n, n, n, 1.0,
                                                                 p, n, p, n, 0.0, d, n, message);
                if (status != REGULA_OK) return status;
                for (size_t i = 0; i < block->length; i++) p[i] = d[i];
                return REGULA_OK;
            }
            """)
        let folder = try TemporaryDirectory()
        let registry = RuleRegistry()
        try registry.loadPlugin(at: PluginCompiler.compile(source, named: "matrix_square", in: folder).path)
        let values: [Double] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let w = try Parameter("W", values: values, shape: [3, 3])
        try w.setGradient([Double](repeating: 0, count: 9))
        try Optimizer([w], rules: ["matrix_square"], registry: registry).step()
        var expected = [Double](repeating: 0, count: 9)
        for row in 0..<3 {
            for column in 0..<3 {
                for inner in 0..<3 { expected[row * 3 + column] += values[row * 3 + inner] * values[inner * 3 + column] }
            }
        }
        #expect(try w.values(as: Double.self) == expected)
    }

    /// OpenBLAS is mapped by the first product a rule asks for, not by building or stepping an optimizer whose
    /// rules never multiply matrices.
    @Test func stepsThatMultiplyNothingNeverLoadOpenBLAS() async throws {
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let w = Parameter("w", values: [1.0, 2.0])
            try? w.setGradient([1.0, 1.0])
            _ = try? Optimizer([w], preset: .sgd(lr: 0.1, momentum: 0.9)).step()
            _ = HostServices.table
            let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? "unreadable"
            FileHandle.standardError.write(Data((maps.contains("libopenblas") ? "mapped" : "not mapped").utf8))
            exit(0)
        }
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self) == "not mapped")
    }
}

/// Runs `body` with a host-owned message buffer, as a rule is handed one, and returns its status and words.
func withMessage(_ body: (UnsafeMutablePointer<regula_message>) -> regula_status) -> (regula_status, String) {
    let text = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
    defer { text.deallocate() }
    text[0] = 0
    var message = regula_message(text: text, capacity: 1024)
    let status = body(&message)
    return (status, String(cString: text))
}

/// Every element of `actual` within `tolerance` of `expected`'s value, relative to that element's scale.
private func expectClose(_ actual: [Double], _ expected: (values: [Double], scales: [Double]), tolerance: Double,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.values.count, sourceLocation: sourceLocation)
    let worst = zip(actual.indices, zip(actual, zip(expected.values, expected.scales))).first { _, pair in
        let (got, (want, scale)) = pair
        return !(abs(got - want) <= tolerance * max(scale, .leastNormalMagnitude))
    }
    #expect(worst == nil, "element \(worst.map { String(describing: $0) } ?? "")", sourceLocation: sourceLocation)
}
