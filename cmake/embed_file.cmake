# cmake -DINPUT=file -DOUTPUT=file.cpp -DFUNCTION=name -P embed_file.cmake
# Writes a C++ source whose function returns the input file's bytes.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by cmake/embed_file.cmake; do not edit.\n"
  "#include \"dashboard_page.hpp\"\n"
  "namespace perpetuo {\n"
  "namespace { const char kBytes[] = {${bytes} 0}; }\n"
  "std::string_view ${FUNCTION}() { return {kBytes, sizeof(kBytes) - 1}; }\n"
  "}  // namespace perpetuo\n")
