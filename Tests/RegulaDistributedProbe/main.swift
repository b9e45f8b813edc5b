// Runs distributed steps under mpirun and writes what this rank saw to FOLDER/report.rankR.json.
//
//     mpirun -np N RegulaDistributedProbe FOLDER SCENARIO...
//
// Scenarios: numerics, errors, checkpoint-save, checkpoint-load (which reads FOLDER/../saved/), whole-tensor.
import Foundation
import Regula
import RegulaDistributed

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: RegulaDistributedProbe FOLDER SCENARIO...\n".utf8))
    exit(2)
}
let folder = URL(fileURLWithPath: arguments[0])
do {
    let communicator = try Communicator.world()
    let registry = try ProbeRules.registry(rank: communicator.rank)
    var report = Report()
    report.record("ranks", number: communicator.size)
    for scenario in arguments.dropFirst() {
        switch scenario {
        case "numerics": try Numerics.run(communicator, registry: registry, into: &report)
        case "errors": try Errors.run(communicator, registry: registry, into: &report)
        case "whole-tensor": try WholeTensor.run(communicator, registry: registry, folder: folder, into: &report)
        case "checkpoint-save": try Checkpoints.save(communicator, registry: registry, folder: folder, into: &report)
        case "checkpoint-load": try Checkpoints.load(communicator, registry: registry, folder: folder, into: &report)
        default: throw DistributedError("unknown scenario \(scenario)")
        }
    }
    try report.write(to: folder.appendingPathComponent("report.rank\(communicator.rank).json"))
} catch {
    FileHandle.standardError.write(Data("RegulaDistributedProbe: \(error)\n".utf8))
    exit(1)
}
