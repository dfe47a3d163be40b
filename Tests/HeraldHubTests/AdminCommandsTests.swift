// The admin command table against the catalog both the hub and heraldctl read: one handler
// per catalog entry, in its order, and `help` generated from it.
import HeraldProtocol
import Testing

@testable import HeraldHub

@Suite("Admin commands")
struct AdminCommandsTests {
    @Test("the hub binds exactly the catalog's commands, in the catalog's order")
    func tableFollowsCatalog() {
        #expect(AdminCommands.table.map(\.spec) == AdminCatalog.all)
    }

    @Test("help lists every command with its usage and summary")
    func help() {
        #expect(AdminCommands.helpLines.count == AdminCatalog.all.count)
        #expect(
            AdminCommands.helpLines.first
                == "publish CHANNEL DATA [--event NAME] [--merge] [--key KEY]  —  " + AdminCatalog.publish.summary)
        #expect(AdminCommands.helpLines.last == "help  —  list the commands")
    }
}
