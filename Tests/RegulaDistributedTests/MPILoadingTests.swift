import Foundation
import RegulaTestSupport
import Testing

/// Open MPI is loaded when `--distributed` first asks for it, from REGULA_MPI_LIBRARY when that is set: a
/// file that is not Open MPI's libmpi is refused in words that name it, and a run without `--distributed`
/// never loads it. None of this needs mpirun: the refusal comes before MPI would start.
struct MPILoadingTests {
    @Test(arguments: [["train", "--epochs", "2", "--distributed", "sharded"],
                      ["bench", "--distributed", "replicated", "--elements", "1000", "--steps", "1"]])
    func aFileThatIsNotASharedObjectIsRefusedByName(command: [String]) throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write("not a shared object\n", to: "libmpi.so.40")
        let output = try regula(command, environment: ["REGULA_MPI_LIBRARY": file.path])
        #expect(output.status == 1, "\(output.standardError)")
        #expect(output.standardError.hasPrefix("error: cannot load Open MPI from REGULA_MPI_LIBRARY=\(file.path): \(file.path): "),
                "\(output.standardError)")
        #expect(output.standardError.hasSuffix("; name Open MPI's libmpi there, or unset it to load the system's\n"))
        #expect(output.standardOutput.isEmpty, "\(output.standardOutput)")
    }

    @Test func aSharedObjectThatIsNotLibmpiIsRefusedByName() throws {
        let other = TestPaths.binDirectory.appendingPathComponent("libRegulaRuleSGD.so").path
        let output = try regula(["train", "--epochs", "2", "--distributed", "replicated"],
                                environment: ["REGULA_MPI_LIBRARY": other])
        #expect(output.status == 1, "\(output.standardError)")
        #expect(output.standardError == "error: \(other) is not Open MPI's libmpi: it has no symbol MPI_Initialized; install "
                + "Open MPI (Debian or Ubuntu: apt-get install openmpi-bin), or name its libmpi in REGULA_MPI_LIBRARY\n")
    }

    @Test func trainingInOneProcessNeverLoadsOpenMPI() throws {
        let output = try regula(["train", "--epochs", "2"], environment: ["REGULA_MPI_LIBRARY": "/nonexistent/libmpi.so.40"])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardOutput.contains("exactly-zero weights"))
    }
}
