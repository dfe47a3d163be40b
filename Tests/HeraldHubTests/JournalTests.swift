// The journal on real files, each test in a fresh temporary directory: a new directory's
// epoch, recovery in order, a torn end cut off, damage elsewhere and gaps refused, rotation
// with snapshots, and a missing epoch file named in the error.
import Foundation
import HeraldProtocol
import Logging
import Testing

@testable import HeraldHub

/// Runs `body` with a new empty directory, removed afterwards.
private func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    var template = Array((NSTemporaryDirectory() + "/herald-journal-XXXXXX").utf8CString)
    let path = try template.withUnsafeMutableBufferPointer { pointer -> String in
        guard let result = mkdtemp(pointer.baseAddress!) else { throw POSIXError(.EIO) }
        return String(cString: result)
    }
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

private let logger = Logger(label: "test")

/// A record of `kind` at `sequence` on channel "c".
private func record(_ sequence: UInt64, _ kind: RecordKind = .message, data: String? = nil) -> JournalRecord {
    JournalRecord(kind: kind, event: hubEvent(sequence, "c", data: data ?? "event \(sequence)"))
}

/// Opens `directory`, appends `records`, and closes the journal again.
@discardableResult
private func openAndAppend(_ directory: String, _ records: [JournalRecord]) throws -> RecoveredJournal {
    let (journal, recovered) = try Journal.open(directory: directory, logger: logger)
    for record in records { try journal.append(record) }
    return recovered
}

private func files(in directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
}

private func contents(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

private func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite("Journal")
struct JournalTests {
    @Test("a new directory gets an epoch file and is reported as created")
    func newDirectory() throws {
        try withTemporaryDirectory { parent in
            let directory = parent + "/data"
            let (journal, recovered) = try Journal.open(directory: directory, logger: logger)
            #expect(recovered.created)
            #expect(recovered.snapshot == nil)
            #expect(recovered.records.isEmpty)
            #expect(journal.segment == 1)
            #expect(journal.segmentBytes == 0)
            let epochText = String(decoding: try contents(directory + "/epoch"), as: UTF8.self)
            #expect(epochText == recovered.epoch.rawValue + "\n")
            #expect(recovered.epoch.rawValue.count == 10)
            #expect(try files(in: directory) == ["epoch", "journal-00000001.log"])
        }
    }

    @Test("recovers appended records in order with the same epoch, starting a new segment each time")
    func reopenRecovers() throws {
        try withTemporaryDirectory { directory in
            let first = try openAndAppend(
                directory, [record(1, .merge, data: "{\"a\":1}"), record(2), record(3, .set)])
            let (journal, second) = try Journal.open(directory: directory, logger: logger)
            #expect(!second.created)
            #expect(second.epoch == first.epoch)
            #expect(second.records == [record(1, .merge, data: "{\"a\":1}"), record(2), record(3, .set)])
            #expect(journal.segment == 2)
            try journal.append(record(4))
            #expect(journal.segmentBytes == recordBytes(record(4)).count)
            let third = try openAndAppend(directory, [])
            #expect(third.records.map(\.event.sequence) == [1, 2, 3, 4])
            #expect(
                try files(in: directory) == [
                    "epoch", "journal-00000001.log", "journal-00000002.log", "journal-00000003.log",
                ])
        }
    }

    @Test("writes each record's codec bytes to the segment")
    func segmentBytes() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1), record(2)])
            #expect(
                try contents(Journal.segmentPath(directory, 1)) == recordBytes(record(1)) + recordBytes(record(2)))
        }
    }

    @Test("cuts a torn last record off the last segment and recovers the rest", arguments: [1, 5, 8, 20])
    func tornEndIsCut(_ missing: Int) throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1), record(2), record(3)])
            let path = Journal.segmentPath(directory, 1)
            let whole = try contents(path)
            try write(Array(whole.dropLast(missing)), to: path)

            let (journal, recovered) = try Journal.open(directory: directory, logger: logger)
            #expect(recovered.records == [record(1), record(2)])
            #expect(try contents(path) == recordBytes(record(1)) + recordBytes(record(2)))
            try journal.append(record(3))
            let again = try openAndAppend(directory, [])
            #expect(again.records == [record(1), record(2), record(3)])
        }
    }

    @Test("cuts a last record with a flipped byte, and garbage after the last record")
    func damagedEndIsCut() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1), record(2)])
            let path = Journal.segmentPath(directory, 1)
            var bytes = try contents(path)
            bytes[bytes.count - 3] ^= 0x40
            try write(bytes, to: path)
            #expect(try openAndAppend(directory, []).records == [record(1)])
        }
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1)])
            let path = Journal.segmentPath(directory, 1)
            try write(try contents(path) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], to: path)
            #expect(try openAndAppend(directory, []).records == [record(1)])
            #expect(try contents(path) == recordBytes(record(1)))
        }
    }

    @Test("refuses damage followed by whole records in the last segment instead of cutting them off")
    func damageBeforeTheEndOfTheLastSegment() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1), record(2), record(3)])
            let path = Journal.segmentPath(directory, 1)
            var bytes = try contents(path)
            let secondStart = recordBytes(record(1)).count
            bytes[secondStart + 12] ^= 0x01  // inside record 2's body; record 3 follows intact
            try write(bytes, to: path)
            let error = #expect(throws: JournalError.self) {
                try Journal.open(directory: directory, logger: logger)
            }
            #expect(error?.description.hasPrefix("\(path) is damaged at byte \(secondStart)") == true)
            // Nothing was cut: the operator can still rescue records 2 and 3.
            #expect(try contents(path) == bytes)
        }
    }

    @Test("refuses damage in a segment that is not the last, naming the file and the offset")
    func damageInEarlierSegment() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1), record(2)])
            try openAndAppend(directory, [record(3)])
            let path = Journal.segmentPath(directory, 1)
            var bytes = try contents(path)
            bytes[bytes.count - 1] ^= 0x01
            try write(bytes, to: path)
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            let offset = recordBytes(record(1)).count
            #expect(error?.description == "\(path) is damaged at byte \(offset) and is not the last segment")
            #expect(try contents(path) == bytes)  // left as it was for the operator
        }
    }

    @Test("refuses a gap in the sequence")
    func sequenceGap() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1), record(3)])
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            #expect(error?.description == "\(Journal.segmentPath(directory, 1)): sequence jumps from 1 to 3")
        }
    }

    @Test("refuses a journal that does not start at sequence 1")
    func missingStart() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(2)])
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            #expect(error?.description == "\(Journal.segmentPath(directory, 1)): sequence jumps from 0 to 2")
        }
    }

    @Test("after a rotation and a snapshot, old segments are gone and a reopen gives the snapshot and what follows")
    func rotateAndSnapshot() throws {
        try withTemporaryDirectory { directory in
            let (journal, created) = try Journal.open(directory: directory, logger: logger)
            try journal.append(record(1, .merge, data: "{\"a\":1}"))
            try journal.append(record(2))
            let closed = try journal.rotate(sync: true)
            #expect(closed == 1)
            #expect(journal.segment == 2)
            #expect(journal.segmentBytes == 0)
            try journal.append(record(3))
            let snapshot = JournalSnapshot(
                epoch: created.epoch.rawValue, sequence: 2, lastDropped: 0,
                channels: [.init(name: "c", state: "{\"a\":1}", visibleSequence: 2, lastDropped: 0)],
                history: [record(1, .merge, data: "{\"a\":1}").event, record(2).event])
            try Journal.writeSnapshot(snapshot, directory: directory, closedSegment: closed)
            #expect(try files(in: directory) == ["epoch", "journal-00000002.log", "snapshot.bin"])

            let (reopened, recovered) = try Journal.open(directory: directory, logger: logger)
            #expect(recovered.epoch == created.epoch)
            #expect(recovered.snapshot?.sequence == 2)
            #expect(recovered.snapshot?.channels.map(\.state) == ["{\"a\":1}"])
            #expect(recovered.snapshot?.history.map(\.sequence) == [1, 2])
            #expect(recovered.records == [record(3)])
            #expect(reopened.segment == 3)
        }
    }

    @Test("skips records a snapshot already holds when their segment is still there")
    func snapshotOverlap() throws {
        try withTemporaryDirectory { directory in
            let created = try openAndAppend(directory, [record(1), record(2), record(3)])
            let snapshot = JournalSnapshot(
                epoch: created.epoch.rawValue, sequence: 2, lastDropped: 0, channels: [], history: [])
            try Journal.writeSnapshot(snapshot, directory: directory, closedSegment: 0)
            let recovered = try openAndAppend(directory, [])
            #expect(recovered.snapshot?.sequence == 2)
            #expect(recovered.records == [record(3)])
        }
    }

    @Test("refuses a snapshot of another epoch")
    func snapshotOfOtherEpoch() throws {
        try withTemporaryDirectory { directory in
            let created = try openAndAppend(directory, [])
            let snapshot = JournalSnapshot(epoch: "other", sequence: 0, lastDropped: 0, channels: [], history: [])
            try Journal.writeSnapshot(snapshot, directory: directory, closedSegment: 0)
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            #expect(
                error?.description
                    == "snapshot.bin belongs to epoch other, not \(created.epoch): the directory is mixed up")
        }
    }

    @Test("refuses to make a new epoch when the epoch file is missing but segments exist")
    func missingEpochFile() throws {
        try withTemporaryDirectory { directory in
            try openAndAppend(directory, [record(1)])
            try FileManager.default.removeItem(atPath: directory + "/epoch")
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            #expect(
                error?.description
                    == "\(directory)/epoch is missing but the journal is not empty: restore the file or move the directory away"
            )
            #expect(try files(in: directory) == ["journal-00000001.log"])  // nothing created
        }
    }

    @Test("refuses to make a new epoch when the epoch file is missing but a snapshot exists")
    func missingEpochFileWithSnapshot() throws {
        try withTemporaryDirectory { directory in
            let created = try openAndAppend(directory, [record(1)])
            let snapshot = JournalSnapshot(
                epoch: created.epoch.rawValue, sequence: 1, lastDropped: 0, channels: [], history: [])
            try Journal.writeSnapshot(snapshot, directory: directory, closedSegment: 1)
            try FileManager.default.removeItem(atPath: directory + "/epoch")
            #expect(try files(in: directory) == ["snapshot.bin"])
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            #expect(error?.description.hasPrefix("\(directory)/epoch is missing but the journal is not empty") == true)
        }
    }

    @Test("refuses an epoch file that does not hold an epoch")
    func badEpochFile() throws {
        try withTemporaryDirectory { directory in
            try write(Array("Not An Epoch\n".utf8), to: directory + "/epoch")
            let error = #expect(throws: JournalError.self) { try Journal.open(directory: directory, logger: logger) }
            #expect(error?.description == "\(directory)/epoch does not hold an epoch (1-16 characters of 0-9 a-z)")
        }
    }

    @Test("reads an epoch file written by hand, with surrounding whitespace")
    func handWrittenEpoch() throws {
        try withTemporaryDirectory { directory in
            try write(Array("  abc123\n\n".utf8), to: directory + "/epoch")
            let recovered = try openAndAppend(directory, [])
            #expect(!recovered.created)
            #expect(recovered.epoch == Epoch("abc123"))
        }
    }

    @Test("names segments with eight digits")
    func segmentNames() {
        #expect(Journal.segmentPath("/d", 1) == "/d/journal-00000001.log")
        #expect(Journal.segmentPath("/d", 123_456_789) == "/d/journal-123456789.log")
    }
}
