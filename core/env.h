// Every KILN_* environment knob is declared once in env.cc with its default and help text;
// `kiln env` prints the table. Reading an undeclared knob is a programming error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::env {

struct Knob {
  const char* name;
  const char* default_value;
  const char* help;
};

const std::vector<Knob>& knobs();
// The value of a declared knob, or its default when unset or empty.
std::string get(const char* name);
int64_t get_int(const char* name);
double get_double(const char* name);
bool is_set(const char* name);

}  // namespace kiln::env
