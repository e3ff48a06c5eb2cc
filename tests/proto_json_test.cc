// The direct JSON writer (rest/proto_json.h) against protobuf's own
// MessageToJsonString with the REST API's options, byte for byte: randomized
// ListResponse, SearchResponse and every-shape messages from fixed seeds,
// every Unicode code point, float and double bit patterns, Timestamps at
// their edges; and the shapes and values it must leave to protobuf.

#include "rest/proto_json.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "filemesh/v1/filemesh.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "json_test_util.h"
#include "proto/json_shapes.pb.h"
#include "rest/json.h"

namespace filemesh {
namespace {

namespace pb = google::protobuf;
namespace shapes = testing::json;

constexpr int64_t kMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr uint64_t kSeeds[] = {1, 2, 3, 42, 20261127};

// MessageToJsonString with the REST API's options; nullopt when it fails.
std::optional<std::string> ProtobufJson(const pb::Message& message) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!pb::util::MessageToJsonString(message, &json, options).ok()) return std::nullopt;
  return json;
}

// The direct writer's output; nullopt when it declines (and then it must
// leave what was already in the buffer alone).
std::optional<std::string> DirectJson(const pb::Message& message) {
  const std::string prefix = "before|";
  std::string out = prefix;
  if (!internal::AppendProtoJson(message, &out)) {
    EXPECT_EQ(out, prefix);
    return std::nullopt;
  }
  EXPECT_EQ(out.compare(0, prefix.size(), prefix), 0);
  return out.substr(prefix.size());
}

enum class Path { kDirect, kProtobuf };

// internal::MessageToJson gives protobuf's bytes (or fails when protobuf
// does), and the direct writer takes `path`.
void ExpectSameAsProtobuf(const pb::Message& message, Path path) {
  const std::optional<std::string> reference = ProtobufJson(message);
  const std::optional<std::string> direct = DirectJson(message);
  if (path == Path::kDirect) {
    ASSERT_TRUE(reference.has_value()) << message.ShortDebugString();
    ASSERT_TRUE(direct.has_value()) << *reference;
    EXPECT_EQ(*direct, *reference);
  } else {
    EXPECT_FALSE(direct.has_value()) << *direct;
  }
  const absl::StatusOr<std::string> json = internal::MessageToJson(message);
  ASSERT_EQ(json.ok(), reference.has_value()) << json.status();
  if (reference.has_value()) {
    EXPECT_EQ(*json, *reference);
  } else {
    EXPECT_EQ(json.status().code(), absl::StatusCode::kInternal);
  }
}

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xe0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    s += static_cast<char>(0xf0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// Byte sequences that are not well-formed UTF-8.
const std::vector<std::string>& InvalidUtf8() {
  static const auto* sequences = new std::vector<std::string>{"\xff",
                                                              "\x80",
                                                              "\xbf",
                                                              "\xc0\x80",
                                                              "\xc1\xbf",
                                                              "\xe0\x80\x80",
                                                              "\xed\xa0\x80",
                                                              "\xf4\x90\x80\x80",
                                                              "\xf8\x88\x80\x80\x80",
                                                              "\xe2\x82",
                                                              "\xf0\x9f\x98",
                                                              "\xc3",
                                                              "\xe2\x28\xa1",
                                                              "\xfe"};
  return *sequences;
}

// Values for random messages, extremes and hostile text favoured.
class RandomValues {
 public:
  explicit RandomValues(uint64_t seed) : rng_(seed) {}

  bool Chance(int percent) { return Below(100) < static_cast<uint64_t>(percent); }
  uint64_t Below(uint64_t bound) { return rng_() % bound; }

  template <typename Int>
  Int Integer() {
    using Limits = std::numeric_limits<Int>;
    switch (Below(8)) {
      case 0:
        return Limits::min();
      case 1:
        return Limits::max();
      case 2:
        return 0;
      case 3:
        return static_cast<Int>(Below(1000));
      case 4:
        return static_cast<Int>(Limits::is_signed ? -1 : 1);
      case 5:  // around 2^53, where doubles stop holding every integer
        return sizeof(Int) == 8 ? static_cast<Int>((uint64_t{1} << 53) + Below(3)) : Int{7};
      default:
        return static_cast<Int>(rng_());
    }
  }

  double Double() {
    switch (Below(6)) {
      case 0: {
        const double specials[] = {0.0,
                                   -0.0,
                                   0.1,
                                   1.0 / 3,
                                   1e15,
                                   1e16,
                                   1e17,
                                   123456789012345678.0,
                                   std::numeric_limits<double>::max(),
                                   std::numeric_limits<double>::min(),
                                   std::numeric_limits<double>::denorm_min(),
                                   std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::quiet_NaN()};
        return specials[Below(std::size(specials))];
      }
      case 1:
        return std::ldexp(static_cast<double>(Below(100000000)), static_cast<int>(Below(80)) - 40);
      default: {
        const uint64_t bits = rng_();
        double value = 0;
        std::memcpy(&value, &bits, sizeof(value));
        return value;
      }
    }
  }

  float Float() {
    switch (Below(6)) {
      case 0: {
        const float specials[] = {0.0F,
                                  -0.0F,
                                  0.1F,
                                  1.0F / 3,
                                  16777217.0F,
                                  std::numeric_limits<float>::max(),
                                  std::numeric_limits<float>::min(),
                                  std::numeric_limits<float>::denorm_min(),
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN()};
        return specials[Below(std::size(specials))];
      }
      case 1:
        return static_cast<float>(
            std::ldexp(static_cast<double>(Below(100000000)), static_cast<int>(Below(80)) - 40));
      default: {
        auto bits = static_cast<uint32_t>(rng_());
        if (Chance(20)) bits &= 0x807fffffU;  // subnormal
        float value = 0;
        std::memcpy(&value, &bits, sizeof(value));
        return value;
      }
    }
  }

  // Text mixing plain names with everything protobuf escapes or might:
  // quotes, backslashes, controls, `<>&'`, C1 controls, U+2028, BOM, emoji,
  // tag characters, non-ASCII. Sets `*invalid` when it adds bytes that are
  // not UTF-8 (only if `allow_invalid`).
  std::string Text(bool allow_invalid, bool* invalid) {
    static const uint32_t kHostile[] = {
        '"',     '\\',    '/',     '<',     '>',     '&',     '\'',    0x7f,    0x80,   0x85,
        0x9f,    0xa0,    0xad,    0xe9,    0x600,   0x6dd,   0x70f,   0x17b4,  0x200b, 0x200f,
        0x2028,  0x2029,  0x202e,  0x2060,  0x206f,  0x65e5,  0xfeff,  0xfff9,  0xfffd, 0xffff,
        0x10000, 0x1d173, 0x1d17a, 0x1f600, 0xe0001, 0xe0020, 0xe007f, 0x10ffff};
    std::string text;
    const uint64_t pieces = Below(9);
    for (uint64_t i = 0; i < pieces; ++i) {
      switch (Below(6)) {
        case 0:
          text += "report-2026.csv";
          break;
        case 1:
          text += static_cast<char>(Below(0x20));
          break;
        case 2:
          text += Utf8(kHostile[Below(std::size(kHostile))]);
          break;
        case 3: {
          auto cp = static_cast<uint32_t>(0x80 + Below(0x10ffff - 0x80 + 1));
          if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x1f600;
          text += Utf8(cp);
          break;
        }
        case 4:
          if (allow_invalid && Chance(10)) {
            // The ASCII byte after it keeps a cut-short sequence from
            // being completed by the next piece.
            text += InvalidUtf8()[Below(InvalidUtf8().size())] + "|";
            *invalid = true;
          } else {
            text += static_cast<char>(0x20 + Below(0x5f));
          }
          break;
        default:
          text += static_cast<char>(0x20 + Below(0x5f));
      }
    }
    return text;
  }

  std::string Bytes() {
    std::string bytes(Below(12), '\0');
    for (char& c : bytes) c = static_cast<char>(Below(256));
    return bytes;
  }

  // Seconds and nanos of a Timestamp; sets `*out_of_range` when it picks
  // one outside what the JSON mapping can write (only if `allow_bad`).
  std::pair<int64_t, int32_t> Time(bool allow_bad, bool* out_of_range) {
    static const int64_t kSeconds[] = {0,          -1,         1,           86399,       86400,
                                       -86400,     -86401,     kMinSeconds, kMaxSeconds, 951782400,
                                       4107542399, 1735689599, -2208988800, 253402214400};
    int64_t seconds =
        Chance(50) ? kSeconds[Below(std::size(kSeconds))]
                   : kMinSeconds + static_cast<int64_t>(Below(kMaxSeconds - kMinSeconds + 1));
    int32_t nanos = 0;
    switch (Below(6)) {
      case 0:
        break;
      case 1:
        nanos = static_cast<int32_t>(Below(1000)) * 1000000;  // milliseconds
        break;
      case 2:
        nanos = static_cast<int32_t>(Below(1000000)) * 1000;  // microseconds
        break;
      case 3:
        nanos = Chance(50) ? 1 : 999999999;
        break;
      default:
        nanos = static_cast<int32_t>(Below(1000000000));
    }
    if (allow_bad && Chance(3)) {
      *out_of_range = true;
      const int64_t bad_seconds[] = {kMinSeconds - 1, kMaxSeconds + 1,
                                     std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max()};
      const int32_t bad_nanos[] = {-1, 1000000000, std::numeric_limits<int32_t>::min()};
      if (Chance(50)) {
        seconds = bad_seconds[Below(std::size(bad_seconds))];
      } else {
        nanos = bad_nanos[Below(std::size(bad_nanos))];
      }
    }
    return {seconds, nanos};
  }

 private:
  std::mt19937_64 rng_;
};

// Fills any message through reflection: each field set or left unset, lists
// of 0-4 elements, nested messages a few levels deep. With `hostile`, adds
// (rarely) values the direct writer leaves to protobuf, and says so.
class RandomFiller {
 public:
  RandomFiller(RandomValues* values, bool hostile) : values_(*values), hostile_(hostile) {}

  void Fill(pb::Message* message, int depth = 0) {
    const pb::Descriptor* type = message->GetDescriptor();
    for (int i = 0; i < type->field_count(); ++i) {
      const pb::FieldDescriptor* field = type->field(i);
      if (values_.Chance(35)) continue;
      if (!field->is_repeated()) {
        Set(message, field, false, depth);
        continue;
      }
      const uint64_t count = values_.Below(5);
      for (uint64_t k = 0; k < count; ++k) Set(message, field, true, depth);
    }
  }

  // Whether a value went in that the direct writer must decline.
  bool declined() const { return declined_; }

 private:
  void Set(pb::Message* message, const pb::FieldDescriptor* field, bool add, int depth) {
    const pb::Reflection* r = message->GetReflection();
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: {
        const auto v = values_.Integer<int32_t>();
        add ? r->AddInt32(message, field, v) : r->SetInt32(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        const auto v = values_.Integer<int64_t>();
        add ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT32: {
        const auto v = values_.Integer<uint32_t>();
        add ? r->AddUInt32(message, field, v) : r->SetUInt32(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT64: {
        const auto v = values_.Integer<uint64_t>();
        add ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
        const double v = values_.Double();
        add ? r->AddDouble(message, field, v) : r->SetDouble(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_FLOAT: {
        const float v = values_.Float();
        add ? r->AddFloat(message, field, v) : r->SetFloat(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        const bool v = values_.Chance(50);
        add ? r->AddBool(message, field, v) : r->SetBool(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = field->enum_type();
        int v = e->value(static_cast<int>(values_.Below(e->value_count())))->number();
        if (hostile_ && values_.Chance(3)) {
          v = values_.Chance(50) ? 1000 : -1000;  // not a declared value
          declined_ = true;
        }
        add ? r->AddEnumValue(message, field, v) : r->SetEnumValue(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        std::string v;
        if (field->type() == pb::FieldDescriptor::TYPE_BYTES) {
          v = values_.Bytes();
        } else {
          v = values_.Text(hostile_, &declined_);
        }
        add ? r->AddString(message, field, v) : r->SetString(message, field, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        pb::Message* sub = add ? r->AddMessage(message, field) : r->MutableMessage(message, field);
        if (field->message_type()->full_name() == "google.protobuf.Timestamp") {
          const auto [seconds, nanos] = values_.Time(hostile_, &declined_);
          const pb::Reflection* t = sub->GetReflection();
          t->SetInt64(sub, sub->GetDescriptor()->field(0), seconds);
          t->SetInt32(sub, sub->GetDescriptor()->field(1), nanos);
        } else if (depth < 3) {
          Fill(sub, depth + 1);
        }
        break;
      }
    }
  }

  RandomValues& values_;
  bool hostile_;
  bool declined_ = false;
};

// `count` random messages like `prototype` per seed, each checked.
void CheckRandomMessages(const pb::Message& prototype, int count) {
  int direct = 0;
  for (const uint64_t seed : kSeeds) {
    RandomValues values(seed);
    for (int i = 0; i < count; ++i) {
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " message " << i);
      std::unique_ptr<pb::Message> message(prototype.New());
      // One message in four may hold values the direct writer declines.
      RandomFiller filler(&values, /*hostile=*/i % 4 == 0);
      filler.Fill(message.get());
      ExpectSameAsProtobuf(*message, filler.declined() ? Path::kProtobuf : Path::kDirect);
      if (::testing::Test::HasFailure()) return;
      direct += filler.declined() ? 0 : 1;
    }
  }
  // Most messages exercise the direct writer; the rest its refusals.
  const int total = count * static_cast<int>(std::size(kSeeds));
  EXPECT_GT(direct, total / 2);
  EXPECT_LT(direct, total);
}

TEST(ProtoJsonTest, EmptyMessagesMatchProtobuf) {
  ExpectSameAsProtobuf(v1::ListResponse(), Path::kDirect);
  ExpectSameAsProtobuf(v1::SearchResponse(), Path::kDirect);
  ExpectSameAsProtobuf(v1::FileEntry(), Path::kDirect);
  ExpectSameAsProtobuf(shapes::AllShapes(), Path::kDirect);
  ExpectSameAsProtobuf(shapes::Empty(), Path::kDirect);
}

TEST(ProtoJsonTest, RandomListResponsesMatchProtobuf) {
  CheckRandomMessages(v1::ListResponse(), 400);
}

TEST(ProtoJsonTest, RandomSearchResponsesMatchProtobuf) {
  CheckRandomMessages(v1::SearchResponse(), 400);
}

TEST(ProtoJsonTest, RandomMessagesOfEveryShapeMatchProtobuf) {
  CheckRandomMessages(shapes::AllShapes(), 400);
}

TEST(ProtoJsonTest, FullyPopulatedListResponseMatchesProtobuf) {
  v1::ListResponse response;
  for (int i = 0; i < 10; ++i) {
    v1::FileEntry* entry = response.add_entries();
    entry->set_path("dir/\"quoted\" \\ <b>&'\n\xe2\x80\xa8\xf0\x9f\x98\x80" + std::to_string(i));
    entry->set_name("name\x01\x7f\xc2\x85\xef\xbb\xbf");
    entry->set_type(v1::FILE_TYPE_SYMLINK);
    entry->set_size(std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(i));
    entry->set_mode(0120777);
    entry->set_symlink_target("../t\xc3\xa9st");
    entry->set_raw_path(std::string("\x00\xff\xfe", 3));
    entry->set_raw_name("n\xff");
    entry->set_raw_symlink_target(std::string(static_cast<size_t>(i), '\x80'));
    entry->mutable_modified()->set_seconds(1700000000 + i);
    entry->mutable_modified()->set_nanos(i * 100000001);
  }
  response.set_next_page_token("token/+=");
  ExpectSameAsProtobuf(response, Path::kDirect);
}

// protobuf 3.21 prints a set Timestamp after every other field of its
// message (it arrives as a string where an object node was laid out).
TEST(ProtoJsonTest, SetTimestampPrintsAfterTheOtherFields) {
  v1::FileEntry entry;
  entry.set_path("a/b");
  entry.mutable_modified()->set_seconds(1);
  ExpectSameAsProtobuf(entry, Path::kDirect);
  const std::optional<std::string> json = DirectJson(entry);
  ASSERT_TRUE(json.has_value());
  EXPECT_GT(json->find("\"modified\":"), json->find("\"raw_symlink_target\":"));

  shapes::AllShapes all;
  all.mutable_late_time()->set_seconds(2);
  all.mutable_early_time()->set_nanos(3000);
  all.mutable_later_node()->mutable_at()->set_seconds(4);
  all.mutable_node();
  all.add_r_time()->set_seconds(5);
  all.mutable_empty();
  ExpectSameAsProtobuf(all, Path::kDirect);
}

TEST(ProtoJsonTest, EveryCodePointMatchesProtobuf) {
  // Blocks of 4096 code points per string, surrogates skipped.
  for (uint32_t block = 0; block <= 0x10ffff; block += 0x1000) {
    v1::FileEntry entry;
    std::string text;
    for (uint32_t cp = block; cp < block + 0x1000 && cp <= 0x10ffff; ++cp) {
      if (cp < 0xd800 || cp > 0xdfff) text += Utf8(cp);
    }
    entry.set_path(text);
    SCOPED_TRACE(::testing::Message() << "block " << block);
    ExpectSameAsProtobuf(entry, Path::kDirect);
    if (HasFailure()) return;
  }
}

TEST(ProtoJsonTest, InvalidUtf8IsLeftToProtobuf) {
  for (const std::string& bad : InvalidUtf8()) {
    v1::ListResponse response;
    response.add_entries()->set_name("a" + bad + "b");
    SCOPED_TRACE(::testing::PrintToString(bad));
    ExpectSameAsProtobuf(response, Path::kProtobuf);
  }
}

TEST(ProtoJsonTest, FloatAndDoubleBitPatternsMatchProtobuf) {
  RandomValues values(7);
  for (int i = 0; i < 3000; ++i) {
    shapes::AllShapes all;
    all.set_f_double(values.Double());
    all.set_f_float(values.Float());
    for (int k = 0; k < 16; ++k) {
      all.add_r_double(values.Double());
      all.add_r_float(values.Float());
    }
    SCOPED_TRACE(::testing::Message() << "message " << i);
    ExpectSameAsProtobuf(all, Path::kDirect);
    if (HasFailure()) return;
  }
}

TEST(ProtoJsonTest, TimestampsMatchProtobufAcrossTheirRange) {
  RandomValues values(11);
  for (int i = 0; i < 3000; ++i) {
    bool bad = false;
    const auto [seconds, nanos] = values.Time(/*allow_bad=*/false, &bad);
    v1::FileEntry entry;
    entry.mutable_modified()->set_seconds(seconds);
    entry.mutable_modified()->set_nanos(nanos);
    SCOPED_TRACE(::testing::Message() << seconds << "s " << nanos << "ns");
    ExpectSameAsProtobuf(entry, Path::kDirect);
    if (HasFailure()) return;
  }
}

TEST(ProtoJsonTest, OutOfRangeTimestampsFailAsProtobufDoes) {
  const std::pair<int64_t, int32_t> bad[] = {{kMinSeconds - 1, 0},
                                             {kMaxSeconds + 1, 0},
                                             {std::numeric_limits<int64_t>::min(), 0},
                                             {0, -1},
                                             {0, 1000000000}};
  for (const auto& [seconds, nanos] : bad) {
    v1::SearchResponse response;
    response.add_matches()->mutable_modified()->set_seconds(seconds);
    response.mutable_matches(0)->mutable_modified()->set_nanos(nanos);
    SCOPED_TRACE(::testing::Message() << seconds << "s " << nanos << "ns");
    ExpectSameAsProtobuf(response, Path::kProtobuf);
    EXPECT_FALSE(internal::MessageToJson(response).ok());
  }
}

TEST(ProtoJsonTest, UnknownEnumNumbersAreLeftToProtobuf) {
  v1::ListResponse list;
  list.add_entries()->set_type(static_cast<v1::FileType>(42));
  ExpectSameAsProtobuf(list, Path::kProtobuf);
  v1::SearchResponse search;
  search.set_truncation_reason(static_cast<v1::TruncationReason>(-5));
  ExpectSameAsProtobuf(search, Path::kProtobuf);
}

TEST(ProtoJsonTest, UnknownFieldsAreIgnoredAsProtobufDoes) {
  v1::ListResponse original;
  original.add_entries()->set_name("x");
  // Field 99, varint 1; and field 98, length-delimited "hi".
  const std::string bytes = original.SerializeAsString() + "\x98\x06\x01\x92\x06\x02hi";
  v1::ListResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_FALSE(parsed.GetReflection()->GetUnknownFields(parsed).empty());
  ExpectSameAsProtobuf(parsed, Path::kDirect);
}

TEST(ProtoJsonTest, UnsupportedShapesAreLeftToProtobuf) {
  shapes::WithOneof oneof_set;
  oneof_set.set_text("t");
  ExpectSameAsProtobuf(oneof_set, Path::kProtobuf);
  ExpectSameAsProtobuf(shapes::WithOneof(), Path::kProtobuf);

  shapes::WithOptional optional_set;
  optional_set.set_count(0);
  ExpectSameAsProtobuf(optional_set, Path::kProtobuf);
  ExpectSameAsProtobuf(shapes::WithOptional(), Path::kProtobuf);

  shapes::WithDuration duration;
  duration.mutable_elapsed()->set_seconds(-3);
  duration.mutable_elapsed()->set_nanos(-5000);
  ExpectSameAsProtobuf(duration, Path::kProtobuf);

  shapes::WithWrapper wrapper;
  wrapper.mutable_count()->set_value(0);
  ExpectSameAsProtobuf(wrapper, Path::kProtobuf);

  shapes::WithFieldMask mask;
  mask.mutable_mask()->add_paths("entries.raw_name");
  ExpectSameAsProtobuf(mask, Path::kProtobuf);

  shapes::WithAny any;
  v1::FileEntry entry;
  entry.set_name("packed");
  any.mutable_detail()->PackFrom(entry);
  ExpectSameAsProtobuf(any, Path::kProtobuf);

  shapes::WithAliasedEnum aliased;
  aliased.set_color(shapes::ALIASED_COLOR_ROUGE);
  ExpectSameAsProtobuf(aliased, Path::kProtobuf);

  // Unsupported below the top level, even with no element present.
  ExpectSameAsProtobuf(shapes::WithUnsupportedInside(), Path::kProtobuf);

  pb::Timestamp timestamp;  // a well-known type at the top level
  timestamp.set_seconds(5);
  ExpectSameAsProtobuf(timestamp, Path::kProtobuf);

  pb::FileDescriptorProto proto2;  // proto2: defaults and presence differ
  proto2.set_name("x.proto");
  ExpectSameAsProtobuf(proto2, Path::kProtobuf);
}

TEST(ProtoJsonTest, DeepNestingIsLeftToProtobuf) {
  for (const int levels : {20, 40, 100}) {
    shapes::Chain chain;
    shapes::Chain* link = &chain;
    for (int i = 0; i < levels; ++i) {
      link->set_depth(i);
      link = link->mutable_next();
    }
    SCOPED_TRACE(levels);
    ExpectSameAsProtobuf(chain, levels <= 30 ? Path::kDirect : Path::kProtobuf);
  }
}

// A message type of a descriptor pool built at run time (DynamicMessage).
class DynamicPool {
 public:
  void Add(const pb::FileDescriptor* file) {
    pb::FileDescriptorProto proto;
    file->CopyTo(&proto);
    ASSERT_NE(pool_.BuildFile(proto), nullptr) << file->name();
  }
  void Add(const pb::FileDescriptorProto& proto) {
    ASSERT_NE(pool_.BuildFile(proto), nullptr) << proto.name();
  }
  std::unique_ptr<pb::Message> New(const std::string& type) {
    const pb::Descriptor* descriptor = pool_.FindMessageTypeByName(type);
    EXPECT_NE(descriptor, nullptr) << type;
    if (descriptor == nullptr) return nullptr;
    return std::unique_ptr<pb::Message>(factory_.GetPrototype(descriptor)->New());
  }

 private:
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_{&pool_};
};

TEST(ProtoJsonTest, DynamicMessagesMatchProtobuf) {
  DynamicPool pool;
  for (const pb::FileDescriptor* file :
       {pb::Timestamp::descriptor()->file(), pb::Duration::descriptor()->file(),
        pb::Any::descriptor()->file(), pb::FieldMask::descriptor()->file(),
        pb::Int32Value::descriptor()->file(), shapes::AllShapes::descriptor()->file()}) {
    pool.Add(file);
  }
  const std::unique_ptr<pb::Message> prototype = pool.New("filemesh.testing.json.AllShapes");
  ASSERT_NE(prototype, nullptr);
  CheckRandomMessages(*prototype, 100);
}

// Maps (and Struct, which holds one) cannot be read under ThreadSanitizer
// here; see json_test_util.h.
class ProtoJsonMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::kProtobufMapsUsable) {
      GTEST_SKIP() << "protobuf maps are unusable under ThreadSanitizer here";
    }
  }
};

TEST_F(ProtoJsonMapTest, MapsAndStructAreLeftToProtobuf) {
  pb::Struct object;
  (*object.mutable_fields())["name"].set_string_value("x<y>");
  (*object.mutable_fields())["size"].set_number_value(1.5);
  ExpectSameAsProtobuf(object, Path::kProtobuf);

  pb::FileDescriptorProto file;
  file.set_name("with_map.proto");
  file.set_syntax("proto3");
  file.set_package("filemesh.testing.dynamic");
  pb::DescriptorProto* type = file.add_message_type();
  type->set_name("WithMap");
  pb::DescriptorProto* entry = type->add_nested_type();
  entry->set_name("CountsEntry");
  entry->mutable_options()->set_map_entry(true);
  pb::FieldDescriptorProto* key = entry->add_field();
  key->set_name("key");
  key->set_number(1);
  key->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  key->set_type(pb::FieldDescriptorProto::TYPE_STRING);
  pb::FieldDescriptorProto* value = entry->add_field();
  value->set_name("value");
  value->set_number(2);
  value->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  value->set_type(pb::FieldDescriptorProto::TYPE_INT32);
  pb::FieldDescriptorProto* counts = type->add_field();
  counts->set_name("counts");
  counts->set_number(1);
  counts->set_label(pb::FieldDescriptorProto::LABEL_REPEATED);
  counts->set_type(pb::FieldDescriptorProto::TYPE_MESSAGE);
  counts->set_type_name(".filemesh.testing.dynamic.WithMap.CountsEntry");
  DynamicPool pool;
  pool.Add(file);
  const std::unique_ptr<pb::Message> with_map = pool.New("filemesh.testing.dynamic.WithMap");
  ASSERT_NE(with_map, nullptr);
  ExpectSameAsProtobuf(*with_map, Path::kProtobuf);
  pb::Message* item =
      with_map->GetReflection()->AddMessage(with_map.get(), with_map->GetDescriptor()->field(0));
  item->GetReflection()->SetString(item, item->GetDescriptor()->field(0), "k");
  item->GetReflection()->SetInt32(item, item->GetDescriptor()->field(1), 3);
  ExpectSameAsProtobuf(*with_map, Path::kProtobuf);
}

// The type plans are built on first use; several threads at once must all
// get protobuf's bytes.
TEST(ProtoJsonTest, ConcurrentFirstUseMatchesProtobuf) {
  std::vector<std::unique_ptr<pb::Message>> messages;
  std::vector<std::string> expected;
  RandomValues values(99);
  for (int i = 0; i < 64; ++i) {
    std::unique_ptr<pb::Message> message;
    if (i % 3 == 0) {
      message = std::make_unique<v1::ListResponse>();
    } else if (i % 3 == 1) {
      message = std::make_unique<v1::SearchResponse>();
    } else {
      message = std::make_unique<shapes::AllShapes>();
    }
    RandomFiller(&values, /*hostile=*/false).Fill(message.get());
    const std::optional<std::string> reference = ProtobufJson(*message);
    ASSERT_TRUE(reference.has_value());
    expected.push_back(*reference);
    messages.push_back(std::move(message));
  }
  constexpr int kThreads = 4;
  std::vector<std::vector<std::string>> results(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < messages.size(); ++i) {
        // Each thread starts at a different message.
        const size_t index = (i + static_cast<size_t>(t) * 7) % messages.size();
        std::string out;
        if (!internal::AppendProtoJson(*messages[index], &out)) out = "<declined>";
        results[static_cast<size_t>(t)].push_back(std::move(out));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < messages.size(); ++i) {
      const size_t index = (i + static_cast<size_t>(t) * 7) % messages.size();
      EXPECT_EQ(results[static_cast<size_t>(t)][i], expected[index]);
    }
  }
}

}  // namespace
}  // namespace filemesh
