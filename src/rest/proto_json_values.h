// Single values as protobuf 3.21's MessageToJsonString writes them
// (JsonObjectWriter, json_escaping.cc, FormatTime), for the direct JSON
// writer (proto_json.h): integers, floats, strings, bytes and Timestamps,
// appended to a JsonBuffer. The functions that return bool return false,
// having kept nothing, for a value protobuf writes some other way.

#ifndef FILEMESH_SRC_REST_PROTO_JSON_VALUES_H_
#define FILEMESH_SRC_REST_PROTO_JSON_VALUES_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace filemesh::internal {

// Bytes written through raw pointers: room is made ahead (by doubling,
// without the zero-filling a std::string would do), then the bytes are
// copied out once.
class JsonBuffer {
 public:
  JsonBuffer() = default;
  ~JsonBuffer() { std::free(data_); }
  JsonBuffer(const JsonBuffer&) = delete;
  JsonBuffer& operator=(const JsonBuffer&) = delete;

  // Room for `n` more bytes, at the returned pointer; Commit keeps them.
  char* Reserve(size_t n) {
    if (capacity_ - size_ < n) Grow(n);
    return data_ + size_;
  }
  // Keeps what was written up to `end` (a pointer from the last Reserve).
  void Commit(const char* end) { size_ = static_cast<size_t>(end - data_); }
  void Append(std::string_view text) {
    std::memcpy(Reserve(text.size()), text.data(), text.size());
    size_ += text.size();
  }
  void Push(char c) {
    *Reserve(1) = c;
    ++size_;
  }
  // The bytes kept so far.
  std::string_view view() const { return {data_, size_}; }

 private:
  void Grow(size_t n);  // throws std::bad_alloc when memory runs out

  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Integers: 32-bit ones as JSON numbers, 64-bit ones as JSON strings.
void AppendProtoJsonInt(int32_t value, JsonBuffer* out);
void AppendProtoJsonInt(uint32_t value, JsonBuffer* out);
void AppendProtoJsonInt(int64_t value, JsonBuffer* out);
void AppendProtoJsonInt(uint64_t value, JsonBuffer* out);

// %.15g, or %.17g when that does not read back exactly; "NaN", "Infinity"
// and "-Infinity" as strings. False only if no "C" locale can be made.
bool AppendProtoJsonDouble(double value, JsonBuffer* out);
// %.6g, or %.9g when that does not read back exactly through strtof
// without a range error; non-finite values as for doubles.
bool AppendProtoJsonFloat(float value, JsonBuffer* out);

// A JSON string: `"`, `\`, controls, DEL, `<`, `>`, C1 controls and some
// invisible format characters (U+2028, U+FEFF, ...) escaped, the rest
// copied. False when `text` is not well-formed UTF-8 (protobuf drops bad
// bytes in its own lenient way).
bool AppendProtoJsonString(std::string_view text, JsonBuffer* out);

// Standard base64 with padding, as a JSON string.
void AppendProtoJsonBytes(std::string_view bytes, JsonBuffer* out);

// RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits, as a JSON string.
// False outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z,
// where protobuf fails.
bool AppendProtoJsonTimestamp(int64_t seconds, int32_t nanos, JsonBuffer* out);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_PROTO_JSON_VALUES_H_
