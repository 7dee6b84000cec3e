// billnet-server: see docs/server.md.
#include "app/config.h"

int main(int argc, char** argv) {
  billnet::server::ServerConfig config;
  const int code = billnet::server::ParseCommandLine(argc, argv, &config);
  if (code >= 0) return code;
  return billnet::server::RunServer(config);
}
