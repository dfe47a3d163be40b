// The parent of every live suite: they start real processes on a 2-core machine, so they run
// one at a time (their tests are serialized too), never in parallel with each other.
import Testing

@Suite("Live", .serialized)
enum LiveSuites {}
