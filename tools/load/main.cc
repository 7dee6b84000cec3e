#include <iostream>

#include "load.h"

int main(int argc, char** argv) {
  return billnet::load::RunLoad(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                std::cerr);
}
