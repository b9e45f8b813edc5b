import Foundation
import Regula
import RegulaTestSupport
import Testing

/// muon's `ns_dtype: "bfloat16"` against stock `torch.optim.Muon`, whose Newton–Schulz iteration runs in
/// bfloat16 (`Tests/Fixtures/torch-muon-bf16`), and the default `"parameter"` left as it was.
@Suite struct MuonBFloat16Tests {
    /// Read anew each time rather than kept in a static: a kept `Data` sits behind an enum whose spare pointer
    /// bits hide it from LeakSanitizer, which then reports it as leaked at exit.
    static var fixtures: [TorchFixture] { TorchFixture.trajectories([.muonBFloat16]) }

    @Test func fixturesArePresent() {
        #expect(Self.fixtures.map(\.file) == ["muon-bf16-float32.json", "muon-bf16-float64.json"])
    }

    @Test(arguments: fixtures)
    func theBFloat16IterationAgreesWithStockTorch(_ fixture: TorchFixture) throws {
        let result = try ReplaySpec(json: fixture.spec).run()
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state, stateShapes: result.stateShapes) == [])
    }

    /// The 1e-2 bar cannot tell the two iterations apart (they differ by about 6e-4 on these matrices), so this
    /// checks that the option really selects the bfloat16 one: ten times closer to stock torch than the other.
    @Test(arguments: fixtures)
    func theOptionSelectsTheIteration(_ fixture: TorchFixture) throws {
        let bfloat16 = try Self.farthest(ReplaySpec(json: fixture.spec).run(), from: fixture)
        let text = String(decoding: fixture.spec, as: UTF8.self)
        #expect(text.contains(#""ns_dtype": "bfloat16""#))
        let inParameterDtype = Data(text.replacingOccurrences(of: #""ns_dtype": "bfloat16""#, with: #""ns_dtype": "parameter""#).utf8)
        let parameter = try Self.farthest(ReplaySpec(json: inParameterDtype).run(), from: fixture)
        #expect(bfloat16 * 10 < parameter, "bfloat16 \(bfloat16), parameter \(parameter)")
    }

    /// Naming the default changes no bit of the torch-matrix muon trajectories (which TorchAgreementTests check).
    @Test func parameterIsTheDefault() throws {
        let fixture = try #require(TorchFixture.trajectories([.matrix]).first { $0.file == "muon-float32.json" })
        let text = String(decoding: fixture.spec, as: UTF8.self)
        let named = Data(text.replacingOccurrences(of: #""defaults": {"#, with: #""defaults": {"ns_dtype": "parameter", "#).utf8)
        #expect(named != fixture.spec)
        #expect(try ReplaySpec(json: named).run() == ReplaySpec(json: fixture.spec).run())
    }

    @Test func anUnknownNameIsRefusedWithTheNames() throws {
        let w = try Parameter("W", values: [Float](repeating: 1, count: 6), shape: [2, 3])
        #expect {
            try Optimizer([w], rules: ["muon"], defaults: ["lr": 0.02], choices: ["ns_dtype": "float16"])
        } throws: { error in
            "\(error)".contains(#"hyperparameter "ns_dtype" = "float16""#) && "\(error)".contains("allowed: parameter, bfloat16")
        }
    }

    /// Without oneDNN (its file named wrongly, in a child process since a process loads it once) a bfloat16 step
    /// fails with the service's words and leaves the parameter and its state as they were.
    @Test func withoutOneDNNAStepFailsInWordsAndChangesNothing() async throws {
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) {
            setenv("REGULA_DNNL_LIBRARY", "/nonexistent/libdnnl.so.2", 1)
            let values = (0..<40).map { Float($0 % 7) - 3 }
            let w = try! Parameter("W", values: values, shape: [5, 8])
            try! w.setGradient(values.reversed())
            let optimizer = try! Optimizer([w], rules: ["muon"], defaults: ["lr": 0.02], choices: ["ns_dtype": "bfloat16"])
            var words = "stepped"
            do { try optimizer.step() } catch { words = "\(error)" }
            let unchanged = (try? w.values(as: Float.self)) == values && optimizer.state(of: w) == nil
            FileHandle.standardError.write(Data("\(unchanged ? "unchanged" : "changed") \(words)".utf8))
            exit(0)
        }
        let said = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(said.hasPrefix("unchanged "), "\(said)")
        #expect(said.contains("bfloat16 products need oneDNN (libdnnl.so.2, Debian package libdnnl2); it could not be loaded: "
                              + "/nonexistent/libdnnl.so.2: cannot open shared object file"), "\(said)")
    }

    /// The largest relative distance, as the fixtures measure it, of any parameter or state element from torch's.
    static func farthest(_ result: ReplayResult, from fixture: TorchFixture) -> Double {
        var worst = 0.0
        let pairs = fixture.expectedParameters.map { (result.parameters[$0.key] ?? [], $0.value) }
            + fixture.expectedState.flatMap { parameter, slots in slots.map { (result.state[parameter]?[$0.key] ?? [], $0.value) } }
        for (ours, reference) in pairs {
            for (a, e) in zip(ours, reference) { worst = max(worst, abs(a - e) / max(1, abs(e))) }
        }
        return worst
    }
}
