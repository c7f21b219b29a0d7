// The project's exception type: every message names the thing that is wrong.
#pragma once
#include <stdexcept>
#include <string>

namespace repa {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown for inputs a user can fix (config, files, weights); callers map it to a clear message and exit 2.
class InputError : public Error {
 public:
  using Error::Error;
};

}  // namespace repa
