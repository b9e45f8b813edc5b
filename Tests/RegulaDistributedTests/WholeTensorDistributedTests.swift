import Foundation
import RegulaTestSupport
import Testing

/// Whole-tensor rules on two ranks in both modes (Tests/RegulaDistributedProbe/WholeTensor.swift): `muon` with
/// a choice on two matrices beside `adamw` on two vectors, and `adafactor` on a matrix and a vector, against a
/// one-process `Optimizer` stepping the same gradient, bit for bit; a sharded checkpoint through one process
/// and back; and ranks that disagree on a choice.
@Suite(.enabled(if: MPIJob.mpirun != nil, MPIJob.absent),
        .disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.openMPIKeepsItsAllocations)))
struct WholeTensorDistributedTests {
    static let parameters = ["w1": 24, "w2": 15, "b1": 6, "b2": 3, "f": 35, "g": 9]
    /// The parameters a whole-tensor rule steps, and the rank that owns each in sharded mode: in order, each
    /// goes to the rank owning the fewest such elements so far (w1 24 to rank 0, w2 15 to rank 1, f 35 to
    /// rank 1 with 15 against 24, g 9 to rank 0 with 24 against 50).
    static let owners = ["w1": 0, "w2": 1, "f": 1, "g": 0]

    @Test(arguments: ["replicated", "sharded"], ["float32", "float64"])
    func bothRanksStepLikeOneProcessBitForBit(mode: String, dtype: String) throws {
        let reports = try ProbeRuns.shared().two
        let key = "whole-tensor/\(mode)/\(dtype)"
        for (name, _) in Self.parameters {
            let reference = reports[0].values("\(key)/reference/\(name)")
            try #require(!reference.isEmpty, "no reference for \(key)/\(name)")
            for (rank, report) in reports.enumerated() {
                #expect(report.values("\(key)/\(name)") == reference, "\(key)/\(name) on rank \(rank)")
                #expect(report.number("\(key)/\(name)/step") == 4, "\(key)/\(name) on rank \(rank)")
            }
            // The state: every rank's whole (replicated); the ranks' shares of each element slot in rank order,
            // the owner's whole slots of a parameter owned whole, and every rank's scalar slots (sharded).
            let slots = reports[0].text("\(key)/reference/\(name)/slots").split(separator: ",").map(String.init)
            #expect(!slots.isEmpty, "\(key)/\(name) has no state")
            for slot in slots {
                let expected = reports[0].values("\(key)/reference/\(name)/slot/\(slot)")
                let held = reports.map { $0.values("\(key)/\(name)/slot/\(slot)") }
                let whole = mode == "replicated" || held.allSatisfy { $0 == expected } ? held.allSatisfy { $0 == expected }
                    : Array(held.joined()) == expected
                #expect(whole, "\(key)/\(name)/\(slot): the ranks hold \(held), one process \(expected)")
            }
        }
    }

    @Test func shardedModeOwnsEachWholeTensorParameterWholeOnOneRankAndSplitsTheOthers() throws {
        let reports = try ProbeRuns.shared().two
        let key = "whole-tensor/sharded/float32"
        for (name, count) in Self.parameters {
            let shares = reports.map { $0.values("\(key)/\(name)/share") }
            if let owner = Self.owners[name] {
                for rank in 0..<2 {
                    #expect(shares[rank] == (rank == owner ? [0, Double(count)] : [0, 0]), "\(name) on rank \(rank): \(shares[rank])")
                }
                // The other rank holds no elements of its state.
                for slot in reports[0].text("\(key)/reference/\(name)/slots").split(separator: ",") {
                    let held = reports[1 - owner].values("\(key)/\(name)/slot/\(slot)")
                    #expect(held.count <= 1, "\(name)/\(slot) on rank \(1 - owner): \(held.count) values")
                }
            } else {
                #expect(shares == [[0, Double(count / 2)], [Double(count / 2), Double(count)]], "\(name): \(shares)")
            }
        }
        // adafactor's factored slots, whole on the owner: a row per row, a column per column of f (5 × 7).
        let owner = reports[Self.owners["f"]!]
        #expect(owner.values("\(key)/f/slot/row_var").count == 5 && owner.values("\(key)/f/slot/col_var").count == 7)
        #expect(reports[1].values("\(key)/g/slot/variance").isEmpty && reports[0].values("\(key)/g/slot/variance").count == 9)
    }

    @Test func aShardedCheckpointGoesToOneProcessAndBackAndContinuesBitForBit() throws {
        let reports = try ProbeRuns.shared().two
        for (name, _) in Self.parameters {
            let continued = reports[0].values("whole-tensor/checkpoint/continued/\(name)")
            try #require(!continued.isEmpty)
            #expect(reports[1].values("whole-tensor/checkpoint/continued/\(name)") == continued, "\(name)")
            for place in ["sharded", "from-one"] {
                for (rank, report) in reports.enumerated() {
                    #expect(report.values("whole-tensor/checkpoint/\(place)/\(name)") == continued, "\(name) resumed \(place), rank \(rank)")
                }
            }
            #expect(reports[0].values("whole-tensor/checkpoint/single/\(name)") == continued, "\(name) resumed in one process")
            #expect(reports[0].number("whole-tensor/checkpoint/loaded/\(name)/step") == 4, "\(name)")
        }
        // One process loaded the whole state of the parameters owned whole, factored slots in their shapes.
        #expect(reports[0].values("whole-tensor/checkpoint/loaded/f/slot/row_var").count == 5)
        #expect(reports[0].values("whole-tensor/checkpoint/loaded/f/slot/col_var").count == 7)
        #expect(reports[0].values("whole-tensor/checkpoint/loaded/w2/slot/momentum_buffer").count == 15)
        let header = try #require(try JSONSerialization.jsonObject(with: Data(reports[0].text("whole-tensor/checkpoint/header").utf8))
            as? [String: Any])
        func shape(_ tensor: String) -> [Int]? { (header[tensor] as? [String: Any])?["shape"] as? [Int] }
        #expect(shape("state/f/row_var") == [5, 1] && shape("state/f/col_var") == [1, 7])
        #expect(shape("state/w1/momentum_buffer") == [6, 4] && shape("state/g/variance") == [9])
    }

    @Test func ranksThatDisagreeOnAChoiceAreRefusedNamingIt() throws {
        let reports = try ProbeRuns.shared().two
        let atBuild = "the ranks disagree on the choices of group 0: rank 0 has adjust_lr_fn=match_rms_adamw, ns_dtype=parameter, rank 1 has adjust_lr_fn=original, ns_dtype=parameter"
        let atStep = "the ranks' options differ: choice \"adjust_lr_fn\" in group 0 is match_rms_adamw on rank 0 but spectral_unclamped on rank 1"
        for (rank, report) in reports.enumerated() {
            #expect(report.text("whole-tensor/choice-at-build").contains(atBuild), "rank \(rank): \(report.text("whole-tensor/choice-at-build"))")
            #expect(report.text("whole-tensor/choice-at-step").contains(atStep), "rank \(rank): \(report.text("whole-tensor/choice-at-step"))")
            #expect(report.number("whole-tensor/choice-at-step/unchanged") == 1)
        }
    }
}
