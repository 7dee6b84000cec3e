// Helpers shared by the client tests: a repository with the tiny model, a clip
// written to a file, and RunClient with its output captured.
#ifndef BILLNET_TESTS_CLIENT_CLIENT_TEST_UTIL_H_
#define BILLNET_TESTS_CLIENT_CLIENT_TEST_UTIL_H_

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "billnet/client/client.h"
#include "grpc_test_util.h"

namespace billnet::client::testing {

inline std::string Repo(const std::string& name) {
  const std::string repo = server::testing::TempDir(name);
  server::testing::WriteTinyVersion(repo, "tiny", 1, 1);
  return repo;
}

inline std::string WriteClip(const std::string& dir, const std::string& name,
                             const std::vector<uint8_t>& bytes) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

struct Result {
  int code = -1;
  std::string out, err;
};

inline Result Client(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Result r;
  r.code = RunClient(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace billnet::client::testing

#endif  // BILLNET_TESTS_CLIENT_CLIENT_TEST_UTIL_H_
