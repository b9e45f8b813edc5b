import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Regula's checkpoints against Python's safetensors, the reference reader of the format: Python reads what
/// Regula writes and can check its checksums with nothing but the standard library, and whatever Python
/// refuses, Regula refuses too.
extension CheckpointMutationTests {
    /// CRC-32C written bit by bit, and the header checksum recomputed as Docs/Checkpoints.md describes it.
    static let pythonVerifier = """
        import json, struct, sys
        from safetensors import safe_open

        def crc32c(data):
            crc = 0xFFFFFFFF
            for byte in data:
                crc ^= byte
                for _ in range(8):
                    crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            return crc ^ 0xFFFFFFFF

        raw = open(sys.argv[1], "rb").read()
        length = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + length])
        sums = json.loads(header["__metadata__"].pop("regula.checksums"))
        canonical = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        out = {"header matches": crc32c(canonical) == int(sums["header"], 16), "tensors": {}}
        with safe_open(sys.argv[1], framework="numpy") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                out["tensors"][name] = {"matches": crc32c(tensor.tobytes()) == int(sums["tensors"][name], 16),
                                        "values": [float(x).hex() for x in tensor]}
        print(json.dumps(out))
        """

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

        let output = try Python.run(Self.pythonVerifier, [file.path])
        try #require(output.status == 0, "\(output.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any])
        #expect(report["header matches"] as? Bool == true)
        let tensors = try #require(report["tensors"] as? [String: [String: Any]])
        let expected: [String: [Double]] = [
            "param/\(odd)": w.values(as: Float.self).map(Double.init),
            "param/b": b.values(as: Double.self),
            "state/\(odd)/momentum_buffer": optimizer.state(of: w)!.slots["momentum_buffer"]!,
            "state/b/momentum_buffer": optimizer.state(of: b)!.slots["momentum_buffer"]!,
        ]
        #expect(Set(tensors.keys) == Set(expected.keys))
        for (name, values) in expected {
            #expect(tensors[name]?["matches"] as? Bool == true, "\(name)")
            // Python prints exact hexadecimal floats, which Swift parses exactly.
            #expect((tensors[name]?["values"] as? [String])?.compactMap(Double.init) == values, "\(name)")
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
