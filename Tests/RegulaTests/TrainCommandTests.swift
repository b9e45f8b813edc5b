import Foundation
import RegulaTestSupport
import Testing

/// `regula train`, the main job, run as a user runs it.
@Suite struct TrainCommandTests {
    /// The cells of the row starting with `label` in the table after `title`.
    static func row(_ label: String, after title: String, in output: String) -> [String] {
        let lines = output.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix(title) }),
              let line = lines[start...].first(where: { $0.hasPrefix(label) }) else { return [] }
        return line.dropFirst(label.count).components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    @Test func defaultRunIsAccurateAndTheProximalChainIsSparse() throws {
        let output = try regula(["train"])
        #expect(output.status == 0, "\(output.standardError)")
        let accuracy = Self.row("accuracy", after: "logistic regression", in: output.standardOutput)
        #expect(accuracy.count == 2, "\(output.standardOutput)")
        for cell in accuracy { #expect((Double(cell.replacingOccurrences(of: " %", with: "")) ?? 0) > 95, "\(cell)") }
        let zeros = Self.row("exactly-zero weights", after: "logistic regression", in: output.standardOutput)
        #expect(zeros.count == 2)
        let proximalZeros = Int(zeros.last?.components(separatedBy: " of ").first ?? "") ?? 0
        #expect(proximalZeros >= 10, "with prox_l1 at least a third of the 30 weights must be exactly zero: \(zeros)")
        #expect(zeros.first == "0 of 30", "the subgradient chain only oscillates around zero: \(zeros)")
        let support = Self.row("true support kept", after: "sparse regression", in: output.standardOutput)
        #expect(support == ["5 of 5", "5 of 5"])
        #expect(Self.row("false non-zeros", after: "sparse regression", in: output.standardOutput).last == "0")
        // The network reaches 95.2 % of the 355 held-out digits in its 30 epochs with adamw, and with muon on its
        // two matrices beside adamw on its biases (chance: 10 %).
        let heldOut = Self.row("held-out accuracy", after: "multilayer perceptron", in: output.standardOutput)
        #expect(heldOut.count == 2, "\(heldOut)")
        for cell in heldOut { #expect((Double(cell.components(separatedBy: " %").first ?? "") ?? 0) > 92, "\(heldOut)") }
        #expect(Self.row("chain", after: "multilayer perceptron", in: output.standardOutput) == ["adamw", "muon (weights), adamw"])
    }

    @Test func curveAndChartAreWritten() throws {
        let folder = try TemporaryDirectory()
        let csv = folder.url.appendingPathComponent("curve.csv"), svg = folder.url.appendingPathComponent("chart.svg")
        let output = try regula(["train", "--epochs", "40", "--csv", csv.path, "--plot", svg.path])
        #expect(output.status == 0, "\(output.standardError)")
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "problem,run,epoch,loss,zero_weights")
        #expect(lines.count == 1 + 3 * 2 * 40)   // two runs of each problem
        let chart = try String(contentsOf: svg, encoding: .utf8)
        #expect(chart.hasPrefix("<svg") && chart.components(separatedBy: "<polyline").count - 1 == 12)
    }

    @Test func resumedTrainingEndsWhereAnUninterruptedRunEnds() throws {
        let folder = try TemporaryDirectory()
        let checkpoint = folder.url.appendingPathComponent("run.safetensors").path
        let straight = try regula(["train", "--epochs", "120"])
        let first = try regula(["train", "--epochs", "50", "--checkpoint", checkpoint])
        let resumed = try regula(["train", "--epochs", "120", "--resume", checkpoint])
        #expect(first.status == 0 && resumed.status == 0, "\(first.standardError)\(resumed.standardError)")
        for title in ["logistic regression", "sparse regression"] {
            for label in ["final loss", "exactly-zero weights"] {
                #expect(Self.row(label, after: title, in: resumed.standardOutput) == Self.row(label, after: title, in: straight.standardOutput))
            }
        }
        #expect(Self.row("resumed at epoch", after: "logistic regression", in: resumed.standardOutput) == ["50", "50"])
    }

    @Test func singleChainAndOwnDataFile() throws {
        let folder = try TemporaryDirectory()
        var rows = ["x1,x2,label"]
        for index in 0..<40 { rows.append("\(Double(index) / 10),\(Double(index % 7)),\(index >= 20 ? 1 : 0)") }
        let data = try folder.write(rows.joined(separator: "\n") + "\n", to: "data.csv")
        let output = try regula(["train", "--rules", "l1,momentum,sgd", "--option", "momentum=0.5", "--epochs", "60", "--data", data.path])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardOutput.contains("logistic regression on data.csv"))
        #expect(Self.row("chain", after: "logistic regression", in: output.standardOutput) == ["l1 > momentum > sgd"])
    }

    @Test func badInputIsRefusedWithTheReason() throws {
        let folder = try TemporaryDirectory()
        let bad = try folder.write("1,2,0\n3,4,5\n", to: "bad.csv")
        let labels = try regula(["train", "--data", bad.path, "--epochs", "5"])
        #expect(labels.status != 0 && labels.standardError.contains("the label (last column) is 5.0; allowed: 0 or 1"), "\(labels.standardError)")
        let option = try regula(["train", "--rules", "sgd", "--option", "momentum=0.9", "--epochs", "5"])
        #expect(option.status != 0 && option.standardError.contains("unknown hyperparameter \"momentum\""), "\(option.standardError)")
        let typo = try regula(["train", "--option", "weight_decay=0.1", "--epochs", "5"])
        #expect(typo.status != 0 && typo.standardError.contains("unknown hyperparameter \"weight_decay\" in the optimizer's defaults (did you mean \"weight_decay1\"?)"),
                "\(typo.standardError)")
        let missing = try regula(["train", "--resume", folder.url.appendingPathComponent("none.safetensors").path, "--epochs", "5"])
        #expect(missing.status != 0 && missing.standardError.contains("cannot read"), "\(missing.standardError)")
    }
}
