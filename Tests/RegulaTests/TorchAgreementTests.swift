import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Every reference trajectory torch and optax made, replayed through the Swift API and through `regula replay`,
/// parameters and state compared element by element.
@Suite struct TorchAgreementTests {
    @Test func fixturesArePresent() {
        #expect(TorchFixture.trajectories().count >= 7, "no fixtures in \(TorchFixture.Folder.sgd.directory.path)")
        #expect(TorchFixture.refusals().count >= 9)
        for prefix in TorchFixture.implementedMatrixCases {
            #expect((TorchFixture.agreementTrajectories() + TorchFixture.agreementRefusals()).contains { $0.folder == .matrix && $0.file.hasPrefix(prefix) }, "no \(prefix)* case")
        }
    }

    @Test(arguments: TorchFixture.agreementTrajectories())
    func swiftAPIAgreesWithTorch(_ fixture: TorchFixture) throws {
        let result = try ReplaySpec(json: fixture.spec).run()
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state, stateShapes: result.stateShapes) == [])
    }

    @Test(arguments: TorchFixture.agreementTrajectories())
    func replayCommandAgreesWithTorch(_ fixture: TorchFixture) throws {
        let output = try regula(["replay", fixture.path])
        #expect(output.status == 0, "\(output.standardError)")
        let json = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as! [String: Any]
        let parameters = json["params"] as! [String: [Double]]
        let state = json["state"] as! [String: [String: [Double]]]
        let shapes = json["state_shapes"] as! [String: [String: [Int]]]
        #expect(fixture.disagreements(parameters: parameters, state: state, stateShapes: shapes) == [])
    }

    @Test(arguments: TorchFixture.agreementRefusals())
    func swiftAPIRefusesBadSpec(_ fixture: TorchFixture) {
        do {
            _ = try ReplaySpec(json: fixture.spec).run()
            Issue.record("\(fixture) was accepted")
        } catch {
            let message = "\(error)"
            for word in fixture.errorWords { #expect(message.contains(word), "\(message)") }
        }
    }

    @Test(arguments: TorchFixture.agreementRefusals())
    func replayCommandRefusesBadSpec(_ fixture: TorchFixture) throws {
        let output = try regula(["replay", fixture.path])
        #expect(output.status != 0)
        #expect(output.standardOutput.isEmpty)
        for word in fixture.errorWords { #expect(output.standardError.contains(word), "\(output.standardError)") }
    }
}
