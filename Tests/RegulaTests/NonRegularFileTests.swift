#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Tensors and checkpoints are read from regular files only: a FIFO, a device or a file of zeros is refused
/// in words naming the path and what is allowed, with status 1, and nothing is changed; never a hang or a
/// signal. Names that are different strings but read alike (equal after NFKC) are refused too.
@Suite struct NonRegularFileTests {
    /// A folder holding a FIFO named `name`; nothing ever writes to it, so reading it would block forever.
    func fifo(named name: String, in folder: TemporaryDirectory) throws -> URL {
        let url = folder.url.appendingPathComponent(name)
        try #require(mkfifo(url.path, 0o644) == 0)
        return url
    }

    /// A sparse file of `size` zero bytes (no disk is used).
    func sparse(named name: String, size: off_t, in folder: TemporaryDirectory) throws -> URL {
        let url = folder.url.appendingPathComponent(name)
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        try #require(ftruncate(descriptor, size) == 0)
        return url
    }

    /// A one-rule spec in `folder` whose only group lists `grouped`, with `params` and `steps` as given (JSON).
    func spec(in folder: TemporaryDirectory, grouped: String = #"["w"]"#, params: String, steps: String = "[]") throws -> URL {
        try folder.write(#"{"rules": ["sgd"], "defaults": {"lr": 0.5}, "groups": [{"params": \#(grouped)}], "#
                         + #""params": \#(params), "steps": \#(steps)}"#, to: "spec.json")
    }

    /// Runs `regula replay` and checks that it fails with every one of `words` and prints nothing.
    func expectReplayRefusal(_ arguments: [String], _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let output = try regula(["replay"] + arguments)
        #expect(output.status == 1, "\(output.standardError)", sourceLocation: sourceLocation)
        #expect(output.standardOutput.isEmpty, sourceLocation: sourceLocation)
        for word in words {
            #expect(output.standardError.contains(word), "\(output.standardError)", sourceLocation: sourceLocation)
        }
    }

    @Test func replayRefusesAFIFOAsParams() throws {
        let folder = try TemporaryDirectory()
        let pipe = try fifo(named: "params.safetensors", in: folder)
        let spec = try spec(in: folder, params: #""params.safetensors""#)
        try expectReplayRefusal([spec.path], ["spec.params: cannot read \(pipe.path): it is a named pipe (FIFO), not a regular file",
                                              "allowed: a regular file"])
    }

    @Test func replayRefusesAFIFOAndADeviceAsGradients() throws {
        let folder = try TemporaryDirectory()
        let pipe = try fifo(named: "grads.safetensors", in: folder)
        for (path, what) in [(pipe.path, "a named pipe (FIFO)"), ("/dev/zero", "a character device")] {
            let spec = try spec(in: folder, params: #"{"w": [1.0]}"#, steps: #"[{"grads": "\#(path)"}]"#)
            try expectReplayRefusal([spec.path], ["spec.steps[0].grads: cannot read \(path): it is \(what), not a regular file"])
        }
    }

    /// The spec itself may come from a pipe or a device, but one that never ends is refused at 1 GiB.
    @Test func replayRefusesASpecStreamThatDoesNotEnd() throws {
        try expectReplayRefusal(["/dev/zero"], ["cannot read /dev/zero: it does not end within 268435456 bytes",
                                                "allowed from a pipe, a device or standard input: at most 268435456 bytes"])
    }

    @Test func replayRefusesASparseFileOfZerosWithoutReadingIt() throws {
        let folder = try TemporaryDirectory()
        let zeros = try sparse(named: "params.safetensors", size: 1 << 30, in: folder)
        let spec = try spec(in: folder, params: #""params.safetensors""#)
        try expectReplayRefusal([spec.path], ["spec.params: \(zeros.path) is not a safetensors file",
                                              "the header does not start with '{'"])
    }

    @Test func aCheckpointIsReadOnlyFromARegularFile() throws {
        let folder = try TemporaryDirectory()
        let pipe = try fifo(named: "pipe.safetensors", in: folder)
        let zeros = try sparse(named: "zeros.safetensors", size: 1 << 30, in: folder)
        let cases = [
            (pipe, "\(pipe.path): it is a named pipe (FIFO), not a regular file; allowed: a regular file"),
            (URL(fileURLWithPath: "/dev/zero"), "/dev/zero: it is a character device, not a regular file; allowed: a regular file"),
            (zeros, "cannot load \(zeros.path): the header does not start with '{'"),
        ]
        let suite = CheckpointMutationTests()
        for (url, words) in cases {
            let target = try suite.target(), before = try suite.snapshot(target)
            #expect {
                try target.optimizer.loadCheckpoint(from: url, schedulers: [target.scheduler])
            } throws: { error in
                "\(error)".contains(words) && "\(error)".hasSuffix("; nothing was changed")
            }
            #expect(try suite.snapshot(target) == before)
        }
        var status = stat()
        #expect(stat(zeros.path, &status) == 0 && status.st_size == 1 << 30 && status.st_blocks == 0, "the sparse file is untouched")
        // Refused on its first bytes: this process reads far less than the gigabyte (other tests running at the
        // same time read a few megabytes at most).
        let target = try suite.target(), before = try bytesRead()
        #expect(throws: CheckpointError.self) { try target.optimizer.loadCheckpoint(from: zeros) }
        #expect(try bytesRead() - before < 100 << 20)
    }

    /// Bytes this process has read so far (`rchar` of /proc/self/io: every read call, cached or not).
    func bytesRead() throws -> Int {
        let io = try String(contentsOfFile: "/proc/self/io", encoding: .utf8)
        let line = io.split(separator: "\n").first { $0.hasPrefix("rchar:") }
        return try #require(line.flatMap { Int($0.dropFirst("rchar:".count).trimmingCharacters(in: .whitespaces)) })
    }

    @Test func trainRefusesToResumeFromAFIFO() throws {
        let folder = try TemporaryDirectory()
        let base = folder.url.appendingPathComponent("run").path
        let pipe = try fifo(named: "run.logistic.subgradient", in: folder)
        let output = try regula(["train", "--epochs", "1", "--resume", base])
        #expect(output.status == 1)
        #expect(output.standardError.contains("cannot read \(pipe.path): it is a named pipe (FIFO), not a regular file"),
                "\(output.standardError)")
        var status = stat()
        #expect(lstat(pipe.path, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO, "the FIFO is left as it was")
    }

    /// The reader accepts a step count up to 2^53; a checkpoint beyond it is refused when saving, not when
    /// resuming, and at exactly 2^53 it saves and loads back.
    @Test func aStepCountBeyondTwoToThe53IsNeverSaved() throws {
        let suite = CheckpointMutationTests()
        let folder = try TemporaryDirectory()
        let limit = "9007199254740992"
        let parts = SafeTensorsParts(try Data(contentsOf: CheckpointMutationTests.format1))
        let atLimit = folder.url.appendingPathComponent("limit.safetensors")
        try parts.replacing(#"\\"step\\":3"#, with: #"\\"step\\":"# + limit)!.assembled().write(to: atLimit)
        let model = try suite.model()
        try model.optimizer.loadCheckpoint(from: atLimit, schedulers: [model.scheduler])
        #expect(model.optimizer.state(of: model.parameters[0])?.step == 1 << 53)

        let saved = folder.url.appendingPathComponent("saved.safetensors")
        try model.optimizer.saveCheckpoint(to: saved, schedulers: [model.scheduler])
        let again = try suite.model()
        try again.optimizer.loadCheckpoint(from: saved, schedulers: [again.scheduler])
        #expect(again.optimizer.state(of: again.parameters[0])?.step == 1 << 53)

        let savedBytes = try Data(contentsOf: saved)
        try suite.train(model, steps: 3..<4)
        #expect(throws: CheckpointError("cannot save a checkpoint: parameter \"w\"'s step count is 9007199254740993, more than a "
                                        + "checkpoint holds (2^53 = \(limit), the last whole number a double counts exactly); "
                                        + "the file was not written")) {
            try model.optimizer.saveCheckpoint(to: saved, schedulers: [model.scheduler])
        }
        #expect(try Data(contentsOf: saved) == savedBytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["limit.safetensors", "saved.safetensors"])
    }

    /// A partial file left by a killed `regula replay --output` (its pid gone) is removed by the next write
    /// to the same destination; one whose process still runs is kept.
    @Test func replayOutputRemovesAbandonedPartialsOnly() throws {
        let folder = try TemporaryDirectory()
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let stale = try folder.write("left by a killed save", to: ".out.safetensors.\(finished.processIdentifier).7.partial")
        let live = try folder.write("a save still running", to: ".out.safetensors.\(getpid()).8.partial")
        let other = try folder.write("another destination's", to: ".other.safetensors.\(finished.processIdentifier).9.partial")
        let spec = try spec(in: folder, params: #"{"w": [1.0]}"#, steps: #"[{"grads": {"w": [1.0]}}]"#)
        let output = try regula(["replay", spec.path, "--output", folder.url.appendingPathComponent("out.safetensors").path])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        #expect(try String(contentsOf: live, encoding: .utf8) == "a save still running")
        #expect(try String(contentsOf: other, encoding: .utf8) == "another destination's")
    }

    @Test(arguments: [("\u{212A}", "K"), ("caf\u{E9}", "cafe\u{301}"), ("\u{FB01}", "fi")])
    func replayRefusesAGroupNameThatOnlyReadsLikeAParameter(_ grouped: String, _ defined: String) throws {
        let folder = try TemporaryDirectory()
        let spec = try spec(in: folder, grouped: #"["\#(grouped)"]"#, params: #"{"\#(defined)": [1.0]}"#,
                            steps: #"[{"grads": {"\#(defined)": [1.0]}}]"#)
        let codes = { (name: String) in name.unicodeScalars.map { "U+" + String(format: "%04X", $0.value) }.joined(separator: " ") }
        try expectReplayRefusal([spec.path], ["spec.groups[0].params names parameter \"\(grouped)\" (\(codes(grouped))), "
                                              + "but spec.params defines \"\(defined)\" (\(codes(defined)))",
                                              "equal after Unicode NFKC normalization"])
    }

    @Test func replayRefusesTwoParametersWhoseNamesReadAlike() throws {
        let folder = try TemporaryDirectory()
        let spec = try spec(in: folder, grouped: #"["fi", "\#u{FB01}"]"#, params: #"{"fi": [1.0], "\#u{FB01}": [2.0]}"#)
        try expectReplayRefusal([spec.path], ["spec.params defines two parameters whose names read alike: \"fi\" (U+0066 U+0069) "
                                              + "and \"\u{FB01}\" (U+FB01)"])
    }

    @Test(arguments: [("\u{212A}", "K"), ("\u{FB01}", "fi"), ("caf\u{E9}", "cafe\u{301}")])
    func anOptimizerRefusesParameterNamesThatReadAlike(_ first: String, _ second: String) throws {
        let registry = try RuleRegistry.standard(environment: [:])
        let a = Parameter(first, values: [Float]([1])), b = Parameter(second, values: [Float]([2]))
        #expect(throws: OptimizerError.parameterNamesReadAlike(first, second)) {
            try Optimizer([ParamGroup([a, b])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        }
        #expect("\(OptimizerError.parameterNamesReadAlike("\u{212A}", "K"))"
                == "two parameters' names: \"\u{212A}\" (U+212A) and \"K\" (U+004B) are different strings that read as the "
                   + "same name (they are equal after Unicode NFKC normalization); spell both the same way")
        #expect(try a.values(as: Float.self) == [1] && b.values(as: Float.self) == [2])
    }
}
