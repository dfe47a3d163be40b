// Starting a long-lived child (deploy/run) the way a shell would: with no signals blocked and
// default dispositions. Foundation's Process passes on the test runner's signal mask, in which
// SIGTERM is blocked, and a deploy/run started that way can never be stopped.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`, its standard output on a pipe.
struct ChildProcess: Sendable {
    let pid: pid_t
    /// Read end of the child's standard output.
    let output: Int32

    /// Starts `path` with `arguments` and `environment`; standard error is appended to `errorLog`.
    static func spawn(_ path: String, arguments: [String], environment: [String: String], errorLog: String) throws
        -> ChildProcess
    {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw LiveStackError("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        posix_spawn_file_actions_addopen(&actions, 2, errorLog, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(pipeFDs[1])
        guard result == 0 else {
            close(pipeFDs[0])
            throw LiveStackError("posix_spawn \(path): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid, output: pipeFDs[0])
    }

    /// Reads standard output on a dedicated thread until a line contains `marker` (true) or the
    /// output ends (false).
    func waitForOutput(containing marker: String) async -> Bool {
        let fd = output
        return await withCheckedContinuation { continuation in
            Thread {
                var collected: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count <= 0 {
                        continuation.resume(returning: false)
                        return
                    }
                    collected += buffer[0..<count]
                    if String(decoding: collected, as: UTF8.self).contains(marker) {
                        continuation.resume(returning: true)
                        return
                    }
                }
            }.start()
        }
    }

    /// Sends SIGTERM and waits for the exit; SIGKILL after `grace` seconds.
    func stop(grace: Double = 20) async {
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        close(output)
    }
}
