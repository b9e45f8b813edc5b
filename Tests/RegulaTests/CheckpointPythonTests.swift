import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Regula's checkpoints against Python's safetensors, the reference reader of the format: Python reads what
/// Regula writes and can check its checksums with nothing but the standard library, and whatever Python
/// refuses, Regula refuses too.
extension CheckpointMutationTests {
    /// Docs/Checkpoints.md's Python check (its `load_verified`, a bit-by-bit CRC-32C and the header's
    /// canonical JSON by `json.dumps`), run on the file named by its first argument: prints every tensor's
    /// values as exact hexadecimal floats, or fails with the checksum that does not match.
    static var pythonVerifier: String {
        get throws {
            let markdown = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("Docs/Checkpoints.md"), encoding: .utf8)
            let sample = try #require(markdown.components(separatedBy: "```python\n").dropFirst().first?.components(separatedBy: "```").first)
            return sample + """
                import sys
                print(json.dumps({name: [float(x).hex() for x in t] for name, t in load_verified(sys.argv[1]).items()}))
                """
        }
    }

    @Test(.enabled(if: Python.hasSafetensors, "python3 cannot import safetensors here (pip install safetensors numpy)"))
    func pythonReadsEveryTensorAndConfirmsEveryChecksum() throws {
        // Names that need every kind of JSON escape, so the header's canonical form is really compared.
        let odd = "naïve \"w\"\\\t\u{1}/é"
        let w = Parameter(odd, values: [Float]([0.5, -1.25, 3]))
        let b = Parameter("b", values: [0.125, -2.0])
        let optimizer = try Optimizer([ParamGroup([w]), ParamGroup([b], options: ["lr": 0.3])], rules: ["momentum", "sgd"],
                                      defaults: ["lr": 0.1, "momentum": 0.9], registry: registry)
        try w.setGradient([Float]([0.25, 0.5, -1]))
        try b.setGradient([1.5, -0.75])
        try optimizer.step()
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("odd.safetensors")
        try optimizer.saveCheckpoint(to: file)

        let output = try Python.run(try Self.pythonVerifier, [file.path])
        try #require(output.status == 0, "\(output.standardError)")
        let tensors = try #require(try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: [String]])
        let expected: [String: [Double]] = [
            "param/\(odd)": try w.values(as: Float.self).map(Double.init),
            "param/b": try b.values(as: Double.self),
            "state/\(odd)/momentum_buffer": optimizer.state(of: w)!.slots["momentum_buffer"]!,
            "state/b/momentum_buffer": optimizer.state(of: b)!.slots["momentum_buffer"]!,
        ]
        // Python prints exact hexadecimal floats, which Swift parses exactly.
        #expect(tensors.mapValues { $0.compactMap(Double.init) } == expected)

        // One flipped bit in the data, or in the header, and the check fails, naming what does not match.
        let bytes = try Data(contentsOf: file)
        for (position, words) in [(bytes.count - 3, "/momentum_buffer does not match its checksum"),
                                  (40, "the header does not match its checksum")] {
            var damaged = bytes
            damaged[position] ^= 0x10
            try damaged.write(to: file)
            let refused = try Python.run(try Self.pythonVerifier, [file.path])
            #expect(refused.status != 0 && refused.standardError.contains(words), "\(refused.standardError)\n\(refused.standardOutput)")
        }
    }

    /// Every mutant of the checkpoint without checksums (the format-1 fixture, where Regula has only the
    /// structure to go by) goes to Python's safetensors; each one it refuses must be refused by Regula,
    /// changing nothing. (Regula refuses every mutant of a file with checksums, the mutation tests show.)
    @Test(.enabled(if: Python.hasSafetensors, "python3 cannot import safetensors here (pip install safetensors numpy)"))
    func whatPythonRefusesRegulaRefuses() throws {
        let (_, saved) = try saved()
        let folder = try TemporaryDirectory()
        let fixture = try Data(contentsOf: Self.format1)
        let mutants = CheckpointMutation.allCases.flatMap { $0.mutants(of: fixture, seed: 30) }
        var paths: [String] = []
        for (index, mutant) in mutants.enumerated() {
            let path = folder.url.appendingPathComponent("\(index).safetensors")
            try mutant.bytes.write(to: path)
            paths.append(path.path)
        }
        let script = """
            import sys
            from safetensors import safe_open
            for path in sys.argv[1:]:
                try:
                    with safe_open(path, framework="numpy") as f:
                        for name in f.keys():
                            f.get_tensor(name)
                    print("read")
                except Exception:
                    print("refused")
            """
        let output = try Python.run(script, paths)
        try #require(output.status == 0, "\(output.standardError)")
        let verdicts = output.standardOutput.split(separator: "\n")
        try #require(verdicts.count == mutants.count)
        let refusedByPython = zip(mutants, verdicts).filter { $0.1 == "refused" }.map(\.0)
        #expect(refusedByPython.count > mutants.count / 3, "Python refused only \(refusedByPython.count) of \(mutants.count)")
        #expect(try expectRefusedOrExact(refusedByPython, saved: saved) == refusedByPython.count)
    }
}
