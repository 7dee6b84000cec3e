#include <iostream>

#include "billnet/client/client.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return billnet::client::RunClient(args, std::cout, std::cerr);
}
