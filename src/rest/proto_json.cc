#include "rest/proto_json.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "filemesh/internal/mutex.hpp"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "rest/proto_json_values.h"

namespace filemesh::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// protobuf's object source refuses messages nested 64 deep; well below
// that, only recursive types get here, and they go to protobuf.
constexpr int kMaxDepth = 32;

constexpr std::string_view kTimestampType = "google.protobuf.Timestamp";

enum class Kind : uint8_t {
  kInt32,
  kUint32,
  kInt64,
  kUint64,
  kDouble,
  kFloat,
  kBool,
  kEnum,
  kString,
  kBytes,
  kMessage,
  kTimestamp,
};

struct MessagePlan;

struct FieldPlan {
  const FieldDescriptor* field = nullptr;
  std::string key;  // ,"name":  (without the comma for a first member)
  Kind kind = Kind::kInt32;
  const MessagePlan* message = nullptr;  // kMessage: the field's type
  // kEnum: value names by number, for numbers 0 to 255 (nullptr: none).
  std::vector<const std::string*> enum_names;
  // kTimestamp: google.protobuf.Timestamp's fields.
  const FieldDescriptor* seconds = nullptr;
  const FieldDescriptor* nanos = nullptr;
};

// How one message type prints. protobuf 3.21 (DefaultValueObjectWriter)
// first lays out a node per field in declaration order, then fills them
// from the binary encoding, in field-number order. A set Timestamp arrives
// as a string while its node expects an object, so it is appended as a new
// node: set singular Timestamps print after every other field, by number.
struct MessagePlan {
  std::vector<FieldPlan> fields;      // declaration order, singular Timestamps left out
  std::vector<FieldPlan> timestamps;  // singular Timestamps, by field number
};

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool IsTimestamp(const Descriptor* type) { return type->full_name() == kTimestampType; }

// Whether `type`'s own fields are all supported (its message fields' types
// are checked separately).
bool SupportedType(const Descriptor* type) {
  if (type->file()->syntax() != google::protobuf::FileDescriptor::SYNTAX_PROTO3) return false;
  // Well-known types have their own JSON forms; Timestamp is handled as a value.
  if (StartsWith(type->full_name(), "google.protobuf.")) return false;
  // Oneofs, including the synthetic ones of proto3 `optional` fields.
  if (type->oneof_decl_count() != 0 || type->extension_range_count() != 0) return false;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (field->is_map() || field->type() == FieldDescriptor::TYPE_GROUP ||
        field->containing_oneof() != nullptr) {
      return false;
    }
    if (field->type() == FieldDescriptor::TYPE_ENUM) {
      const google::protobuf::EnumDescriptor* values = field->enum_type();
      // protobuf prints an unset enum as its first value's name.
      if (values->options().allow_alias() || values->value_count() == 0 ||
          values->value(0)->number() != 0) {
        return false;
      }
    }
  }
  return true;
}

Kind KindOf(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return Kind::kInt32;
    case FieldDescriptor::CPPTYPE_UINT32:
      return Kind::kUint32;
    case FieldDescriptor::CPPTYPE_INT64:
      return Kind::kInt64;
    case FieldDescriptor::CPPTYPE_UINT64:
      return Kind::kUint64;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return Kind::kDouble;
    case FieldDescriptor::CPPTYPE_FLOAT:
      return Kind::kFloat;
    case FieldDescriptor::CPPTYPE_BOOL:
      return Kind::kBool;
    case FieldDescriptor::CPPTYPE_ENUM:
      return Kind::kEnum;
    case FieldDescriptor::CPPTYPE_STRING:
      return field->type() == FieldDescriptor::TYPE_BYTES ? Kind::kBytes : Kind::kString;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return IsTimestamp(field->message_type()) ? Kind::kTimestamp : Kind::kMessage;
  }
  return Kind::kMessage;
}

// Plans of every type asked for, built once per type; nullptr for a type
// that is, or reaches, an unsupported one. Plans never change once built.
class PlanRegistry {
 public:
  const MessagePlan* Find(const Descriptor* type) {
    MutexLock lock(&mu_);
    const auto it = plans_.find(type);
    if (it != plans_.end()) return it->second.get();
    return Build(type);
  }

 private:
  const MessagePlan* Build(const Descriptor* root) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Every type reachable from `root` that has no plan yet.
    std::vector<const Descriptor*> fresh;
    std::unordered_set<const Descriptor*> seen = {root};
    std::vector<const Descriptor*> pending = {root};
    bool supported = true;
    while (!pending.empty() && supported) {
      const Descriptor* type = pending.back();
      pending.pop_back();
      const auto known = plans_.find(type);
      if (known != plans_.end()) {
        supported = known->second != nullptr;
        continue;
      }
      supported = SupportedType(type);
      fresh.push_back(type);
      for (int i = 0; supported && i < type->field_count(); ++i) {
        const Descriptor* nested = type->field(i)->message_type();
        if (nested != nullptr && !IsTimestamp(nested) && seen.insert(nested).second) {
          pending.push_back(nested);
        }
      }
    }
    if (!supported) {
      plans_[root] = nullptr;
      return nullptr;
    }
    for (const Descriptor* type : fresh) plans_[type] = std::make_unique<MessagePlan>();
    for (const Descriptor* type : fresh) Fill(type, plans_[type].get());
    return plans_[root].get();
  }

  void Fill(const Descriptor* type, MessagePlan* plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      FieldPlan field_plan;
      field_plan.field = field;
      field_plan.key = ",\"" + field->name() + "\":";
      field_plan.kind = KindOf(field);
      if (field_plan.kind == Kind::kMessage) {
        field_plan.message = plans_.at(field->message_type()).get();
      } else if (field_plan.kind == Kind::kTimestamp) {
        field_plan.seconds = field->message_type()->FindFieldByNumber(1);
        field_plan.nanos = field->message_type()->FindFieldByNumber(2);
      } else if (field_plan.kind == Kind::kEnum) {
        const google::protobuf::EnumDescriptor* values = field->enum_type();
        field_plan.enum_names.assign(256, nullptr);
        // Backwards, so the first of several values with a number wins, as
        // in FindValueByNumber (aliases are not supported anyway).
        for (int v = values->value_count() - 1; v >= 0; --v) {
          const int number = values->value(v)->number();
          if (number >= 0 && number < 256) {
            field_plan.enum_names[static_cast<size_t>(number)] = &values->value(v)->name();
          }
        }
      }
      if (field_plan.kind == Kind::kTimestamp && !field->is_repeated()) {
        plan->timestamps.push_back(std::move(field_plan));
      } else {
        plan->fields.push_back(std::move(field_plan));
      }
    }
    std::sort(plan->timestamps.begin(), plan->timestamps.end(),
              [](const FieldPlan& a, const FieldPlan& b) {
                return a.field->number() < b.field->number();
              });
  }

  Mutex mu_;
  std::unordered_map<const Descriptor*, std::unique_ptr<MessagePlan>> plans_ ABSL_GUARDED_BY(mu_);
};

PlanRegistry& Plans() {
  static auto* registry = new PlanRegistry;
  return *registry;
}

bool AppendEnum(const FieldPlan& plan, int number, JsonBuffer* out) {
  const std::string* name = nullptr;
  if (number >= 0 && static_cast<size_t>(number) < plan.enum_names.size()) {
    name = plan.enum_names[static_cast<size_t>(number)];
  } else if (const auto* value = plan.field->enum_type()->FindValueByNumber(number)) {
    name = &value->name();
  }
  // protobuf prints unknown numbers as numbers; left to it.
  if (name == nullptr) return false;
  out->Push('"');
  out->Append(*name);  // an identifier: nothing to escape
  out->Push('"');
  return true;
}

bool AppendTimestamp(const Message& timestamp, const FieldPlan& plan, JsonBuffer* out) {
  // The generated class (as good as always; it is final) is read without
  // reflection.
  if (typeid(timestamp) == typeid(google::protobuf::Timestamp)) {
    const auto& generated = static_cast<const google::protobuf::Timestamp&>(timestamp);
    return AppendProtoJsonTimestamp(generated.seconds(), generated.nanos(), out);
  }
  const Reflection* reflection = timestamp.GetReflection();
  return AppendProtoJsonTimestamp(reflection->GetInt64(timestamp, plan.seconds),
                                  reflection->GetInt32(timestamp, plan.nanos), out);
}

void AppendBool(bool value, JsonBuffer* out) { out->Append(value ? "true" : "false"); }

// Writes messages by their plans through reflection.
class Writer {
 public:
  explicit Writer(JsonBuffer* out) : out_(out) {}

  bool WriteMessage(const Message& message, const MessagePlan& plan, int depth) {
    if (depth > kMaxDepth) return false;
    const Reflection& reflection = *message.GetReflection();
    out_->Push('{');
    bool first = true;
    for (const FieldPlan& field : plan.fields) {
      if (field.field->is_repeated()) {
        Key(field, &first);
        if (!WriteList(message, reflection, field, depth)) return false;
      } else if (field.kind != Kind::kMessage || reflection.HasField(message, field.field)) {
        Key(field, &first);
        if (!WriteSingular(message, reflection, field, depth)) return false;
      }
    }
    for (const FieldPlan& field : plan.timestamps) {
      if (!reflection.HasField(message, field.field)) continue;
      Key(field, &first);
      if (!AppendTimestamp(reflection.GetMessage(message, field.field), field, out_)) return false;
    }
    out_->Push('}');
    return true;
  }

 private:
  void Key(const FieldPlan& field, bool* first) {
    out_->Append(std::string_view(field.key).substr(*first ? 1 : 0));
    *first = false;
  }

  bool WriteSingular(const Message& message, const Reflection& reflection, const FieldPlan& plan,
                     int depth) {
    const FieldDescriptor* field = plan.field;
    switch (plan.kind) {
      case Kind::kInt32:
        AppendProtoJsonInt(reflection.GetInt32(message, field), out_);
        return true;
      case Kind::kUint32:
        AppendProtoJsonInt(reflection.GetUInt32(message, field), out_);
        return true;
      case Kind::kInt64:
        AppendProtoJsonInt(reflection.GetInt64(message, field), out_);
        return true;
      case Kind::kUint64:
        AppendProtoJsonInt(reflection.GetUInt64(message, field), out_);
        return true;
      case Kind::kDouble:
        return AppendProtoJsonDouble(reflection.GetDouble(message, field), out_);
      case Kind::kFloat:
        return AppendProtoJsonFloat(reflection.GetFloat(message, field), out_);
      case Kind::kBool:
        AppendBool(reflection.GetBool(message, field), out_);
        return true;
      case Kind::kEnum:
        return AppendEnum(plan, reflection.GetEnumValue(message, field), out_);
      case Kind::kString:
        return AppendProtoJsonString(reflection.GetStringReference(message, field, &scratch_),
                                     out_);
      case Kind::kBytes:
        AppendProtoJsonBytes(reflection.GetStringReference(message, field, &scratch_), out_);
        return true;
      case Kind::kMessage:
        return WriteMessage(reflection.GetMessage(message, field), *plan.message, depth + 1);
      case Kind::kTimestamp:
        return AppendTimestamp(reflection.GetMessage(message, field), plan, out_);
    }
    return false;
  }

  bool WriteElement(const Message& message, const Reflection& reflection, const FieldPlan& plan,
                    int index, int depth) {
    const FieldDescriptor* field = plan.field;
    switch (plan.kind) {
      case Kind::kInt32:
        AppendProtoJsonInt(reflection.GetRepeatedInt32(message, field, index), out_);
        return true;
      case Kind::kUint32:
        AppendProtoJsonInt(reflection.GetRepeatedUInt32(message, field, index), out_);
        return true;
      case Kind::kInt64:
        AppendProtoJsonInt(reflection.GetRepeatedInt64(message, field, index), out_);
        return true;
      case Kind::kUint64:
        AppendProtoJsonInt(reflection.GetRepeatedUInt64(message, field, index), out_);
        return true;
      case Kind::kDouble:
        return AppendProtoJsonDouble(reflection.GetRepeatedDouble(message, field, index), out_);
      case Kind::kFloat:
        return AppendProtoJsonFloat(reflection.GetRepeatedFloat(message, field, index), out_);
      case Kind::kBool:
        AppendBool(reflection.GetRepeatedBool(message, field, index), out_);
        return true;
      case Kind::kEnum:
        return AppendEnum(plan, reflection.GetRepeatedEnumValue(message, field, index), out_);
      case Kind::kString:
        return AppendProtoJsonString(
            reflection.GetRepeatedStringReference(message, field, index, &scratch_), out_);
      case Kind::kBytes:
        AppendProtoJsonBytes(
            reflection.GetRepeatedStringReference(message, field, index, &scratch_), out_);
        return true;
      case Kind::kMessage:
        return WriteMessage(reflection.GetRepeatedMessage(message, field, index), *plan.message,
                            depth + 1);
      case Kind::kTimestamp:
        return AppendTimestamp(reflection.GetRepeatedMessage(message, field, index), plan, out_);
    }
    return false;
  }

  // Repeated fields print always, `[]` when empty.
  bool WriteList(const Message& message, const Reflection& reflection, const FieldPlan& plan,
                 int depth) {
    out_->Push('[');
    const int size = reflection.FieldSize(message, plan.field);
    for (int i = 0; i < size; ++i) {
      if (i > 0) out_->Push(',');
      if (!WriteElement(message, reflection, plan, i, depth)) return false;
    }
    out_->Push(']');
    return true;
  }

  JsonBuffer* out_;
  std::string scratch_;  // for strings reflection cannot hand out by reference
};

}  // namespace

bool AppendProtoJson(const google::protobuf::Message& message, std::string* out) {
  const MessagePlan* plan = Plans().Find(message.GetDescriptor());
  if (plan == nullptr) return false;
  JsonBuffer buffer;
  if (!Writer(&buffer).WriteMessage(message, *plan, 0)) return false;
  out->append(buffer.view());
  return true;
}

}  // namespace filemesh::internal
