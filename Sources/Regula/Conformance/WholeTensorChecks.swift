import Dispatch
import Foundation

/// The checks whose meaning changes for a whole-tensor rule, which sees each parameter whole: its threads are
/// several parameters stepped at once, and "outside the block" is outside the parameter.
extension Conformance {
    /// Parameters stepped together by the thread check.
    static let wholeTensorParameters = 4

    /// Several parameters of the subject's shape stepped one after another with the BLAS on 1 thread, then with
    /// the BLAS on every core (as the host runs a lone parameter), then on 2 and 4 threads at once with the BLAS
    /// on 1 (as the host shares parameters out): every parameter's bits must agree in all four.
    ///
    /// The BLAS's thread count changes anything only for products large enough that OpenBLAS splits them; the
    /// harness's 24 × 40 matrix is not, a `--shape` of a few hundred rows is.
    static func wholeTensorThreads(_ subject: Subject, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        let cores = max(2, ProcessInfo.processInfo.activeProcessorCount)
        defer { HostServices.preferBLASThreads(cores) }
        let reference = together(subject, dtype, values, lanes: 1, blasThreads: 1)
        for (lanes, blasThreads) in [(1, cores), (2, 1), (4, 1)] {
            let other = together(subject, dtype, values, lanes: lanes, blasThreads: blasThreads)
            for (index, (a, b)) in zip(reference, other).enumerated() {
                guard let difference = compareBits(a, b) else { continue }
                let how = lanes == 1 ? "stepped one after another with the BLAS on \(blasThreads) threads"
                                     : "stepped \(lanes) at once"
                return (false, "parameter \(index + 1) of \(reference.count) differs when \(how): \(difference)")
            }
        }
        return (true, "\(reference.count) parameters of shape \(text(subject.shape)) agree stepped one after another "
                    + "(BLAS on 1 and \(cores) threads) and 2 and 4 at once (BLAS on 1)")
    }

    /// ``wholeTensorParameters`` trajectories from their own seeds, each step of every parameter spread over
    /// `lanes` threads, with each BLAS call on `blasThreads` threads.
    static func together(_ subject: Subject, _ dtype: DType, _ values: [Double], lanes: Int, blasThreads: Int) -> [Outcome] {
        HostServices.preferBLASThreads(blasThreads)
        let workspaces = (0..<wholeTensorParameters).map { _ in
            RuleWorkspace(rule: subject.rule, dtype: dtype, shape: subject.shape, values: values)
        }
        var generators = (0..<wholeTensorParameters).map { SplitMix(seed: UInt64($0) + 1) }
        let count = subject.count
        for (index, workspace) in workspaces.enumerated() {
            workspace.fill(workspace.param, with: (0..<count).map { _ in generators[index].value(in: 2) })
        }
        let failures = FailureList()
        for _ in 0..<steps {
            for (index, workspace) in workspaces.enumerated() {
                workspace.fill(workspace.gradient, with: (0..<count).map { _ in generators[index].value(in: 1) })
            }
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                for index in stride(from: lane, to: workspaces.count, by: lanes) {
                    if let failure = workspaces[index].step(hyperparameters: values, blockLengths: [count]) {
                        failures.append(failure)
                    }
                }
            }
        }
        return workspaces.map { Outcome(workspace: $0, failure: failures.first) }
    }

    /// One step of the parameter with as many elements again on either side of each of its buffers: every
    /// element around it must keep its bits.
    static func writesInsideParameter(_ subject: Subject, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        let count = subject.count
        let workspace = RuleWorkspace(rule: subject.rule, dtype: dtype, shape: subject.shape, margin: count, values: values)
        var random = SplitMix(seed: 7)
        for (_, memory, length) in workspace.buffers {
            workspace.fill(memory, with: (0..<(length + 2 * count)).map { _ in random.value(in: 1) }, from: -count)
        }
        let around = { (memory: UnsafeMutableRawPointer, length: Int) in
            (workspace.read(memory, from: -count, length: count) + workspace.read(memory, from: length, length: count)).map(\.bitPattern)
        }
        let before = workspace.buffers.map { around($0.memory, $0.length) }
        if let failure = workspace.step(hyperparameters: values, blockLengths: [count]) { return (false, failure) }
        for ((name, memory, length), old) in zip(workspace.buffers, before) {
            let new = around(memory, length)
            guard let changed = old.indices.first(where: { old[$0] != new[$0] }) else { continue }
            let index = changed < count ? changed - count : changed - count + length
            let whose = length == count ? "the parameter's" : "the slot's"
            return (false, "\(name)[\(index)] changed, outside \(whose) \(length) elements (0..<\(length))")
        }
        return (true, "the elements before and after the parameter's buffers kept their bits")
    }
}
