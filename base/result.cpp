#include "base/result.h"

#include <cstring>

namespace usherd {

std::string Error::to_string() const {
  if (code == 0) return message;
  return message + ": " + std::strerror(code);
}

}  // namespace usherd
