// billnet-client's commands (docs/client.md): classify, stream, info, labels,
// models list|load|activate|unload, against a billnet-server over gRPC.
#ifndef BILLNET_CLIENT_CLIENT_H_
#define BILLNET_CLIENT_CLIENT_H_

#include <ostream>
#include <string>
#include <vector>

namespace billnet::client {

// Exit codes of RunClient (and of the binary).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // the server refused the call, bad input
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // no server at the address (or deadline)
inline constexpr int kExitNotFound = 4;     // missing file, unknown model

// Runs one command line (args without the program name, e.g. {"--server",
// "127.0.0.1:50051", "classify", "a.mp4", "--json"}). Results go to `out`,
// messages to `err`. Returns the exit code.
int RunClient(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace billnet::client

#endif  // BILLNET_CLIENT_CLIENT_H_
