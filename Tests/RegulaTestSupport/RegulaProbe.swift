import Regula

/// The probe the `regula` tool uses (`regula probe --`), for tests that load plugin files in-process through
/// a ``PluginProbe``.
public func regulaProbe(timeout: Double = 10) -> PluginProbe {
    PluginProbe(executable: TestPaths.regula.path, arguments: ["probe", "--"], timeout: timeout)
}
