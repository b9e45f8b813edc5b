import ArgumentParser
import Foundation
import Regula

/// `regula install --prefix DIR`: puts the built-in rules, the C header, a pkg-config file and `regula` itself
/// where programs and plugin authors find them without a Regula checkout.
struct InstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install the built-in rules, regula.h, a pkg-config file and regula under a prefix.",
        discussion: """
            Layout: PREFIX/lib/regula/ (the rules: libRegulaRule*.so, and the examples libRegulaExample*.so), \
            PREFIX/include/regula/regula.h, PREFIX/lib/pkgconfig/regula.pc, PREFIX/bin/regula and \
            PREFIX/share/regula/ (the data regula train uses). A program in PREFIX/bin finds the rules in \
            PREFIX/lib/regula, wherever PREFIX is; any program finds them in ~/.local/lib/regula, \
            /usr/local/lib/regula or /usr/lib/regula. The rules are compiled for this machine's processor \
            (-march=native): install on each machine from its own build. Every file is written beside its \
            destination first and renamed into place only when all were written, so a failed install \
            leaves the prefix as it was.
            """)

    @Option(help: ArgumentHelp("Where to install (for example ~/.local, or /usr/local as root).", valueName: "dir"))
    var prefix = "/usr/local"

    @Flag(name: .customLong("dry-run"), help: "Print what would be installed and change nothing.")
    var dryRun = false

    func run() throws {
        try failingClearly {
            let plan = try InstallPlan(prefix: URL(fileURLWithPath: prefix).standardizedFileURL)
            if dryRun {
                for item in plan.items { print("would install \(item.destination.path)") }
                return
            }
            for path in try plan.install() { print("installed \(path)") }
            print("C plugin authors: PKG_CONFIG_PATH=\(plan.pkgConfigFolder.path) pkg-config --cflags regula")
        }
    }
}
