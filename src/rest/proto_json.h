// protobuf's JSON mapping of a message, written straight from the message
// through reflection. protobuf 3.21's MessageToJsonString serializes the
// message to binary and re-reads it through a TypeResolver, which costs
// about a hundred times the binary serialization; this writer produces the
// same bytes for the shapes it supports and declines the rest.

#ifndef FILEMESH_SRC_REST_PROTO_JSON_H_
#define FILEMESH_SRC_REST_PROTO_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace filemesh::internal {

// Appends `message` to `out` exactly as MessageToJsonString writes it with
// preserve_proto_field_names and always_print_primitive_fields, and returns
// true. Returns false, `out` unchanged, when the message is outside what
// this writer reproduces: a type (or a type reachable from it) that is not
// proto3, has maps, oneofs, proto3 `optional` fields, aliased enums or
// well-known types other than google.protobuf.Timestamp; or a value protobuf
// prints oddly or refuses: an unknown enum number, a string that is not
// well-formed UTF-8, a Timestamp out of range, nesting deeper than 32.
// Thread-safe.
bool AppendProtoJson(const google::protobuf::Message& message, std::string* out);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_PROTO_JSON_H_
